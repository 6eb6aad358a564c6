"""Training engines on the mmengine Runner."""
