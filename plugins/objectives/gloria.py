"""GLoRIA's global and local image-report contrastive losses (Huang et al., ICCV 2021).

Inputs taken from :class:`~place_bench.model.outputs.PairOutputs`:

* regions: ``patch_local`` (B, N, d), the image's local tokens in the joint space
  (GLoRIA: ResNet layer3 through a 1×1 convolution);
* words: ``word_local`` (B, W, d) when the model has a text local projection,
  otherwise the encoder's ``text.word_features`` (GLoRIA itself does not project
  words); ``text.word_mask`` marks the real words;
* ``image_global``, ``text_global`` (B, d) for the global loss.

Score matrices have images as rows and reports as columns, so the first
cross-entropy of each pair is image→text and the second text→image.

Local score of image j and report k, with e_w the report's word vectors and v_r the
image's region vectors (none of them normalized):

* ``variant="compat"`` (default) reproduces the public code's behaviour:
  s_wr = e_w·v_r; a = softmax over the *words* of s; then softmax over regions of
  τ1·a (τ1 scales probabilities, not logits); c_w = Σ_r a_wr v_r;
  cos(c_w, e_w) with the product of the two norms clamped at ``eps``;
  Z = log Σ_w exp(τ2·cos) over [CLS] and the real words ([SEP] and padding left out).
* ``variant="corrected"`` follows the paper's formulas: a_w· = softmax over regions
  of τ1·s_w· (τ1 an inverse temperature on the dot products); cos with each norm
  clamped; Z = log Σ_w exp(τ2·cos) over the real words only.

Both variants: logits = τ3·Z, L_local = CE(rows) + CE(columns) (batch means, summed,
not halved); global logits = τ3·cos(v_j, t_k) (norm product clamped in ``compat``),
L_global = CE(rows) + CE(columns). Returned: ``loss_gloria_local = local_weight ·
L_local`` and ``loss_gloria_global = global_weight · L_global``; the training total
is their sum, the four cross-entropies summed as in the reference.

Where the suite's contract differs from GLoRIA's model (the loss follows the
contract; the model config decides how close the inputs get):

* [CLS] among the words (``compat``): GLoRIA's word list starts with [CLS]'s own
  feature. With raw ``word_features`` the [CLS] vector here is ``text.cls_embedding``
  (the same space, exact). With ``word_local`` the contract has no local projection
  of [CLS], so ``text_global`` (the [CLS] feature through the *global* head) stands in.
* Word features: GLoRIA sums the last 4 BERT layers and sums sub-words; the
  contract gives the last layer, sub-words merged as the text encoder's
  ``word_pooling`` says (set ``"sum"`` to match).
* Global report feature: GLoRIA averages its word slots (padding included); here it
  is whatever ``text_global`` is (the contract: the projected [CLS] feature).
* Regions: GLoRIA uses ResNet layer3 (19×19 at 299 px); here whatever stage the
  image encoder exposes as ``local_tokens``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from place_bench.hookspecs import hookimpl
from place_bench.plugins.objectives._common import (
    cosine_each_norm,
    cosine_matrix,
    cosine_norm_product,
)

VARIANTS = ("compat", "corrected")
AGGREGATIONS = ("sum", "mean")


def region_word_attention(regions: torch.Tensor, words: torch.Tensor, temp1: float, variant: str) -> torch.Tensor:
    """Attention of each word over the regions, for every image against one report.

    :param regions: (B, N, d) the region vectors of B images.
    :param words: (W, d) the word vectors of one report (real words only).
    :param temp1: τ1; ``compat`` multiplies the word-normalized attention by it,
        ``corrected`` multiplies the dot products by it.
    :returns: (B, W, N), each (image, word) row a distribution over the N regions.
    """
    dots = regions @ words.T  # (B, N, W): one matrix product (an einsum here is slow backwards)
    if variant == "compat":
        # The reference normalizes over words first, then over regions.
        return torch.softmax(temp1 * torch.softmax(dots, dim=2), dim=1).transpose(1, 2)
    return torch.softmax(temp1 * dots, dim=1).transpose(1, 2)


def local_scores(
    regions: torch.Tensor,
    words: torch.Tensor,
    word_mask: torch.Tensor,
    temp1: float = 4.0,
    temp2: float = 5.0,
    variant: str = "compat",
    aggregation: str = "sum",
    eps: float = 1e-8,
) -> torch.Tensor:
    """GLoRIA's word-level matching score Z for every image-report pair.

    :param regions: (B, N, d) image regions; words: (B, W, d); word_mask: (B, W) bool,
        True = the slot takes part (the caller decides whether [CLS] is one of them).
    :returns: (B, B) Z with images as rows and reports as columns:
        Z[j, k] = log Σ_w exp(τ2·cos(c_w, e_w)) over report k's words (``aggregation="mean"``
        subtracts log of the word count: the reference's alternative ``agg='mean'``).
    """
    cosine = cosine_norm_product if variant == "compat" else cosine_each_norm
    columns = []
    for k in range(words.shape[0]):  # one report at a time, against every image
        e = words[k][word_mask[k]]
        if e.shape[0] == 0:
            raise ValueError(f"gloria: report {k} of the batch has no word to match (empty report)")
        attention = region_word_attention(regions, e, temp1, variant)
        context = attention @ regions  # (B, W_k, d)
        z = torch.logsumexp(temp2 * cosine(context, e.unsqueeze(0), eps), dim=1)
        if aggregation == "mean":
            z = z - torch.log(torch.tensor(float(e.shape[0]), dtype=z.dtype, device=z.device))
        columns.append(z)
    return torch.stack(columns, dim=1)


def symmetric_cross_entropy(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Batch-mean cross-entropies of a (B, B) matrix against its diagonal: (rows, columns)."""
    target = torch.arange(logits.shape[0], device=logits.device)
    return F.cross_entropy(logits, target), F.cross_entropy(logits.T, target)


