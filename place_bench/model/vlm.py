"""The vision-language model: an image encoder, a text encoder and projection heads."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from place_bench import registry as registries
from place_bench.model.outputs import ImageFeatures, TextBatch, TextFeatures


class VisionLanguageModel(nn.Module):
    """Encoders and heads built from config dicts through the registries.

    :param image_encoder: ``dict(type=<image_encoder>, ...)``.
    :param text_encoder: ``dict(type=<text_encoder>, ...)`` or None for an image-only model.
    :param embed_dim: width of the joint space.
    :param image_projection, text_projection: ``dict(type=<head>, ...)``; ``in_dim``
        and ``out_dim`` default to the encoder width and ``embed_dim``.

    Submodule names (``image_encoder``, ``text_encoder``, ``image_projection``,
    ``text_projection``) are the key prefixes of a suite checkpoint.
    """

    def __init__(
        self,
        image_encoder: dict,
        text_encoder: dict | None = None,
        embed_dim: int = 128,
        image_projection: dict | None = None,
        text_projection: dict | None = None,
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.image_encoder = registries.build("image_encoder", image_encoder)
        self.image_projection = registries.build(
            "head",
            image_projection or dict(type="projection"),
            in_dim=self.image_encoder.feature_dim,
            out_dim=embed_dim,
        )
        self.text_encoder = None
        self.text_projection = None
        if text_encoder is not None:
            self.text_encoder = registries.build("text_encoder", text_encoder)
            self.text_projection = registries.build(
                "head",
                text_projection or dict(type="projection"),
                in_dim=self.text_encoder.feature_dim,
                out_dim=embed_dim,
            )

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        """Encoder features of (B, C, H, W) normalized images."""
        return self.image_encoder(images)

    def encode_text(self, reports: TextBatch | Sequence[str]) -> TextFeatures:
        if self.text_encoder is None:
            raise RuntimeError("this model has no text encoder (model.text_encoder is None)")
        return self.text_encoder(reports)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length joint-space embeddings (B, embed_dim) of images."""
        return F.normalize(self.image_projection(self.encode_image(images).global_embedding), dim=-1)

    def embed_text(self, reports: TextBatch | Sequence[str]) -> torch.Tensor:
        """Unit-length joint-space embeddings (B, embed_dim) of reports (CLS feature)."""
        return F.normalize(self.text_projection(self.encode_text(reports).cls_embedding), dim=-1)
