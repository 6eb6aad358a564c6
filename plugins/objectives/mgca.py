"""MGCA's token-level (CTA) and prototype-level (CPA) alignment losses (Wang et al., NeurIPS 2022).

MGCA = ITA + CTA + CPA, weighted 1, 1, 1. ITA is the ``global_infonce`` objective
(τ = 0.07, both directions summed); this module gives the other two:

* ``mgca_cta`` (:class:`MGCATokenAlignment`): cross-modal token alignment inside each
  image-report pair, words ↔ patches, weighted by [CLS] attention.
* ``mgca_cpa`` (:class:`MGCAPrototypeAlignment`): cross-modal prototype alignment,
  swapped prediction of Sinkhorn-Knopp cluster codes over learnable prototypes.

Both L2-normalize their inputs themselves (MGCA's forward normalizes every embedding).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from place_bench.hookspecs import hookimpl
from place_bench.plugins.objectives._common import (
    at_least_float32,
    clipped_normalized_weights,
    diagonal_cross_entropy,
)

VARIANTS = ("compat", "corrected")
FREEZE_MODES = ("skip", "zero")


# -- token-level alignment --------------------------------------------------------------
@torch.no_grad()
def word_weights(text, n_words: int, shift: bool, low: float = 0.1, high: float = 0.9) -> torch.Tensor:
    """(B, n_words) importance of each word slot from the text's last-layer [CLS] attention.

    The attention (B, heads, T) is averaged over heads and summed over each word's
    sub-word tokens (``batch.word_ids``); with ``shift`` each token takes the attention
    of the *next* token, as MGCA's public encoder does (so a report's last word gets
    [SEP]'s attention). The non-zero entries of a row are clipped to its [low, high]
    quantiles and the row divided by its sum. Slots past ``word_mask`` get 0. Without
    attention (an encoder that gives none) the weights are uniform over the real words.
    """
    mask = text.word_mask.bool()
    b, w = mask.shape
    device = mask.device
    if text.cls_attention is None:
        weights = mask.float()
    else:
        attention = at_least_float32(text.cls_attention.detach()).mean(dim=1).to(device)  # (B, T)
        if shift:
            attention = torch.cat([attention[:, 1:], attention.new_zeros(b, 1)], dim=1)
        word_ids = text.batch.word_ids.to(device)
        slot = torch.where(word_ids >= 0, word_ids, torch.full_like(word_ids, w))  # w = a bin for non-words
        weights = attention.new_zeros(b, w + 1).scatter_add_(1, slot, attention)[:, :w] * mask
    weights = clipped_normalized_weights(weights, low, high, nonzero_only=True)
    if n_words > w:
        weights = torch.cat([weights, weights.new_zeros(b, n_words - w)], dim=1)
    return weights


@torch.no_grad()
def patch_weights(image, n_patches: int, low: float = 0.1, high: float = 0.9) -> torch.Tensor:
    """(B, N) importance of each patch: the last block's [CLS]→patch attention averaged over
    heads, clipped to each row's [low, high] quantiles and normalized to sum 1; uniform
    1/N for encoders without a [CLS] token (MGCA's ResNet case)."""
    if image.cls_attention is None:
        return torch.full((image.local_tokens.shape[0], n_patches), 1.0 / n_patches, device=image.local_tokens.device)
    attention = at_least_float32(image.cls_attention.detach()).mean(dim=1)
    return clipped_normalized_weights(attention, low, high, nonzero_only=False)


def weighted_alignment_loss(
    queries: torch.Tensor, contexts: torch.Tensor, weights: torch.Tensor, temperature: float, key_mask: torch.Tensor | None
) -> torch.Tensor:
    """MGCA's in-pair contrastive loss between B×n queries and their n attended contexts.

    S = queries · contextsᵀ / temperature, (B, n, n), row i a query, column j a context.
    Returns ½ [Σ_b Σ_i w_bi CE(S_b[i, :], i) + Σ_b Σ_j w_bj CE(S_b[:, j], j)] / B: the
    two directions (query→context rows, context→query columns) averaged, each summed
    with the weights and divided by the batch size. ``key_mask`` (B, n) leaves slots out
    as negatives in both directions (None = every slot is a negative); slots with
    weight 0 add no term of their own.
    """
    sim = queries @ contexts.transpose(1, 2) / temperature
    batch = sim.shape[0]
    total = 0.0
    for logits in (sim, sim.transpose(1, 2)):
        ce = diagonal_cross_entropy(at_least_float32(logits), key_mask)
        total = total + torch.where(weights > 0, weights * ce, torch.zeros_like(ce)).sum() / batch
    return total / 2


class MGCATokenAlignment(nn.Module):
    """MGCA's cross-modal token alignment: ``loss_mgca_cta_word`` (+ ``loss_mgca_cta_patch``).

    Per pair, with w_i the L2-normalized ``word_local`` and p_j the L2-normalized
    ``patch_local`` (both (B, ·, d)), and τ = ``temperature``:

    * word → patch: c_i = normalize(Σ_j softmax_j(w_i·p_j/τ) p_j); S = W Cᵀ/τ over the
      report's word slots; CE over rows and over columns, each term weighted by the
      word's [CLS]-attention weight (:func:`word_weights`), averaged;
    * patch → word (``bidirectional``): c_j = Σ_i softmax_i(p_j·w_i/τ) w_i with padded
      words masked; S = P Cᵀ/τ; the same CE pair weighted by :func:`patch_weights`.

    Both directions divide by B; their sum is MGCA's ``loss_local``.

    ``variant="compat"`` (default) reproduces the public code: padded word slots stay in
    the word similarity matrix as negatives in both directions (the padding mask is used
    only in the patch→word attention); each word takes the next token's attention; the
    patch context is re-normalized only for encoders without [CLS] attention (ResNet),
    not for a ViT. ``variant="corrected"``: padded slots are left out of the word
    similarity matrix, each word takes its own tokens' attention, the patch context is
    always normalized.

    Differences from the public code that no setting removes: its word slots include
    [SEP] (weight 0, but a negative and a patch→word key) and there are always 111 slots
    (max length 112 minus [CLS]) whose padded vectors are the local head applied to zero
    features; here words are the contract's ``word_local`` (no [SEP]; zero at padding,
    so a padded slot's context is the mean patch direction), and ``pad_words_to`` can
    restore the slot count (``compat`` only changes through it).

    :param variant: ``"compat"`` or ``"corrected"``.
    :param temperature: τ of both the attention and the similarity (0.1).
    :param weight: weight of both returned terms (1).
    :param bidirectional: also the patch → word direction (True).
    :param clip_low, clip_high: quantiles the attention weights are clipped to (0.1, 0.9).
    :param normalize_patch_context: None = the variant's rule (above), or force it.
    :param pad_words_to: pad the word axis with zero slots up to this many (None = no).
    """

    def __init__(
        self,
        variant: str = "compat",
        temperature: float = 0.1,
        weight: float = 1.0,
        bidirectional: bool = True,
        clip_low: float = 0.1,
        clip_high: float = 0.9,
        normalize_patch_context: bool | None = None,
        pad_words_to: int | None = None,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"mgca_cta.variant: {variant!r} is not one of {VARIANTS}")
        if temperature <= 0:
            raise ValueError(f"mgca_cta.temperature must be > 0, got {temperature}")
        if not 0 <= clip_low <= clip_high <= 1:
            raise ValueError(f"mgca_cta: need 0 <= clip_low <= clip_high <= 1, got {clip_low}, {clip_high}")
        self.variant = variant
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.bidirectional = bool(bidirectional)
        self.clip_low, self.clip_high = float(clip_low), float(clip_high)
        self.normalize_patch_context = normalize_patch_context
        self.pad_words_to = pad_words_to

    def forward(self, outputs) -> dict[str, torch.Tensor]:
        if outputs.patch_local is None or outputs.word_local is None:
            raise ValueError("mgca_cta needs patch_local and word_local: give the model both local projections")
        compat = self.variant == "compat"
        patches = F.normalize(outputs.patch_local, dim=-1)
        words = F.normalize(outputs.word_local, dim=-1)
        mask = outputs.text.word_mask.bool().to(words.device)
        if self.pad_words_to is not None and self.pad_words_to > words.shape[1]:
            extra = self.pad_words_to - words.shape[1]
            words = torch.cat([words, words.new_zeros(words.shape[0], extra, words.shape[2])], dim=1)
            mask = torch.cat([mask, mask.new_zeros(mask.shape[0], extra)], dim=1)
        tau = self.temperature

        w_weights = word_weights(outputs.text, words.shape[1], shift=compat, low=self.clip_low, high=self.clip_high)
        attention = torch.softmax(words @ patches.transpose(1, 2) / tau, dim=-1)
        word_context = F.normalize(attention @ patches, dim=-1)
        loss_word = weighted_alignment_loss(words, word_context, w_weights.to(words.device), tau, None if compat else mask)
        losses = {"loss_mgca_cta_word": self.weight * loss_word}

        if self.bidirectional:
            scores = patches @ words.transpose(1, 2) / tau
            scores = scores.masked_fill(~mask.unsqueeze(1), torch.finfo(scores.dtype).min)
            patch_context = torch.softmax(scores, dim=-1) @ words
            normalize = self.normalize_patch_context
            if normalize is None:
                normalize = not compat or outputs.image.cls_attention is None
            if normalize:
                patch_context = F.normalize(patch_context, dim=-1)
            p_weights = patch_weights(outputs.image, patches.shape[1], self.clip_low, self.clip_high)
            loss_patch = weighted_alignment_loss(patches, patch_context, p_weights.to(patches.device), tau, None)
            losses["loss_mgca_cta_patch"] = self.weight * loss_patch
        return losses


# -- prototype-level alignment --------------------------------------------------------------
def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft cluster codes with an equal partition of the batch over the prototypes.

    :param scores: (B, K) prototype scores of this process's B samples.
    :param epsilon: entropy regularization; Q ∝ exp(scores / epsilon).
    :param iterations: alternating normalizations (each: prototypes to mass 1/K, then
        samples to mass 1/B_total).
    :returns: (B, K) float32 codes without gradient; each row (sample) sums to 1.

    Under ``torch.distributed`` the total and the per-prototype sums are all-reduced, so
    the partition is over the global batch (world size × B), as MGCA's code does.
    """
    # Shifting the exponent by the constant 1/epsilon (scores of unit vectors are <= 1)
    # only rescales Q, which the first normalization undoes; it keeps exp() in range.
    q = torch.exp((scores.detach().float() - 1.0) / epsilon).t()  # (K, B)
    world = dist.get_world_size() if _distributed() else 1
    total = q.sum()
    if world > 1:
        dist.all_reduce(total)
    q = q / total
    k, b = q.shape
    for _ in range(iterations):
        per_prototype = q.sum(dim=1)
        if world > 1:
            dist.all_reduce(per_prototype)
        q = q * (1.0 / k / per_prototype).unsqueeze(1)
        q = q * (1.0 / (world * b) / q.sum(dim=0)).unsqueeze(0)
    return (q / q.sum(dim=0, keepdim=True)).t()


class MGCAPrototypeAlignment(nn.Module):
    """MGCA's cross-modal prototype alignment: ``loss_mgca_cpa``.

    With v, t the L2-normalized ``image_global`` and ``text_global`` (B, d) and C the
    K prototypes (rows of ``prototypes.weight``, re-normalized in place at every
    forward): scores s^v = v Cᵀ, s^t = t Cᵀ (B, K); codes q = :func:`sinkhorn_knopp`
    (float32, no gradient); predictions p = softmax(s / temperature); swapped
    prediction L = ½ [mean_b −Σ_k q^v log p^t + mean_b −Σ_k q^t log p^v] (the image code
    is the target of the report's prediction and vice versa); returns weight · L.

    Prototypes are frozen while the epoch (set by the engine through :meth:`set_epoch`)
    is below ``freeze_prototypes_epochs``: with ``freeze_mode="skip"`` they get no
    gradient at all (``grad`` stays None, as MGCA's ``on_after_backward`` leaves it, so
    the optimizer skips them); under DDP this needs ``find_unused_parameters=True``.
    ``freeze_mode="zero"`` sends them a zero gradient instead (DDP-safe; the optimizer
    then counts steps for them, so Adam's bias correction after unfreezing differs).

    :param embed_dim: width of the joint space (the model passes its ``embed_dim``).
    :param num_prototypes: K (500). :param epsilon: Sinkhorn ε (0.05).
    :param sinkhorn_iterations: (3). :param temperature: softmax temperature (0.2).
    :param weight: (1). :param freeze_prototypes_epochs: (1).
    """

    def __init__(
        self,
        embed_dim: int = 128,
        num_prototypes: int = 500,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        temperature: float = 0.2,
        weight: float = 1.0,
        freeze_prototypes_epochs: int = 1,
        freeze_mode: str = "skip",
    ):
        super().__init__()
        if freeze_mode not in FREEZE_MODES:
            raise ValueError(f"mgca_cpa.freeze_mode: {freeze_mode!r} is not one of {FREEZE_MODES}")
        for name, value in (("epsilon", epsilon), ("temperature", temperature)):
            if value <= 0:
                raise ValueError(f"mgca_cpa.{name} must be > 0, got {value}")
        if sinkhorn_iterations < 1 or num_prototypes < 1:
            raise ValueError("mgca_cpa: sinkhorn_iterations and num_prototypes must be >= 1")
        self.prototypes = nn.Linear(embed_dim, num_prototypes, bias=False)
        self.epsilon = float(epsilon)
        self.sinkhorn_iterations = int(sinkhorn_iterations)
        self.temperature = float(temperature)
        self.weight = float(weight)
        self.freeze_prototypes_epochs = int(freeze_prototypes_epochs)
        self.freeze_mode = freeze_mode
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Tell the objective the current (0-based) training epoch."""
        self.epoch = int(epoch)

    @property
    def frozen(self) -> bool:
        return self.epoch < self.freeze_prototypes_epochs

    def _prototype_matrix(self) -> torch.Tensor:
        weight = self.prototypes.weight
        if not self.frozen:
            return weight
        if self.freeze_mode == "skip":
            return weight.detach()
        alias = weight.view_as(weight)
        if alias.requires_grad:
            alias.register_hook(torch.zeros_like)
        return alias

    def forward(self, outputs) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))
        prototypes = self._prototype_matrix()
        image = F.normalize(outputs.image_global, dim=-1)
        text = F.normalize(outputs.text_global, dim=-1)
        image_scores = image @ prototypes.to(image.dtype).T
        text_scores = text @ prototypes.to(text.dtype).T
        image_codes = sinkhorn_knopp(image_scores, self.epsilon, self.sinkhorn_iterations)
        text_codes = sinkhorn_knopp(text_scores, self.epsilon, self.sinkhorn_iterations)
        image_log_prob = F.log_softmax(at_least_float32(image_scores) / self.temperature, dim=1)
        text_log_prob = F.log_softmax(at_least_float32(text_scores) / self.temperature, dim=1)
        image_to_text = -(image_codes * text_log_prob).sum(dim=1).mean()
        text_to_image = -(text_codes * image_log_prob).sum(dim=1).mean()
        return {"loss_mgca_cpa": self.weight * (image_to_text + text_to_image) / 2}


@hookimpl
def place_bench_register(registrar):
    registrar.add("objective", "mgca_cta", MGCATokenAlignment)
    registrar.add("objective", "mgca_cpa", MGCAPrototypeAlignment)