class GLoRIALoss(nn.Module):
    """GLoRIA's objective: ``loss_gloria_local`` and ``loss_gloria_global`` (see the module doc).

    :param variant: ``"compat"`` (the public code's behaviour) or ``"corrected"`` (the
        paper's formulas).
    :param temp1: τ1, attention sharpness (4).
    :param temp2: τ2, word-score sharpness inside the log-sum-exp (5).
    :param temp3: τ3, logit scale of both the local and the global scores (10).
    :param local_weight, global_weight: weights of the two losses (1, 1).
    :param include_cls: put the report's [CLS] vector among the words of the local
        loss; None = the variant's choice (``compat``: yes, ``corrected``: no).
    :param word_aggregation: ``"sum"`` (log Σ exp, the reference's training setting)
        or ``"mean"`` (log mean exp).
    :param eps: clamp of the cosine denominators (1e-8).
    """

    def __init__(
        self,
        variant: str = "compat",
        temp1: float = 4.0,
        temp2: float = 5.0,
        temp3: float = 10.0,
        local_weight: float = 1.0,
        global_weight: float = 1.0,
        include_cls: bool | None = None,
        word_aggregation: str = "sum",
        eps: float = 1e-8,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"gloria.variant: {variant!r} is not one of {VARIANTS}")
        if word_aggregation not in AGGREGATIONS:
            raise ValueError(f"gloria.word_aggregation: {word_aggregation!r} is not one of {AGGREGATIONS}")
        for name, value in (("temp1", temp1), ("temp2", temp2), ("temp3", temp3), ("eps", eps)):
            if value <= 0:
                raise ValueError(f"gloria.{name} must be > 0, got {value}")
        self.variant = variant
        self.temp1, self.temp2, self.temp3 = float(temp1), float(temp2), float(temp3)
        self.local_weight, self.global_weight = float(local_weight), float(global_weight)
        self.include_cls = (variant == "compat") if include_cls is None else bool(include_cls)
        self.word_aggregation = word_aggregation
        self.eps = float(eps)

    def words(self, outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The local loss's word vectors (B, W', d) and mask (B, W'), [CLS] first if included."""
        text = outputs.text
        if outputs.word_local is not None:
            words, cls = outputs.word_local, outputs.text_global
        else:
            words, cls = text.word_features, text.cls_embedding
        width = outputs.patch_local.shape[-1]
        if words.shape[-1] != width or (self.include_cls and cls.shape[-1] != width):
            raise ValueError(
                f"gloria: word width {words.shape[-1]} differs from region width {width}; "
                "give the model a text_local_projection (or make embed_dim the text encoder's width)"
            )
        mask = text.word_mask.bool()
        if self.include_cls:
            words = torch.cat([cls.unsqueeze(1).to(words.dtype), words], dim=1)
            mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        return words, mask

    def forward(self, outputs) -> dict[str, torch.Tensor]:
        regions = outputs.patch_local
        if regions is None:
            raise ValueError("gloria needs patch_local: give the model an image_local_projection")
        words, mask = self.words(outputs)
        z = local_scores(regions, words, mask, self.temp1, self.temp2, self.variant, self.word_aggregation, self.eps)
        local_i2t, local_t2i = symmetric_cross_entropy(self.temp3 * z)
        clamp = "product" if self.variant == "compat" else "each"
        cos = cosine_matrix(outputs.image_global, outputs.text_global, self.eps, clamp)
        global_i2t, global_t2i = symmetric_cross_entropy(self.temp3 * cos)
        return {
            "loss_gloria_local": self.local_weight * (local_i2t + local_t2i),
            "loss_gloria_global": self.global_weight * (global_i2t + global_t2i),
        }


@hookimpl
def place_bench_register(registrar):
    registrar.add("objective", "gloria", GLoRIALoss)
