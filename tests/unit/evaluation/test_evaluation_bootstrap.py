"""Seeded bootstrap intervals, paired tests and mean ± s.d."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from place_bench.evaluation.bootstrap import (
    BootstrapResult,
    bootstrap_ci,
    mean_sd,
    paired_bootstrap_test,
    resample_indices,
)
from place_bench.evaluation.metrics import accuracy, auroc


def _binary_task(n, seed, signal=1.0):
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, 2, n)
    scores = rng.normal(size=n) + signal * targets
    return scores, targets


def test_ci_covers_point_estimate_and_record_is_json():
    scores, targets = _binary_task(300, seed=0)
    result = bootstrap_ci(auroc, scores, targets, n_resamples=500, seed=0)
    assert isinstance(result, BootstrapResult)
    assert result.value == pytest.approx(auroc(scores, targets))
    assert result.low < result.value < result.high
    assert result.n_valid == result.n_resamples == 500
    record = result.as_record()
    assert set(record) == {"value", "ci_low", "ci_high", "level", "n_resamples", "n_valid", "seed"}
    assert record["level"] == 0.95 and record["seed"] == 0
    assert json.loads(json.dumps(record)) == record


def test_ci_narrower_with_four_times_more_samples():
    small = bootstrap_ci(auroc, *_binary_task(200, seed=1), n_resamples=500, seed=0)
    large = bootstrap_ci(auroc, *_binary_task(800, seed=2), n_resamples=500, seed=0)
    width_small = small.high - small.low
    width_large = large.high - large.low
    # the width shrinks like 1/sqrt(N): about half
    assert width_large < 0.75 * width_small


def test_same_seed_same_ci_different_seed_different_ci():
    scores, targets = _binary_task(150, seed=3)
    a = bootstrap_ci(auroc, scores, targets, n_resamples=200, seed=7)
    b = bootstrap_ci(auroc, scores, targets, n_resamples=200, seed=7)
    c = bootstrap_ci(auroc, scores, targets, n_resamples=200, seed=8)
    assert (a.low, a.high) == (b.low, b.high)
    assert (a.low, a.high) != (c.low, c.high)
    assert a.value == c.value


def test_resamples_follow_documented_generator():
    values = np.arange(10.0)
    result = bootstrap_ci(np.mean, values, n_resamples=50, level=0.9, seed=11)
    rng = np.random.Generator(np.random.PCG64(11))
    means = [values[rng.integers(0, 10, size=10)].mean() for _ in range(50)]
    assert result.low == pytest.approx(np.percentile(means, 5))
    assert result.high == pytest.approx(np.percentile(means, 95))
    idx = list(resample_indices(10, 3, 11))
    rng = np.random.Generator(np.random.PCG64(11))
    for drawn in idx:
        np.testing.assert_array_equal(drawn, rng.integers(0, 10, size=10))


def test_degenerate_resamples_are_dropped_and_counted():
    targets = np.zeros(10, dtype=int)
    targets[0] = 1  # one positive: a resample missing index 0 has no AUROC
    scores = np.linspace(0.0, 1.0, 10)
    result = bootstrap_ci(auroc, scores, targets, n_resamples=300, seed=4)
    with_positive = sum(int((idx == 0).any()) for idx in resample_indices(10, 300, 4))
    assert 150 <= with_positive < 300  # the fixture really has degenerate resamples
    assert result.n_valid == with_positive
    assert result.n_resamples == 300


def test_metric_raising_value_error_counts_as_undefined():
    def strict_mean(x):
        if not (x == 0).any():
            raise ValueError("undefined without item 0")
        return float(x.mean())

    x = np.arange(10)
    result = bootstrap_ci(strict_mean, x, n_resamples=200, seed=5)
    assert result.n_valid == sum(int((idx == 0).any()) for idx in resample_indices(10, 200, 5))


def test_too_few_valid_resamples_raise():
    def exactly_one_zero(x):  # defined on the full set, on ~37 % of resamples
        return float(x.mean()) if np.count_nonzero(x == 0) == 1 else float("nan")

    with pytest.raises(ValueError, match="fewer than half"):
        bootstrap_ci(exactly_one_zero, np.arange(100), n_resamples=200, seed=0)


def test_undefined_point_estimate_and_mismatched_arrays_raise():
    with pytest.raises(ValueError, match="full test set"):
        bootstrap_ci(auroc, np.array([0.1, 0.2]), np.array([1, 1]))
    with pytest.raises(ValueError, match="length"):
        bootstrap_ci(auroc, np.zeros(4), np.zeros(5))
    with pytest.raises(ValueError):
        bootstrap_ci(np.mean, np.zeros(4), level=1.5)


def test_bootstrap_auroc_1000_by_1000_is_fast():
    scores, targets = _binary_task(1000, seed=6)
    start = time.perf_counter()
    bootstrap_ci(auroc, scores, targets, n_resamples=1000)
    assert time.perf_counter() - start < 10.0  # ~0.3 s when the machine is idle


# ------------------------------------------------------------------ paired test


def test_paired_identical_systems():
    scores, targets = _binary_task(200, seed=7)
    result = paired_bootstrap_test(auroc, (scores, targets), (scores.copy(), targets), n_resamples=300)
    assert result.difference == 0.0
    assert result.low == result.high == 0.0
    assert result.p_value == 1.0


def test_paired_clearly_better_system():
    rng = np.random.default_rng(8)
    targets = rng.integers(0, 2, 300)
    noise = rng.normal(size=300)
    better = noise + 2.0 * targets
    worse = noise + 0.3 * targets + rng.normal(size=300)
    result = paired_bootstrap_test(auroc, (better, targets), (worse, targets), n_resamples=500, seed=1)
    assert result.difference > 0
    assert result.low > 0
    assert result.p_value < 0.05
    assert result.value_a == pytest.approx(auroc(better, targets))
    assert result.difference == pytest.approx(result.value_a - result.value_b)
    reverse = paired_bootstrap_test(auroc, (worse, targets), (better, targets), n_resamples=500, seed=1)
    assert reverse.difference == pytest.approx(-result.difference)
    assert reverse.p_value == pytest.approx(result.p_value)
    assert set(result.as_record()) >= {"difference", "ci_low", "ci_high", "p_value", "n_valid", "seed"}


def test_paired_similar_systems_not_significant():
    rng = np.random.default_rng(9)
    targets = rng.integers(0, 3, 200)
    pred_a = np.where(rng.random(200) < 0.7, targets, rng.integers(0, 3, 200))
    pred_b = np.where(rng.random(200) < 0.7, targets, rng.integers(0, 3, 200))
    result = paired_bootstrap_test(accuracy, (pred_a, targets), (pred_b, targets), n_resamples=400)
    assert result.low <= 0 <= result.high or result.p_value >= 0.05


def test_paired_test_rejects_different_test_sets():
    with pytest.raises(ValueError, match="different length"):
        paired_bootstrap_test(np.mean, (np.zeros(5),), (np.zeros(6),))


# ------------------------------------------------------------------- mean ± s.d.


def test_mean_sd():
    mean, sd, n = mean_sd([0.70, 0.72, 0.74])
    assert mean == pytest.approx(0.72)
    assert sd == pytest.approx(0.02)  # ddof=1: sqrt((0.0004 + 0 + 0.0004) / 2)
    assert n == 3
    mean, sd, n = mean_sd([0.5])
    assert mean == 0.5 and np.isnan(sd) and n == 1
    with pytest.raises(ValueError):
        mean_sd([])


def test_compare_needs_a_metric_when_the_primary_metrics_differ(tmp_path):
    import pytest

    from place_bench.evaluation.compare import CompareError, compare_records

    a = {"key": "a", "primary_metric": "accuracy", "manifest": {"fingerprint": "sha256:x"}}
    b = {"key": "b", "primary_metric": "auroc", "manifest": {"fingerprint": "sha256:x"}}
    with pytest.raises(CompareError, match="primary metrics differ"):
        compare_records(a, tmp_path / "a.json", b, tmp_path / "b.json")
    c = dict(b, manifest={"fingerprint": "sha256:y"})
    with pytest.raises(CompareError, match="different manifests"):
        compare_records(a, tmp_path / "a.json", c, tmp_path / "c.json", metric="accuracy")
