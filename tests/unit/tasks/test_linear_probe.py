"""The linear-probe head trainer on feature fixtures."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from place_bench.plugins.tasks.linear_probe import probabilities, train_linear_head


def separable(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 1).long()  # 3 classes, linearly separable-ish
    return x, y


@pytest.mark.parametrize("options", [{}, {"optimizer": "adam", "plateau": {"factor": 0.5, "patience": 2},
                                          "clip_grad": 0.25}])
def test_head_learns_a_linear_rule_and_is_seeded(options):
    x, y = separable()
    head, log = train_linear_head(x, y, x, y, seed=0, lr=0.05, max_epochs=60, **options)
    accuracy = float((head(x).argmax(1) == y).float().mean())
    assert accuracy > 0.85 and 1 <= log["best_epoch"] <= log["epochs"] <= 60
    again, _ = train_linear_head(x, y, x, y, seed=0, lr=0.05, max_epochs=60, **options)
    assert torch.equal(head.weight, again.weight)
    other, _ = train_linear_head(x, y, x, y, seed=1, lr=0.05, max_epochs=60, **options)
    assert not torch.equal(head.weight, other.weight)


def test_early_stopping_keeps_the_best_validation_epoch():
    x, y = separable()
    noise = torch.randint(0, 3, y.shape, generator=torch.Generator().manual_seed(5))
    _, log = train_linear_head(x, y, x, noise, seed=0, lr=0.05, max_epochs=200, patience=3)
    assert log["epochs"] < 200 and log["epochs"] - log["best_epoch"] == 3


def test_binary_and_multilabel_heads_give_probabilities():
    x, y = separable()
    binary = (y > 0).float()[:, None]
    head, _ = train_linear_head(x, binary, x, binary, seed=0)
    p = probabilities(head, x, multiclass=False)
    assert p.shape == (60,) and ((p >= 0) & (p <= 1)).all()
    multi = torch.stack([(y > 0).float(), (y > 1).float()], 1)
    head, _ = train_linear_head(x, multi, x, multi, seed=0)
    assert probabilities(head, x, multiclass=False).shape == (60, 2)
    with pytest.raises(ValueError, match="optimizer"):
        train_linear_head(x, y, x, y, seed=0, optimizer="sgd")
    assert np.isfinite(probabilities(head, x, multiclass=False)).all()
