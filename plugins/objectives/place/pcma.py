"""PCMA: PLACE's pathological-level cross-modal alignment (spec/place.md, "reconstruction").

The paper (abstract) says PCMA maximizes the consistency of V-PORs (the VPOE's query outputs)
and T-PORs (the report's observations); formulas and hyperparameters are not public, so this
module implements the reconstruction of spec/place.md, "PCMA", with its defaults as config keys.

Notation: B pairs, Q queries, S sentence slots (M_j real sentences in report j), d = embed_dim.
V^i = (v^i_1..v^i_Q) the L2-normalized V-PORs of image i, T^j = (t^j_1..t^j_{M_j}) the
L2-normalized T-PORs of report j, ⟨·,·⟩ the dot product (a cosine).

* Pair level, ``mode='late_interaction'`` (default):
  Φ(i, j) = (1/M_j) Σ_m max_q ⟨t^j_m, v^i_q⟩; symmetric InfoNCE over the B×B matrix Φ/τ_p
  with diagonal positives, the two directions summed (as the suite's ITA, MGCA's convention):
  ``loss_pcma = weight · [mean_i CE(Φ[i,:]/τ_p, i) + mean_j CE(Φ[:,j]/τ_p, j)]``.
* Pair level, ``mode='optimal_transport'``: for each (i, j), a Sinkhorn plan P (entropic
  ε = 0.05, 3 iterations, uniform marginals 1/Q over queries and 1/M_j over real sentences,
  each iteration a row then a column scaling, so columns end exact) between queries and
  sentences; Φ(i, j) = Σ_{q,m} P_qm ⟨t^j_m, v^i_q⟩ = (1/M_j) Σ_m Σ_q (P_qm / (1/M_j)) ⟨t^j_m, v^i_q⟩,
  the transported (soft-assignment) similarity in place of the max.
* Observation level (both modes): for sentence m of report b, s_{b,m}(i) = max_q ⟨t^b_m, v^i_q⟩,
  the score of its best query in image i (q*(m) for i = b); InfoNCE over the images,
  ``loss_pcma_obs = obs_weight · mean_{(b,m) real} −log softmax_i(s_{b,m}(i)/τ_p)[b]``.
* Query diversity: ``loss_pcma_div = diversity_weight · mean_i ‖V^i V^iᵀ − I‖²_F``.

Reports without any real sentence take no part in the pair-level loss (the InfoNCE runs over
the sub-batch of pairs that have observations) and have no observation-level term; the
diversity term covers every image. A batch with no report that has a sentence gives zero
losses that keep the graph.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from place_bench.hookspecs import hookimpl
from place_bench.plugins.objectives._common import at_least_float32, diagonal_cross_entropy
from place_bench.plugins.objectives.place.tpor import TPOR
from place_bench.plugins.objectives.place.vpoe import VPOE

MODES = ("late_interaction", "optimal_transport")


# -- the pieces, on given (normalized) V-PORs and T-PORs ------------------------------------------
def observation_similarities(vpor: torch.Tensor, tpor: torch.Tensor) -> torch.Tensor:
    """(B_i, B_j, S, Q) ⟨t^j_m, v^i_q⟩: axis 0 = image i, 1 = report j, 2 = sentence m, 3 = query q.

    :param vpor: (B_i, Q, d) L2-normalized V-PORs; :param tpor: (B_j, S, d) L2-normalized T-PORs.
    """
    return torch.einsum("iqd,jsd->ijsq", vpor, tpor)


def late_interaction_phi(sim: torch.Tensor, tpor_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Φ(i, j) = (1/M_j) Σ_m max_q sim[i, j, m, q] over the real sentences of report j.

    :param sim: (B_i, B_j, S, Q) from :func:`observation_similarities`.
    :param tpor_mask: (B_j, S) bool, True = a real sentence.
    :returns: Φ (B_i, B_j) (0 for a report without sentences) and the best-query scores
        (B_i, B_j, S) max_q sim (meaningless at padded sentences).
    """
    best = sim.max(dim=-1).values
    mask = tpor_mask.to(best.dtype)[None]
    phi = (best * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return phi, best


def sinkhorn_plan(sim: torch.Tensor, tpor_mask: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Entropic transport plans between the queries and the sentences of every (i, j) pair.

    With K = exp(sim/ε) (Q × M_j for a pair), a = 1/Q and b = 1/M_j, start v = 1 and repeat
    ``iterations`` times u = a / (K v), v = b / (Kᵀ u); P = diag(u) K diag(v). Computed in
    the log domain; padded sentences get no mass.

    :param sim: (B_i, B_j, S, Q) similarities (axis 2 = sentence, axis 3 = query).
    :param tpor_mask: (B_j, S) bool.
    :returns: P (B_i, B_j, S, Q) (same axes as ``sim``), zero at padded sentences; for a
        report with real sentences each sentence's column holds 1/M_j exactly. A report
        without sentences gets the plan over all its slots (callers ignore it).
    """
    if epsilon <= 0 or iterations < 1:
        raise ValueError(f"pcma: ot_epsilon must be > 0 and ot_iterations >= 1, got {epsilon}, {iterations}")
    n_queries = sim.shape[-1]
    # A report with no real sentence would make every log-sum below empty; give it all slots.
    mask = tpor_mask.bool() | ~tpor_mask.bool().any(-1, keepdim=True)  # (B_j, S)
    log_k = sim / epsilon
    log_a = -math.log(n_queries)
    log_b = -torch.log(mask.sum(-1, keepdim=True).to(sim.dtype))[None].expand(sim.shape[0], -1, -1)  # (B_i, B_j, 1)
    bias = torch.zeros_like(mask, dtype=sim.dtype).masked_fill(~mask, float("-inf"))[None, :, :, None]  # padded: no mass
    g = torch.zeros(sim.shape[:3], dtype=sim.dtype, device=sim.device)[..., None]  # log v, (B_i, B_j, S, 1)
    for _ in range(iterations):
        f = log_a - torch.logsumexp(log_k + g + bias, dim=2, keepdim=True)  # log u, (B_i, B_j, 1, Q)
        g = log_b[..., None] - torch.logsumexp(log_k + f, dim=3, keepdim=True)  # (B_i, B_j, S, 1)
    return torch.exp(log_k + f + g) * mask[None, :, :, None].to(sim.dtype)


def optimal_transport_phi(
    sim: torch.Tensor, tpor_mask: torch.Tensor, epsilon: float = 0.05, iterations: int = 3
) -> torch.Tensor:
    """Φ(i, j) = Σ_{m,q} P_mq sim[i, j, m, q] with P from :func:`sinkhorn_plan`; (B_i, B_j),
    0 for a report without sentences."""
    plan = sinkhorn_plan(sim, tpor_mask, epsilon, iterations)
    phi = (plan * sim).sum((-1, -2))
    return phi * tpor_mask.bool().any(-1).to(phi.dtype)[None]


def symmetric_infonce(phi: torch.Tensor, temperature: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Σ of both directions of InfoNCE over the square score matrix Φ/τ, diagonal positives.

    :param phi: (B, B), rows = images, columns = reports.
    :param valid: (B,) bool, the pairs that take part (others are dropped as rows and as
        keys); None = all. Returns a zero that keeps the graph when none is valid.
    """
    if valid is not None:
        keep = valid.bool().nonzero().squeeze(-1)
        phi = phi.index_select(0, keep).index_select(1, keep)
    if phi.shape[0] == 0:
        return phi.sum() * 0.0
    logits = phi / temperature
    return diagonal_cross_entropy(logits).mean() + diagonal_cross_entropy(logits.T).mean()


def observation_infonce(best: torch.Tensor, tpor_mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Observation-level InfoNCE over images.

    :param best: (B_i, B_j, S) with B_i = B_j = B: best[i, b, m] = max_q ⟨t^b_m, v^i_q⟩.
    :param tpor_mask: (B, S) bool.
    :returns: mean over the real (b, m) of −log softmax_i(best[:, b, m]/τ)[b]; zero (with
        graph) when there is no real sentence.
    """
    logits = best.permute(1, 2, 0) / temperature  # (B_b, S, B_i): sentence (b, m) over images i
    b = logits.shape[0]
    target = torch.arange(b, device=logits.device)[:, None].expand(b, logits.shape[1])
    losses = torch.logsumexp(logits, dim=-1) - logits.gather(-1, target[..., None]).squeeze(-1)  # (B, S)
    mask = tpor_mask.bool()
    if not bool(mask.any()):
        return logits.sum() * 0.0
    return losses[mask].mean()


def diversity_penalty(vpor: torch.Tensor) -> torch.Tensor:
    """mean_i ‖V^i V^iᵀ − I‖²_F for (B, Q, d) L2-normalized V-PORs (Frobenius, mean over images)."""
    gram = vpor @ vpor.transpose(-1, -2)
    eye = torch.eye(vpor.shape[1], dtype=vpor.dtype, device=vpor.device)
    return ((gram - eye) ** 2).sum((-1, -2)).mean()


def pcma_terms(
    vpor: torch.Tensor,
    tpor: torch.Tensor,
    tpor_mask: torch.Tensor,
    mode: str = "late_interaction",
    temperature: float = 0.07,
    ot_epsilon: float = 0.05,
    ot_iterations: int = 3,
) -> dict[str, torch.Tensor]:
    """The unweighted PCMA terms of B pairs from their V-PORs and T-PORs.

    :param vpor: (B, Q, d) V-PORs (normalized here). :param tpor: (B, S, d) T-PORs
        (normalized here). :param tpor_mask: (B, S) bool, True = a real sentence.
    :returns: ``phi`` (B, B) (rows images, columns reports), ``pair`` (symmetric InfoNCE
        over Φ/τ), ``obs`` (observation-level InfoNCE), ``div`` (diversity penalty).
    """
    if mode not in MODES:
        raise ValueError(f"pcma.mode must be one of {MODES}, got {mode!r}")
    if temperature <= 0:
        raise ValueError(f"pcma.temperature must be > 0, got {temperature}")
    v = F.normalize(at_least_float32(vpor), dim=-1)
    t = F.normalize(at_least_float32(tpor), dim=-1)
    mask = tpor_mask.bool().to(v.device)
    sim = observation_similarities(v, t)
    phi, best = late_interaction_phi(sim, mask)
    if mode == "optimal_transport":
        phi = optimal_transport_phi(sim, mask, ot_epsilon, ot_iterations)
    return {
        "phi": phi,
        "pair": symmetric_infonce(phi, temperature, valid=mask.any(-1)),
        "obs": observation_infonce(best, mask, temperature),
        "div": diversity_penalty(v),
    }


# -- the objective ------------------------------------------------------------------------------
class PlacePCMA(nn.Module):
    """The ``place_pcma`` objective: a VPOE, a T-POR module and the PCMA losses.

    Every key below is a config key; defaults are spec/place.md's reconstruction except where
    marked "(choice)", which the spec leaves open.

    :param embed_dim: d (filled by the model; the model's ``embed_dim``).
    :param num_queries: Q pathology queries (16). :param depth: VPOE decoder blocks (2).
    :param num_heads: VPOE attention heads (4, choice). :param mlp_ratio: VPOE MLP width (4, choice).
    :param mode: ``'late_interaction'`` (default) or ``'optimal_transport'``.
    :param temperature: τ_p (0.07), used by the pair- and the observation-level InfoNCE.
    :param weight: λ_PCMA on the pair-level loss (1).
    :param obs_weight: weight of the observation-level term (1, choice).
    :param diversity_weight: weight of the query diversity penalty (0.1).
    :param ot_epsilon, ot_iterations: Sinkhorn ε (0.05) and iterations (3).
    :param tpor_source: ``'sentences'`` (default) or ``'clauses'``.
    :param image_in_dim, text_in_dim: encoder widths for the VPOE's / T-POR's own input
        projections, used only when the model has no ``image_local_projection`` /
        ``text_local_projection`` (None = require the model's local projections).

    Returns ``loss_pcma``, ``loss_pcma_obs``, ``loss_pcma_div`` (each already weighted).
    """

    def __init__(
        self,
        embed_dim: int = 128,
        num_queries: int = 16,
        depth: int = 2,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        mode: str = "late_interaction",
        temperature: float = 0.07,
        weight: float = 1.0,
        obs_weight: float = 1.0,
        diversity_weight: float = 0.1,
        ot_epsilon: float = 0.05,
        ot_iterations: int = 3,
        tpor_source: str = "sentences",
        image_in_dim: int | None = None,
        text_in_dim: int | None = None,
    ):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"place_pcma.mode must be one of {MODES}, got {mode!r}")
        if temperature <= 0:
            raise ValueError(f"place_pcma.temperature must be > 0, got {temperature}")
        if ot_epsilon <= 0 or ot_iterations < 1:
            raise ValueError(f"place_pcma: ot_epsilon must be > 0 and ot_iterations >= 1, got {ot_epsilon}, {ot_iterations}")
        self.vpoe = VPOE(embed_dim, num_queries, depth, num_heads, mlp_ratio, in_dim=image_in_dim)
        self.tpor = TPOR(embed_dim, in_dim=text_in_dim, source=tpor_source)
        self.mode = mode
        self.temperature = float(temperature)
        self.weight, self.obs_weight, self.diversity_weight = float(weight), float(obs_weight), float(diversity_weight)
        self.ot_epsilon, self.ot_iterations = float(ot_epsilon), int(ot_iterations)

    def _extract(self, outputs):
        visual = self.vpoe(self.vpoe.patch_inputs(outputs))
        tpor, mask, spans = self.tpor(outputs)
        return visual, tpor, mask, spans

    def _terms(self, visual, tpor, mask) -> dict[str, torch.Tensor]:
        return pcma_terms(visual.vpor, tpor, mask, self.mode, self.temperature, self.ot_epsilon, self.ot_iterations)

    def forward(self, outputs) -> dict[str, torch.Tensor]:
        visual, tpor, mask, _ = self._extract(outputs)
        terms = self._terms(visual, tpor, mask)
        return {
            "loss_pcma": self.weight * terms["pair"],
            "loss_pcma_obs": self.obs_weight * terms["obs"],
            "loss_pcma_div": self.diversity_weight * terms["div"],
        }

    def observe(self, outputs) -> dict:
        """What the VPOE and the T-PORs see in a batch (for ``place-bench explain`` and tests).

        :returns: ``vpor`` (B, Q, d) and ``tpor`` (B, S, d), both L2-normalized;
            ``attention`` (B, Q, N) the last VPOE block's query→patch attention (head
            average, rows sum to 1) and ``attentions`` (depth, B, Q, N) every block's;
            ``grid`` (gh, gw) of the N patches (row-major); ``tpor_mask`` (B, S) bool;
            ``tpor_spans`` (B, S, 2) [start, end) word spans; ``phi`` (B, B) Φ of the
            configured mode (rows images, columns reports).
        """
        visual, tpor, mask, spans = self._extract(outputs)
        terms = self._terms(visual, tpor, mask)
        return {
            "vpor": F.normalize(at_least_float32(visual.vpor), dim=-1),
            "attention": visual.attention,
            "attentions": visual.attentions,
            "grid": tuple(outputs.image.grid_size),
            "tpor": F.normalize(at_least_float32(tpor), dim=-1),
            "tpor_mask": mask,
            "tpor_spans": spans,
            "phi": terms["phi"],
        }


@hookimpl
def place_bench_register(registrar):
    registrar.add("objective", "place_pcma", PlacePCMA)
