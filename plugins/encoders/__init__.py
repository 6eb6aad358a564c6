"""Encoders: timm image encoders, transformers text encoders, projection heads."""
