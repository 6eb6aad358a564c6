"""The vision-language model, its output contract, and checkpoint IO."""
