"""SigLIP's pairwise sigmoid loss (Zhai et al., "Sigmoid Loss for Language Image
Pre-Training", ICCV 2023, arXiv 2303.15343) as a PLACE-Bench objective.

This module needs only torch: it reads the global projections of a
:class:`place_bench.model.outputs.PairOutputs` and nothing else of the suite.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class SigmoidPairLoss(nn.Module):
    """Pairwise sigmoid loss over the B x B image-report pairs of a batch.

    With x_i, y_j the L2-normalized image and report embeddings (the joint-space
    projections ``image_global`` and ``text_global``), t = exp(t') a learnable
    temperature and b a learnable bias, every pair (i, j) is one binary
    classification with logit ``l_ij = t * x_i·y_j + b`` and label
    ``z_ij = +1`` for i == j (the report of image i), ``-1`` otherwise::

        loss = weight * -(1 / B) * sum_i sum_j log sigmoid(z_ij * l_ij)

    This is the paper's Algorithm 1 and the authors' released trainer. (The
    paper's Eq. 1, written as log 1 / (1 + exp(z_ij (-t x_i·y_j + b))), carries
    b with the opposite sign; with b initialised at -10 only the form above
    starts with every pair predicted negative, the intent stated in the paper.)
    The paper's initialisation is t' = log 10, b = -10.

    Unlike InfoNCE, no softmax runs over the batch: each pair is scored on its
    own, and the sum over negatives is divided by B, not B². Under data-parallel
    training the loss is computed over each process's local batch (the paper
    exchanges embeddings between devices; this example does not).

    Contract (the suite's objective contract): built from a config dict
    ``dict(type="siglip", ...)`` with the arguments below; called with the
    model's :class:`~place_bench.model.outputs.PairOutputs`; returns
    ``{"loss_<name>": scalar tensor}``, which the engine sums with the other
    objectives' losses and back-propagates. t' and b are parameters of this
    module, so the optimizer trains them and the checkpoint saves them as
    ``objectives.<index>.log_temperature`` and ``objectives.<index>.bias``.

    :param temperature_init: initial t (> 0); t' starts at log(temperature_init).
    :param bias_init: initial b.
    :param learnable: train t' and b (the paper); False keeps them fixed.
    :param weight: multiplies the loss.
    :param name: the loss key is ``loss_<name>``.
    """

    def __init__(
        self,
        temperature_init: float = 10.0,
        bias_init: float = -10.0,
        learnable: bool = True,
        weight: float = 1.0,
        name: str = "siglip",
    ):
        super().__init__()
        if not temperature_init > 0:
            raise ValueError(f"siglip.temperature_init must be > 0, got {temperature_init}")
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature_init)), requires_grad=learnable)
        self.bias = nn.Parameter(torch.tensor(float(bias_init)), requires_grad=learnable)
        self.weight = weight
        self.name = name

    @property
    def temperature(self) -> torch.Tensor:
        """t = exp(t'), a scalar tensor."""
        return self.log_temperature.exp()

    def logits(self, image_global: torch.Tensor, text_global: torch.Tensor) -> torch.Tensor:
        """(B, B) pair logits t * x_i·y_j + b of (B, d) image and (B, d) report embeddings
        (normalized here; computed in float32, or float64 for float64 input)."""
        dtype = torch.float64 if image_global.dtype == torch.float64 else torch.float32
        x = F.normalize(image_global.to(dtype), dim=-1)
        y = F.normalize(text_global.to(dtype), dim=-1)
        return self.temperature.to(dtype) * (x @ y.T) + self.bias.to(dtype)

    def forward(self, outputs) -> dict[str, torch.Tensor]:
        logits = self.logits(outputs.image_global, outputs.text_global)
        n = logits.shape[0]
        if logits.shape != (n, n):
            raise ValueError(f"siglip needs as many reports as images, got logits of shape {tuple(logits.shape)}")
        signs = 2 * torch.eye(n, dtype=logits.dtype, device=logits.device) - 1
        loss = -F.logsigmoid(signs * logits).sum() / n
        return {f"loss_{self.name}": self.weight * loss}
