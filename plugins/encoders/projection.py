"""Projection heads mapping encoder features into the joint embedding space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from place_bench.hookspecs import hookimpl

NORMS = {"batch": nn.BatchNorm1d, "layer": nn.LayerNorm, None: None}


class TokenwiseHead(nn.Module):
    """Base of the projection heads: ``self.layers`` applied to (..., in_dim) features flattened
    to (N, in_dim) -- so batch norm treats every leading position as a sample -- and reshaped
    back to (..., out_dim); unit-length output when ``self.l2_normalize``. Subclasses set
    ``layers``, ``in_dim``, ``out_dim`` and ``l2_normalize``."""

    layers: nn.ModuleList
    out_dim: int
    l2_normalize: bool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        x = x.reshape(-1, shape[-1])
        for layer in self.layers:
            x = layer(x)
        x = x.reshape(*shape[:-1], self.out_dim)
        return F.normalize(x, dim=-1) if self.l2_normalize else x


class ProjectionHead(TokenwiseHead):
    """Linear (``num_layers=1``) or MLP projection of (..., in_dim) features to (..., out_dim).

    Hidden layers are Linear -> norm -> ReLU; the last layer is Linear alone.
    Batch norm treats every leading position as a sample, so local tokens
    (B, N, D) and global embeddings (B, D) share one head.

    :param in_dim: input width; the model fills it from its encoder when omitted.
    :param out_dim: joint-space width; the model fills it from its ``embed_dim``.
    :param hidden_dim: width of hidden layers (default: in_dim).
    :param norm: ``"batch"``, ``"layer"`` or None, for hidden layers.
    :param l2_normalize: return unit-length vectors along the last axis.
    """

    def __init__(
        self,
        out_dim: int | None = None,
        in_dim: int | None = None,
        num_layers: int = 1,
        hidden_dim: int | None = None,
        norm: str | None = "batch",
        l2_normalize: bool = False,
        bias: bool = True,
    ):
        super().__init__()
        if in_dim is None or out_dim is None:
            raise ValueError("projection head: in_dim and out_dim must be set (the model fills them from its encoder and embed_dim)")
        if num_layers < 1:
            raise ValueError(f"projection head: num_layers must be >= 1, got {num_layers}")
        if norm not in NORMS:
            raise ValueError(f"projection head: norm {norm!r} is not one of 'batch', 'layer', None")
        hidden_dim = hidden_dim or in_dim
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(num_layers - 1):
            layers.append(nn.Linear(width, hidden_dim, bias=bias))
            if NORMS[norm] is not None:
                layers.append(NORMS[norm](hidden_dim))
            layers.append(nn.ReLU(inplace=True))
            width = hidden_dim
        layers.append(nn.Linear(width, out_dim, bias=bias))
        self.layers = nn.ModuleList(layers)
        self.in_dim, self.out_dim = in_dim, out_dim
        self.l2_normalize = l2_normalize


@hookimpl
def place_bench_register(registrar):
    registrar.add("head", "projection", ProjectionHead)
