"""Instance-level image-report contrastive loss (ConVIRT; MGCA's and PLACE's ITA)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from place_bench.hookspecs import hookimpl


class GlobalInfoNCE(nn.Module):
    """Symmetric InfoNCE over the B pairs of a batch, on L2-normalized global embeddings.

    With v_i, t_i the normalized image and report embeddings and s_ij = v_i·t_j / τ:
    ℓ_i(v→t) = −log softmax_j(s_ij)[i] (rows: images), ℓ_i(t→v) = −log softmax_j(s_ji)[i],
    and loss = weight · (1/B) Σ_i [ a·ℓ_i(v→t) + b·ℓ_i(t→v) ].

    Settings of the literature:
    * ConVIRT paper: τ = 0.1, a = λ = 0.75, b = 1 − λ = 0.25;
    * MGCA's ITA and its ConVIRT re-implementation: τ = 0.07, a = b = 1 (a sum).

    :param name: the loss key is ``loss_<name>``.
    """

    def __init__(
        self,
        temperature: float = 0.07,
        image_to_text_weight: float = 1.0,
        text_to_image_weight: float = 1.0,
        weight: float = 1.0,
        name: str = "ita",
    ):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"global_infonce.temperature must be > 0, got {temperature}")
        self.temperature = temperature
        self.image_to_text_weight = image_to_text_weight
        self.text_to_image_weight = text_to_image_weight
        self.weight = weight
        self.name = name

    def forward(self, outputs) -> dict[str, torch.Tensor]:
        v = F.normalize(outputs.image_global, dim=-1)
        t = F.normalize(outputs.text_global, dim=-1)
        logits = v @ t.T / self.temperature
        target = torch.arange(logits.shape[0], device=logits.device)
        loss = self.image_to_text_weight * F.cross_entropy(logits, target)
        loss = loss + self.text_to_image_weight * F.cross_entropy(logits.T, target)
        return {f"loss_{self.name}": self.weight * loss}


@hookimpl
def place_bench_register(registrar):
    registrar.add("objective", "global_infonce", GlobalInfoNCE)
