"""Seeded bootstrap confidence intervals, paired bootstrap tests, mean ± s.d.

Resampling contract (shared by :func:`bootstrap_ci` and
:func:`paired_bootstrap_test`, reproduced by :func:`resample_indices`): with
``rng = numpy.random.Generator(numpy.random.PCG64(seed))``, resample ``r``
(``r = 0 .. n_resamples-1``, in order) is ``rng.integers(0, N, size=N)`` — N row
indices drawn with replacement. Every array passed in is indexed by those rows
along axis 0, so axis 0 must be the test item (image, query) in all of them.

A resample on which the metric is undefined — it returns nan/inf, or raises
``ValueError`` as ``sklearn.metrics.roc_auc_score`` does when one class is
missing — is dropped and counted (``n_valid`` = the resamples kept). Fewer than
half valid raises ``ValueError``: the interval would describe a different
population than the one evaluated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from place_bench.evaluation.metrics import as_numpy

__all__ = [
    "BootstrapResult",
    "PairedBootstrapResult",
    "bootstrap_ci",
    "mean_sd",
    "paired_bootstrap_test",
    "resample_indices",
]

MetricFn = Callable[..., Any]


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with its percentile bootstrap interval ``[low, high]``."""

    value: float
    low: float
    high: float
    n_resamples: int
    n_valid: int
    level: float
    seed: int

    def as_record(self) -> dict[str, float | int]:
        """JSON-able dict: value, ci_low, ci_high, level, n_resamples, n_valid, seed."""
        return {
            "value": float(self.value),
            "ci_low": float(self.low),
            "ci_high": float(self.high),
            "level": float(self.level),
            "n_resamples": int(self.n_resamples),
            "n_valid": int(self.n_valid),
            "seed": int(self.seed),
        }


@dataclass(frozen=True)
class PairedBootstrapResult:
    """``difference = value_a - value_b`` with its percentile interval and two-sided p-value."""

    difference: float
    low: float
    high: float
    p_value: float
    value_a: float
    value_b: float
    n_resamples: int
    n_valid: int
    level: float
    seed: int

    def as_record(self) -> dict[str, float | int]:
        """JSON-able dict: difference, ci_low, ci_high, p_value, value_a, value_b, level, n_resamples, n_valid, seed."""
        return {
            "difference": float(self.difference),
            "ci_low": float(self.low),
            "ci_high": float(self.high),
            "p_value": float(self.p_value),
            "value_a": float(self.value_a),
            "value_b": float(self.value_b),
            "level": float(self.level),
            "n_resamples": int(self.n_resamples),
            "n_valid": int(self.n_valid),
            "seed": int(self.seed),
        }


def _check_settings(n_resamples: int, level: float, seed: int) -> None:
    if isinstance(n_resamples, bool) or int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < float(level) < 1.0:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")


def _as_arrays(arrays: Sequence[Any], what: str = "arrays") -> list[np.ndarray]:
    out = [as_numpy(a) for a in arrays]
    if not out:
        raise ValueError(f"no {what} to resample")
    for a in out:
        if a.ndim == 0:
            raise ValueError(f"{what} must have a leading test-item axis, got a scalar")
    lengths = {a.shape[0] for a in out}
    if len(lengths) != 1:
        raise ValueError(f"{what} differ in length along axis 0: {sorted(lengths)}")
    if out[0].shape[0] == 0:
        raise ValueError("empty test set")
    return out


def _scalar(value: Any) -> float:
    v = np.asarray(value, dtype=np.float64)
    if v.size != 1:
        raise TypeError(f"metric_fn must return a scalar, got shape {v.shape}")
    return float(v.reshape(()))


def _resampled(metric_fn: MetricFn, arrays: Sequence[np.ndarray], idx: np.ndarray) -> float:
    """The metric on one resample; nan when it is undefined there (nan/inf or ValueError)."""
    try:
        v = _scalar(metric_fn(*(a[idx] for a in arrays)))
    except ValueError:
        return float("nan")
    return v if np.isfinite(v) else float("nan")


def _point(metric_fn: MetricFn, arrays: Sequence[np.ndarray]) -> float:
    v = _scalar(metric_fn(*arrays))
    if not np.isfinite(v):
        raise ValueError(f"the metric is undefined ({v}) on the full test set")
    return v


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(values, [100.0 * alpha, 100.0 * (1.0 - alpha)])
    return float(low), float(high)


def _require_valid(n_valid: int, n_resamples: int) -> None:
    if 2 * n_valid < n_resamples:
        raise ValueError(
            f"the metric is undefined on {n_resamples - n_valid} of {n_resamples} bootstrap "
            "resamples (fewer than half valid); the test set is too small or too unbalanced "
            "for a bootstrap interval"
        )


