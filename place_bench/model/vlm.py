"""The vision-language model: encoders, projection heads and pretraining objectives."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from place_bench import registry as registries
from place_bench.model.outputs import ImageFeatures, PairOutputs, TextBatch, TextFeatures


class VisionLanguageModel(nn.Module):
    """Encoders, heads and objectives built from config dicts through the registries.

    :param image_encoder: ``dict(type=<image_encoder>, ...)``.
    :param text_encoder: ``dict(type=<text_encoder>, ...)`` or None for an image-only model.
    :param embed_dim: width of the joint space.
    :param image_projection, text_projection: global heads, ``dict(type=<head>, ...)``;
        ``in_dim`` and ``out_dim`` default to the encoder width and ``embed_dim``.
    :param image_local_projection, text_local_projection: heads for patch tokens and
        word features (local objectives need them); None = no local outputs.
    :param objectives: ``[dict(type=<objective>, ...), ...]``; each returns named,
        weighted losses from :class:`PairOutputs`, and the total is their sum.

    Submodule names are the key prefixes of a suite checkpoint (``image_encoder.``,
    ``text_encoder.``, ``image_projection.``, ..., ``objectives.0.``).
    """

    def __init__(
        self,
        image_encoder: dict,
        text_encoder: dict | None = None,
        embed_dim: int = 128,
        image_projection: dict | None = None,
        text_projection: dict | None = None,
        image_local_projection: dict | None = None,
        text_local_projection: dict | None = None,
        objectives: Sequence[dict] = (),
    ):
        super().__init__()
        self.embed_dim = embed_dim
        self.image_encoder = registries.build("image_encoder", image_encoder)
        self.image_projection = self._head(image_projection or dict(type="projection"), self.image_encoder.feature_dim)
        self.image_local_projection = self._head(image_local_projection, self.image_encoder.local_dim)
        self.text_encoder = None
        self.text_projection = None
        self.text_local_projection = None
        if text_encoder is not None:
            self.text_encoder = registries.build("text_encoder", text_encoder)
            width = self.text_encoder.feature_dim
            self.text_projection = self._head(text_projection or dict(type="projection"), width)
            self.text_local_projection = self._head(text_local_projection, width)
        elif objectives:
            raise ValueError("model.objectives need a text encoder (model.text_encoder is None)")
        self.objectives = nn.ModuleList(self._objective(cfg) for cfg in objectives)

    def _objective(self, cfg: dict) -> nn.Module:
        """Build an objective, telling it ``embed_dim`` if it asks for it (prototypes, queries)."""
        import inspect

        factory = registries.get_component("objective", cfg.get("type")).obj if isinstance(cfg, dict) else None
        wants = factory is not None and "embed_dim" in inspect.signature(factory).parameters
        return registries.build("objective", cfg, **({"embed_dim": self.embed_dim} if wants else {}))

    def _head(self, cfg: dict | None, in_dim: int) -> nn.Module | None:
        if cfg is None:
            return None
        return registries.build("head", cfg, in_dim=in_dim, out_dim=self.embed_dim)

    # -- encoding -------------------------------------------------------------------------
    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        """Encoder features of (B, C, H, W) normalized images."""
        return self.image_encoder(images)

    def encode_text(self, reports: TextBatch | Sequence[str]) -> TextFeatures:
        if self.text_encoder is None:
            raise RuntimeError("this model has no text encoder (model.text_encoder is None)")
        return self.text_encoder(reports)

    def tokenize(self, reports: Sequence[str]) -> TextBatch:
        """Tokenize reports for :meth:`encode_text` (data loaders call this in their workers)."""
        if self.text_encoder is None:
            raise RuntimeError("this model has no text encoder (model.text_encoder is None)")
        return self.text_encoder.tokenize(reports)

    def embed_image(self, images: torch.Tensor) -> torch.Tensor:
        """Unit-length joint-space embeddings (B, embed_dim) of images."""
        return F.normalize(self.image_projection(self.encode_image(images).global_embedding), dim=-1)

    def embed_text(self, reports: TextBatch | Sequence[str]) -> torch.Tensor:
        """Unit-length joint-space embeddings (B, embed_dim) of reports (CLS feature)."""
        return F.normalize(self.text_projection(self.encode_text(reports).cls_embedding), dim=-1)

    # -- pretraining ------------------------------------------------------------------------
    def pair_outputs(self, images: torch.Tensor, reports: TextBatch | Sequence[str]) -> PairOutputs:
        """Encode B image-report pairs and project them (the objectives' input)."""
        image = self.encode_image(images)
        text = self.encode_text(reports)
        patch_local = word_local = None
        if self.image_local_projection is not None:
            patch_local = self.image_local_projection(image.local_tokens)
        if self.text_local_projection is not None:
            word_local = self.text_local_projection(text.word_features) * text.word_mask[..., None]
        return PairOutputs(
            image=image,
            text=text,
            image_global=self.image_projection(image.global_embedding),
            text_global=self.text_projection(text.cls_embedding),
            patch_local=patch_local,
            word_local=word_local,
            images=images,
            encode_image=self.image_encoder,
            project_local=self.image_local_projection,
        )

    def losses(self, images: torch.Tensor, reports: TextBatch | Sequence[str]) -> dict[str, torch.Tensor]:
        """Named, weighted losses of every objective (keys start with ``loss_``)."""
        if not len(self.objectives):
            raise RuntimeError("the model has no objectives (model.objectives is empty)")
        outputs = self.pair_outputs(images, reports)
        losses: dict[str, torch.Tensor] = {}
        for index, objective in enumerate(self.objectives):
            for name, value in objective(outputs).items():
                if name in losses:
                    raise RuntimeError(f"objectives {index} and an earlier one both return {name!r}")
                losses[name] = value
        return losses
