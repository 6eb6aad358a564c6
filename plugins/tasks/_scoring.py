"""Whole-test-set classification scores with bootstrap intervals, shared by the tasks.

Kinds of targets (what :func:`classification_kind` returns):

* ``"multilabel"``: targets float ``(N, L)``, L > 1, in {0, 1}; scores ``(N, L)`` sigmoid
  probabilities; primary metric ``auroc_macro`` (CheXpert's 5 labels);
* ``"binary"``: targets ``(N, 1)`` or ``(N,)`` in {0, 1}; scores ``(N,)`` probabilities of the
  positive class; primary ``auroc`` (RSNA);
* ``"multiclass"``: targets int64 ``(N,)``; scores ``(N, C)`` softmax probabilities; primary
  ``accuracy`` (COVIDx, zero-shot, probes).

Every metric carries a seeded percentile bootstrap interval over test images
(:func:`place_bench.evaluation.bootstrap.bootstrap_ci`).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

from place_bench.evaluation import metrics as M
from place_bench.evaluation.bootstrap import bootstrap_ci

PRIMARY = {"multilabel": "auroc_macro", "binary": "auroc", "multiclass": "accuracy"}


def classification_kind(targets: np.ndarray) -> str:
    if targets.dtype.kind in "iu" and targets.ndim == 1:
        return "multiclass"
    if targets.ndim == 1 or targets.shape[1] == 1:
        return "binary"
    return "multilabel"


def with_ci(metric_fn: Callable[..., float], *arrays: Any, n_resamples: int, seed: int) -> dict[str, Any]:
    """``bootstrap_ci(...).as_record()``; a finite point value whose resamples are mostly
    undefined (tiny test sets) is kept with ``ci_low = ci_high = None`` and the reason."""
    try:
        return bootstrap_ci(metric_fn, *arrays, n_resamples=n_resamples, seed=seed).as_record()
    except ValueError as exc:
        value = float(metric_fn(*arrays))
        if not math.isfinite(value):
            raise ValueError(f"metric {getattr(metric_fn, '__name__', metric_fn)!r} is undefined on this test set "
                             f"(e.g. only one class present): {exc}") from None
        return {"value": value, "ci_low": None, "ci_high": None, "n_resamples": int(n_resamples), "n_valid": 0,
                "seed": int(seed), "level": 0.95, "ci_error": str(exc)}


def score_classification(
    scores: np.ndarray,
    targets: np.ndarray,
    label_names: Sequence[str] = (),
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[dict[str, dict], str, dict[str, Any]]:
    """(metrics, primary metric name, extra) of probabilities ``scores`` against ``targets``."""
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    kind = classification_kind(targets)
    extra: dict[str, Any] = {"target_kind": kind}
    out: dict[str, dict] = {}
    if kind == "multilabel":
        out["auroc_macro"] = with_ci(M.auroc, scores, targets, n_resamples=n_resamples, seed=seed)
        extra["per_label_auroc"] = {str(k): (None if math.isnan(v) else v)
                                    for k, v in M.per_label_auroc(scores, targets, list(label_names)).items()}
    elif kind == "binary":
        s, t = scores.reshape(-1), targets.reshape(-1).astype(np.int64)
        out["auroc"] = with_ci(M.auroc, s, t, n_resamples=n_resamples, seed=seed)
        out["accuracy"] = with_ci(M.accuracy, s, t, n_resamples=n_resamples, seed=seed)
        out["f1"] = with_ci(M.f1, s, t, n_resamples=n_resamples, seed=seed)
    else:
        n_classes = scores.shape[1]
        out["accuracy"] = with_ci(M.accuracy, scores, targets, n_resamples=n_resamples, seed=seed)
        out["f1_macro"] = with_ci(lambda s, t: M.macro_f1(s, t, n_classes), scores, targets,
                                  n_resamples=n_resamples, seed=seed)
        try:
            out["auroc_macro"] = with_ci(M.auroc, scores, targets, n_resamples=n_resamples, seed=seed)
        except ValueError as exc:  # a class absent from a tiny test split
            extra["auroc_macro_error"] = str(exc)
    return out, PRIMARY[kind], extra
