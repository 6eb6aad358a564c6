"""Sub-commands of the CLI that need more than a few lines."""