def resample_indices(n: int, n_resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield the ``n_resamples`` index arrays (each (n,) int64) of the module's contract."""
    rng = np.random.Generator(np.random.PCG64(seed))
    for _ in range(int(n_resamples)):
        yield rng.integers(0, n, size=n)


def bootstrap_ci(
    metric_fn: MetricFn,
    *arrays: Any,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapResult:
    """Percentile bootstrap interval of ``metric_fn(*arrays)`` over test items.

    ``arrays``: one or more arrays (numpy or torch) sharing axis 0 = test item,
    e.g. ``bootstrap_ci(auroc, scores, targets)``; ``metric_fn`` returns a scalar.
    ``value`` is the metric on the full arrays (it must be finite, else
    ``ValueError``); ``low``/``high`` are the ``(1-level)/2`` and
    ``(1+level)/2`` percentiles (numpy linear interpolation) of the metric over
    the valid resamples (see the module docstring for drawing and dropping).
    """
    _check_settings(n_resamples, level, seed)
    data = _as_arrays(arrays)
    value = _point(metric_fn, data)
    n = data[0].shape[0]
    samples = np.array([_resampled(metric_fn, data, idx) for idx in resample_indices(n, n_resamples, seed)])
    valid = samples[~np.isnan(samples)]
    _require_valid(valid.size, n_resamples)
    low, high = _interval(valid, level)
    return BootstrapResult(value, low, high, int(n_resamples), int(valid.size), float(level), int(seed))


def paired_bootstrap_test(
    metric_fn: MetricFn,
    arrays_a: Sequence[Any],
    arrays_b: Sequence[Any],
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedBootstrapResult:
    """Paired bootstrap comparison of two systems scored on the same test items.

    ``arrays_a`` / ``arrays_b``: the argument tuples of ``metric_fn`` for system
    A and B, e.g. ``(scores_a, targets)`` and ``(scores_b, targets)``. All arrays
    of both tuples must have the same length N along axis 0 (``ValueError``
    otherwise), and row i must be the same test item in both. Each resample
    draws one index array and applies it to both systems, so the difference
    ``d = metric(A) - metric(B)`` keeps the pairing. A resample is valid when
    both metrics are defined on it.

    Returns the point difference, its percentile interval at ``level``, and a
    two-sided p-value for H0: d = 0, estimated from the B valid resampled
    differences d_1..d_B as::

        p = min(1, 2 * min(1 + #{d_i <= 0}, 1 + #{d_i >= 0}) / (B + 1))

    i.e. twice the (+1 smoothed) share of resampled differences on the far side
    of 0 from the bulk. Identical systems give d_i = 0 everywhere and p = 1; a
    system better on every resample gives p = 2 / (B + 1), never 0.
    """
    _check_settings(n_resamples, level, seed)
    if not isinstance(arrays_a, (tuple, list)):
        arrays_a = (arrays_a,)
    if not isinstance(arrays_b, (tuple, list)):
        arrays_b = (arrays_b,)
    data_a = _as_arrays(arrays_a, "arrays_a")
    data_b = _as_arrays(arrays_b, "arrays_b")
    if data_a[0].shape[0] != data_b[0].shape[0]:
        raise ValueError(
            f"the two systems were scored on test sets of different length "
            f"({data_a[0].shape[0]} vs {data_b[0].shape[0]}); a paired test needs the same items"
        )
    value_a = _point(metric_fn, data_a)
    value_b = _point(metric_fn, data_b)
    n = data_a[0].shape[0]
    diffs = np.array(
        [
            _resampled(metric_fn, data_a, idx) - _resampled(metric_fn, data_b, idx)
            for idx in resample_indices(n, n_resamples, seed)
        ]
    )
    valid = diffs[~np.isnan(diffs)]
    _require_valid(valid.size, n_resamples)
    low, high = _interval(valid, level)
    below = int(np.count_nonzero(valid <= 0))
    above = int(np.count_nonzero(valid >= 0))
    p_value = min(1.0, 2.0 * (1 + min(below, above)) / (valid.size + 1))
    return PairedBootstrapResult(
        value_a - value_b, low, high, p_value, value_a, value_b,
        int(n_resamples), int(valid.size), float(level), int(seed),
    )


def mean_sd(values: Iterable[float]) -> tuple[float, float, int]:
    """``(mean, sample s.d. with ddof=1, n)`` of e.g. one metric over training seeds.

    The s.d. is ``nan`` for n = 1 (no warning); an empty input raises ``ValueError``.
    """
    raw = as_numpy(values) if hasattr(values, "shape") else [float(x) for x in values]
    v = np.asarray(raw, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("mean_sd of no values")
    sd = float(np.std(v, ddof=1)) if v.size > 1 else float("nan")
    return float(np.mean(v)), sd, int(v.size)
