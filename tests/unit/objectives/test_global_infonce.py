"""The instance-level InfoNCE (ConVIRT, MGCA ITA) against a hand computation."""

import math

import pytest
import torch

from place_bench.model.outputs import PairOutputs
from place_bench.plugins.objectives.convirt import GlobalInfoNCE

V = [[1.0, 0.0], [0.6, 0.8], [0.0, 2.0]]
T = [[0.8, 0.6], [1.0, 1.0], [-1.0, 0.5]]


def outputs(v, t):
    return PairOutputs(image=None, text=None, image_global=torch.tensor(v, requires_grad=True),
                       text_global=torch.tensor(t, requires_grad=True))


def hand_loss(v, t, tau, a, b):
    unit = lambda x: [c / math.sqrt(sum(y * y for y in x)) for c in x]  # noqa: E731
    v, t = [unit(x) for x in v], [unit(x) for x in t]
    n = len(v)
    s = [[sum(p * q for p, q in zip(v[i], t[j])) / tau for j in range(n)] for i in range(n)]
    v2t = [-(s[i][i] - math.log(sum(math.exp(s[i][j]) for j in range(n)))) for i in range(n)]
    t2v = [-(s[i][i] - math.log(sum(math.exp(s[j][i]) for j in range(n)))) for i in range(n)]
    return sum(a * x + b * y for x, y in zip(v2t, t2v)) / n


@pytest.mark.parametrize("tau, a, b", [(0.1, 0.75, 0.25), (0.07, 1.0, 1.0), (1.0, 0.3, 0.0)])
def test_matches_hand_computation(tau, a, b):
    loss = GlobalInfoNCE(temperature=tau, image_to_text_weight=a, text_to_image_weight=b, weight=2.0, name="x")
    got = loss(outputs(V, T))["loss_x"]
    assert got.item() == pytest.approx(2.0 * hand_loss(V, T, tau, a, b), rel=1e-5)


def test_gradients_reach_both_sides():
    out = outputs(V, T)
    GlobalInfoNCE()(out)["loss_ita"].backward()
    assert out.image_global.grad.abs().sum() > 0 and out.text_global.grad.abs().sum() > 0


def test_bad_temperature():
    with pytest.raises(ValueError, match="temperature"):
        GlobalInfoNCE(temperature=0)
