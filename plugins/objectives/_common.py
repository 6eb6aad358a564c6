"""Small pieces shared by the local objectives (GLoRIA, MGCA): cross-entropy against
the diagonal, cosine variants, percentile-clipped importance weights.

Nothing here is registered; the objective modules import these helpers.
"""

from __future__ import annotations

import torch


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """``x`` in float32, or kept in float64 (half precision is lifted, double kept)."""
    return x if x.dtype == torch.float64 else x.float()


def diagonal_cross_entropy(logits: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-row cross-entropy of square score matrices whose targets are the diagonal.

    :param logits: (..., n, n); row i is a distribution over the n columns (keys),
        and column i is the positive of row i.
    :param key_mask: (..., n) bool, True = the key (column) takes part; masked keys
        are left out of every row's softmax. None = every key takes part.
    :returns: (..., n) the losses −log softmax(row i)[i]. A row whose own key is
        masked has no defined loss; its value is not meaningful and callers drop it.
    """
    if key_mask is not None:
        # The dtype's most negative finite number, not -inf: a row with every key
        # masked then stays finite instead of turning the backward pass into NaN.
        logits = logits.masked_fill(~key_mask.unsqueeze(-2), torch.finfo(logits.dtype).min)
    return torch.logsumexp(logits, dim=-1) - torch.diagonal(logits, dim1=-2, dim2=-1)


def cosine_norm_product(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine along the last axis as a·b / max(|a||b|, eps): the product of the norms is
    clamped (GLoRIA's reference code), broadcasting a against b."""
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp(min=eps)


def cosine_each_norm(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Cosine along the last axis as a·b / (max(|a|, eps) max(|b|, eps)), broadcasting."""
    return (a * b).sum(-1) / (a.norm(dim=-1).clamp(min=eps) * b.norm(dim=-1).clamp(min=eps))


def cosine_matrix(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-8, clamp: str = "product") -> torch.Tensor:
    """(n, m) cosines between the rows of a (n, d) and b (m, d).

    :param clamp: ``"product"`` clamps |a_i||b_j| at eps, ``"each"`` clamps each norm.
    """
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    if clamp == "product":
        return (a @ b.T) / (na[:, None] * nb[None, :]).clamp(min=eps)
    return (a @ b.T) / (na.clamp(min=eps)[:, None] * nb.clamp(min=eps)[None, :])


@torch.no_grad()
def clipped_normalized_weights(
    values: torch.Tensor, low: float = 0.1, high: float = 0.9, nonzero_only: bool = False
) -> torch.Tensor:
    """Importance weights: each row clipped to its [low, high] quantiles, then divided by its sum.

    :param values: (B, n) non-negative scores (e.g. [CLS] attention), no gradient.
    :param low, high: quantiles in [0, 1] (linear interpolation, as ``torch.quantile``).
    :param nonzero_only: compute the quantiles over the row's non-zero entries and clip
        only those (zeros, e.g. padding, stay zero); otherwise over the whole row.
    :returns: (B, n) weights (float32, or float64 for float64 input); each row sums
        to 1, or is all zero when the row had nothing positive to weight.
    """
    values = at_least_float32(values.detach())
    if nonzero_only:
        keep = values != 0
        # NaN marks the entries left out; nanquantile ignores them (an empty row gives
        # NaN bounds, unused below since nothing in it is kept).
        counted = values.masked_fill(~keep, float("nan"))
        lo = torch.nanquantile(counted, low, dim=1, keepdim=True)
        hi = torch.nanquantile(counted, high, dim=1, keepdim=True)
    else:
        keep = torch.ones_like(values, dtype=torch.bool)
        lo = torch.quantile(values, low, dim=1, keepdim=True)
        hi = torch.quantile(values, high, dim=1, keepdim=True)
    values = torch.where(keep, torch.minimum(torch.maximum(values, lo), hi), values)
    total = values.sum(dim=1, keepdim=True)
    return torch.where(total > 0, values / total.clamp(min=torch.finfo(values.dtype).tiny), torch.zeros_like(values))
