"""VPOE: the Visual Pathology Observation Extractor of PLACE (spec/place.md, "reconstruction").

Known from the paper's abstract: learnable *pathology query tokens* read the localized (patch)
tokens of the image encoder and output V-PORs. The reconstruction's defaults (spec/place.md,
"VPOE"): ``num_queries = 16`` learnable queries, ``depth = 2`` transformer decoder blocks
(query self-attention, cross-attention to the patch tokens, MLP), output projected to d, and
the cross-attention maps returned as the model's localization of each observation.

Block layout chosen here (the spec leaves it open; pre-norm, as DETR-style query decoders
with pre-norm and ViT blocks do)::

    q = q + SelfAttn(LN(q))
    q = q + CrossAttn(LN(q), LN(patches))
    q = q + MLP(LN(q))

followed by a final LayerNorm and a linear ``d -> d`` output projection.

Nothing here is registered; :mod:`.pcma` owns a :class:`VPOE`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class VPOEOutput:
    """What :class:`VPOE` returns for B images.

    vpor: (B, Q, d) V-PORs, one per query (axis 1 = query); not normalized.
    attention: (B, Q, N) the last block's cross-attention of each query over the N
        patch tokens (row-major grid order), averaged over heads; rows sum to 1.
    attentions: (depth, B, Q, N) every block's cross-attention maps (head average).
    """

    vpor: torch.Tensor
    attention: torch.Tensor
    attentions: torch.Tensor


class DecoderBlock(nn.Module):
    """One pre-norm query decoder block: self-attention, cross-attention to patches, MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0):
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_query = nn.LayerNorm(dim)
        self.norm_memory = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout, batch_first=True)
        self.norm_mlp = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:param queries: (B, Q, d); :param memory: (B, N, d) patch tokens.
        :returns: updated queries (B, Q, d) and the cross-attention (B, Q, N), head average."""
        x = self.norm_self(queries)
        queries = queries + self.self_attn(x, x, x, need_weights=False)[0]
        x = self.norm_query(queries)
        m = self.norm_memory(memory)
        attended, attention = self.cross_attn(x, m, m, need_weights=True, average_attn_weights=True)
        queries = queries + attended
        queries = queries + self.mlp(self.norm_mlp(queries))
        return queries, attention


class VPOE(nn.Module):
    """Learnable pathology queries that read an image's patch tokens (reconstruction defaults).

    Input: ``outputs.patch_local`` (B, N, d) when the model has an image local projection;
    otherwise ``outputs.image.local_tokens`` (B, N, D) through this module's own linear
    layer ``D -> d`` (``in_dim`` = D must be given then).

    :param embed_dim: d, the joint-space width (filled by the model).
    :param num_queries: Q, number of pathology queries (spec default 16).
    :param depth: number of decoder blocks (spec default 2).
    :param num_heads: attention heads per block (must divide d); default 4.
    :param mlp_ratio: MLP hidden width / d; default 4.
    :param in_dim: width D of the encoder's local tokens for the own input layer; None =
        no own layer (``patch_local`` is required).
    """

    def __init__(
        self,
        embed_dim: int,
        num_queries: int = 16,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        dropout: float = 0.0,
        in_dim: int | None = None,
    ):
        super().__init__()
        if num_queries < 1 or depth < 1:
            raise ValueError(f"vpoe: num_queries and depth must be >= 1, got {num_queries}, {depth}")
        if embed_dim % num_heads:
            raise ValueError(f"vpoe.num_heads={num_heads} must divide embed_dim={embed_dim}")
        self.embed_dim, self.num_queries, self.depth = int(embed_dim), int(num_queries), int(depth)
        self.queries = nn.Parameter(torch.empty(num_queries, embed_dim))
        nn.init.normal_(self.queries, std=1.0)  # nn.Embedding's init, as DETR's query embeddings
        self.input_proj = nn.Linear(int(in_dim), embed_dim) if in_dim else None
        self.blocks = nn.ModuleList(DecoderBlock(embed_dim, num_heads, mlp_ratio, dropout) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def patch_inputs(self, outputs) -> torch.Tensor:
        """(B, N, d) the patch tokens the queries read (see the class docstring)."""
        if outputs.patch_local is not None:
            return outputs.patch_local
        if self.input_proj is None:
            raise ValueError(
                "the VPOE needs patch_local (set model.image_local_projection) or the objective's "
                "image_in_dim (the image encoder's local width) for its own projection"
            )
        return self.input_proj(outputs.image.local_tokens)

    def forward(self, patches: torch.Tensor) -> VPOEOutput:
        """:param patches: (B, N, d) patch tokens (axis 1 = grid cell, row-major)."""
        queries = self.queries.to(patches.dtype).unsqueeze(0).expand(patches.shape[0], -1, -1)
        maps = []
        for block in self.blocks:
            queries, attention = block(queries, patches)
            maps.append(attention)
        return VPOEOutput(vpor=self.out_proj(self.norm(queries)), attention=maps[-1], attentions=torch.stack(maps))
