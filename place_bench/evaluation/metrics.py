"""Whole-test-set metrics as pure functions on arrays.

Every function takes the scores/predictions of the *whole* evaluated set (never
one batch) as numpy arrays; torch tensors are accepted and converted
(:func:`as_numpy`). Axis 0 is always the test item (image or query). Nothing here
mutates its inputs or keeps state, and no function emits warnings for the
degenerate cases documented below: they return ``nan`` instead, which
:func:`place_bench.evaluation.bootstrap.bootstrap_ci` drops and counts.

Conventions
-----------
* Binary targets are in {0, 1} (bool accepted); 1 is the positive class.
* Multi-class targets are integer class ids in ``[0, C)``.
* Scores are any real numbers (probabilities, logits, similarities) unless a
  function says it thresholds them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "accuracy",
    "as_numpy",
    "auroc",
    "binary_precision_recall_f1",
    "f1",
    "macro_f1",
    "per_label_auroc",
    "per_query_retrieval",
    "precision",
    "recall",
    "retrieval_metrics",
    "znormalize_per_class",
]


def as_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a numpy array; a torch tensor is detached and moved to CPU.

    Floating-point tensors are converted to float64 (so bfloat16/float16 work);
    integer and bool tensors keep their dtype.
    """
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        t = x.detach().cpu()
        if t.is_floating_point():
            t = t.double()
        return t.numpy()
    return np.asarray(x)


# --------------------------------------------------------------------------- AUROC


def _binary_targets(targets: np.ndarray, what: str = "targets") -> np.ndarray:
    if targets.size and not np.isin(targets, (0, 1)).all():
        raise ValueError(f"{what} must be binary (0/1 or bool)")
    return targets.astype(np.float64)


def _finite_scores(scores: Any) -> np.ndarray:
    s = as_numpy(scores).astype(np.float64)
    if not np.isfinite(s).all():
        raise ValueError("scores contain nan or inf")
    return s


def _class_ids(targets: np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Validate 1-D integer class ids (in [0, num_classes) when given); return int64."""
    if targets.ndim != 1:
        raise ValueError(f"class targets must be 1-D, got shape {targets.shape}")
    if targets.dtype.kind == "f":
        if not np.all(targets == np.round(targets)):
            raise ValueError("class targets must be integer class ids")
    elif targets.dtype.kind not in "iub":
        raise ValueError(f"class targets must be integer class ids, got dtype {targets.dtype}")
    ids = targets.astype(np.int64)
    if ids.size and ids.min() < 0:
        raise ValueError("class ids must be non-negative")
    if num_classes is not None and ids.size and ids.max() >= num_classes:
        raise ValueError(f"class ids must lie in [0, {num_classes})")
    return ids


def _auroc_columns(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Column-wise binary AUROC of (N, L) scores against (N, L) 0/1 targets.

    Mann-Whitney form: ``(R+ - n+(n+ + 1)/2) / (n+ n-)`` with average ranks, so a
    tied positive/negative pair counts 1/2 — the same value as the trapezoidal
    area under sklearn's ROC curve. A column with only one class present is ``nan``.
    """
    n = scores.shape[0]
    n_pos = targets.sum(axis=0)
    n_neg = n - n_pos
    out = np.full(scores.shape[1], np.nan)
    ok = (n_pos > 0) & (n_neg > 0)
    if ok.any():
        ranks = rankdata(scores[:, ok], method="average", axis=0)
        rank_sum = (ranks * targets[:, ok]).sum(axis=0)
        u = rank_sum - n_pos[ok] * (n_pos[ok] + 1) / 2.0
        out[ok] = u / (n_pos[ok] * n_neg[ok])
    return out


def _auroc_setup(scores: Any, targets: Any) -> tuple[str, np.ndarray, np.ndarray]:
    """Classify the task and return (kind, scores (N, L), 0/1 targets (N, L))."""
    s = _finite_scores(scores)
    t = as_numpy(targets)
    if s.shape[:1] != t.shape[:1]:
        raise ValueError(f"scores {s.shape} and targets {t.shape} differ in length")
    if s.ndim == 1 and t.ndim == 1:
        return "binary", s[:, None], _binary_targets(t)[:, None]
    if s.ndim == 2 and t.shape == s.shape:
        return "multilabel", s, _binary_targets(t)
    if s.ndim == 2 and t.ndim == 1:
        ids = _class_ids(t, s.shape[1])
        onehot = (ids[:, None] == np.arange(s.shape[1])[None, :]).astype(np.float64)
        return "multiclass", s, onehot
    raise ValueError(
        f"unsupported shapes: scores {s.shape}, targets {t.shape}; expected (N,)/(N,), "
        "(N, L)/(N, L) multi-label or (N, C)/(N,) multi-class"
    )


def per_label_auroc(
    scores: Any, targets: Any, label_names: Sequence[str] | None = None
) -> np.ndarray | dict[str, float]:
    """AUROC of each label (multi-label) or each class one-vs-rest (multi-class).

    Shapes as in :func:`auroc`. Returns a float array of shape (L,) (or (C,); (1,)
    for binary input), ``nan`` where the label's targets hold a single class
    (unscorable). With ``label_names`` (length L) returns ``{name: auroc}`` instead.
    """
    _, s, t = _auroc_setup(scores, targets)
    values = _auroc_columns(s, t)
    if label_names is None:
        return values
    if len(label_names) != values.shape[0]:
        raise ValueError(f"{len(label_names)} label names for {values.shape[0]} labels")
    return {str(name): float(v) for name, v in zip(label_names, values)}


def auroc(scores: Any, targets: Any, average: str | None = "macro") -> float | np.ndarray:
    """Area under the ROC curve over the whole test set.

    * binary: ``scores`` (N,), ``targets`` (N,) in {0, 1};
    * multi-label: ``scores`` (N, L), ``targets`` (N, L) in {0, 1};
    * multi-class: ``scores`` (N, C) (logits or probabilities), ``targets`` (N,)
      int in [0, C), scored one-vs-rest: class c is positive, all others negative.
      A binary task given as (N, 2) softmax scores is this case; for softmax
      scores both one-vs-rest AUROCs equal the AUROC of column 1.

    Ties between a positive and a negative score count 1/2 (equal to
    ``sklearn.metrics.roc_auc_score``). Scores must be finite.

    ``average``:
      * ``"macro"`` – unweighted mean over the scorable labels/classes. A label
        whose targets are all one class (or a class absent from ``targets``) is
        skipped; if no label is scorable the result is ``nan`` (no warning).
        For binary input: the AUROC, or ``nan`` with a single class present.
      * ``"micro"`` – one binary AUROC over all (item, label) pairs flattened
        (multi-class: over the one-hot targets); ``nan`` if one class only.
      * ``None`` – the per-label array, see :func:`per_label_auroc`.
    """
    kind, s, t = _auroc_setup(scores, targets)
    if average is None:
        return _auroc_columns(s, t)
    if average == "micro":
        return float(_auroc_columns(s.reshape(-1, 1), t.reshape(-1, 1))[0])
    if average != "macro":
        raise ValueError(f"average must be 'macro', 'micro' or None, got {average!r}")
    values = _auroc_columns(s, t)
    scorable = values[~np.isnan(values)]
    return float(scorable.mean()) if scorable.size else float("nan")


# ----------------------------------------------------------- classification scores


def _predictions(scores_or_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Hard predictions (N,) int64 from scores or predictions.

    (N, C) scores → arg-max over C (first maximum on ties); (N,) int/bool →
    taken as predicted class ids; (N,) float → probabilities of the positive
    class, predicted 1 where ``p >= threshold`` (values outside [0, 1] are
    rejected, so logits are not silently thresholded at 0.5).
    """
    x = as_numpy(scores_or_pred)
    if x.ndim == 2:
        if not np.isfinite(x).all():
            raise ValueError("scores contain nan or inf")
        return np.argmax(x, axis=1).astype(np.int64)
    if x.ndim != 1:
        raise ValueError(f"expected (N,) predictions or (N, C) scores, got shape {x.shape}")
    if x.dtype.kind in "iub":
        return x.astype(np.int64)
    if x.dtype.kind != "f":
        raise ValueError(f"unsupported prediction dtype {x.dtype}")
    if not (np.isfinite(x).all() and (x >= 0).all() and (x <= 1).all()):
        raise ValueError("1-D float scores must be probabilities in [0, 1]")
    return (x >= threshold).astype(np.int64)


def _paired(scores_or_pred: Any, targets: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    pred = _predictions(scores_or_pred, threshold)
    t = as_numpy(targets)
    if t.ndim != 1 or t.shape[0] != pred.shape[0]:
        raise ValueError(f"targets must be (N,) with N={pred.shape[0]}, got {t.shape}")
    if pred.shape[0] == 0:
        raise ValueError("empty test set")
    return pred, t


def accuracy(scores_or_pred: Any, targets: Any, threshold: float = 0.5) -> float:
    """Fraction of items whose prediction equals the target class.

    ``scores_or_pred``: (N, C) scores → arg-max; (N,) int/bool predictions; or (N,)
    float probabilities of the positive class of a binary task, predicted 1 where
    ``p >= threshold`` (default 0.5; must lie in [0, 1]). ``targets``: (N,) int.
    """
    pred, t = _paired(scores_or_pred, targets, threshold)
    return float(np.mean(pred == _class_ids(t)))


def macro_f1(pred: Any, targets: Any, num_classes: int) -> float:
    """Unweighted mean over classes ``0..num_classes-1`` of the per-class F1.

    ``pred``: (N,) int predictions or (N, C) scores (arg-max); ``targets``: (N,)
    int. Every class in ``range(num_classes)`` counts, including one absent from
    both predictions and targets, whose F1 is 0 (sklearn ``zero_division=0``).
    """
    p, t = _paired(pred, targets, 0.5)
    labels = np.arange(int(num_classes))
    p = _class_ids(p, num_classes)
    t = _class_ids(t, num_classes)
    tp, fp, fn = _confusion_counts(p, t, labels.size)
    return float(np.mean(_safe_ratio(2 * tp, 2 * tp + fp + fn)))


def _confusion_counts(pred: np.ndarray, targets: np.ndarray, num_classes: int) -> tuple[np.ndarray, ...]:
    """Per-class (TP, FP, FN) counts. Computed with ``np.bincount`` rather than sklearn's
    ``f1_score``, whose input validation costs ~2 ms a call -- too slow inside a bootstrap;
    the tests check equality with sklearn."""
    matrix = np.bincount(targets * num_classes + pred, minlength=num_classes * num_classes)
    matrix = matrix.reshape(num_classes, num_classes)  # rows = target, columns = prediction
    tp = np.diag(matrix).astype(np.float64)
    return tp, matrix.sum(axis=0) - tp, matrix.sum(axis=1) - tp


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den`` is 0 (sklearn's ``zero_division=0``)."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def _binary_pair(scores_or_pred: Any, targets: Any, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    x = as_numpy(scores_or_pred)
    if x.ndim == 2 and x.shape[1] != 2:
        raise ValueError(f"binary metrics take (N, 2) scores, got {x.shape}")
    p, t = _paired(x, targets, threshold)
    return _binary_targets(p, "predictions").astype(np.int64), _binary_targets(t).astype(np.int64)


def precision(scores_or_pred: Any, targets: Any, threshold: float = 0.5) -> float:
    """Binary precision TP / (TP + FP) of class 1; 0 when nothing is predicted 1.

    ``scores_or_pred``: (N, 2) scores (arg-max, e.g. softmax of a fine-tuned
    head), (N,) 0/1 predictions, or (N,) probabilities thresholded at
    ``threshold`` as in :func:`accuracy`. ``targets``: (N,) in {0, 1}.
    """
    p, t = _binary_pair(scores_or_pred, targets, threshold)
    tp, fp, _ = _confusion_counts(p, t, 2)
    return float(_safe_ratio(tp[1], tp[1] + fp[1]))


def recall(scores_or_pred: Any, targets: Any, threshold: float = 0.5) -> float:
    """Binary recall TP / (TP + FN) of class 1; 0 when no target is 1. Inputs as :func:`precision`."""
    p, t = _binary_pair(scores_or_pred, targets, threshold)
    tp, _, fn = _confusion_counts(p, t, 2)
    return float(_safe_ratio(tp[1], tp[1] + fn[1]))


def f1(scores_or_pred: Any, targets: Any, threshold: float = 0.5) -> float:
    """Binary F1 of class 1 (harmonic mean of precision and recall; 0 when both are 0).

    Inputs as :func:`precision`.
    """
    p, t = _binary_pair(scores_or_pred, targets, threshold)
    tp, fp, fn = _confusion_counts(p, t, 2)
    return float(_safe_ratio(2 * tp[1], 2 * tp[1] + fp[1] + fn[1]))


def binary_precision_recall_f1(scores_or_pred: Any, targets: Any, threshold: float = 0.5) -> dict[str, float]:
    """``{"precision", "recall", "f1"}`` of class 1, as the three functions above."""
    return {
        "precision": precision(scores_or_pred, targets, threshold),
        "recall": recall(scores_or_pred, targets, threshold),
        "f1": f1(scores_or_pred, targets, threshold),
    }


# ----------------------------------------------------------------------- retrieval


def _label_ids(query_labels: Any, pool_labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to shared integer ids; equal ids ⇔ equal labels (vectors: all entries equal)."""
    q = as_numpy(query_labels)
    p = as_numpy(pool_labels)
    if q.ndim == 1 and p.ndim == 1:
        _, inv = np.unique(np.concatenate([q, p]), return_inverse=True)
    elif q.ndim == 2 and p.ndim == 2 and q.shape[1] == p.shape[1]:
        _, inv = np.unique(np.concatenate([q, p], axis=0), axis=0, return_inverse=True)
    else:
        raise ValueError(
            f"query labels {q.shape} and pool labels {p.shape} must both be (n,) ids "
            "or (n, L) label vectors with the same L"
        )
    inv = inv.reshape(-1)
    return inv[: q.shape[0]], inv[q.shape[0]:]


def _ks(ks: Iterable[int]) -> list[int]:
    out: list[int] = []
    for k in ks:
        if int(k) != k or k < 1:
            raise ValueError(f"K must be a positive integer, got {k!r}")
        if int(k) not in out:
            out.append(int(k))
    if not out:
        raise ValueError("ks is empty")
    return out


def per_query_retrieval(
    similarity: Any,
    query_labels: Any,
    pool_labels: Any,
    ks: Iterable[int] = (1, 5, 10, 100),
    chunk_size: int = 1024,
) -> dict[str, np.ndarray]:
    """Per-query ``precision@K`` and ``hit@K``, each a float array of shape (Q,).

    ``similarity``: (Q, P), higher = more similar; the whole pool is ranked for
    every query by a stable arg-sort of ``-similarity``, so ties keep pool-index
    order (lower index ranks first). ``query_labels`` (Q,) / ``pool_labels`` (P,)
    are class ids, or (Q, L) / (P, L) label vectors; a pool item is relevant to a
    query when its label equals the query's (vectors: identical in every entry).

    ``precision@K`` = relevant items among the top K' / K' and ``hit@K`` = 1.0 if
    any of the top K' is relevant else 0.0, with K' = min(K, P): a K beyond the
    pool size is evaluated on the whole pool (keys still say K). Queries are
    processed ``chunk_size`` rows at a time to bound memory. The per-query arrays
    let a bootstrap resample queries (their mean is :func:`retrieval_metrics`).
    """
    sim = _finite_scores(similarity)
    if sim.ndim != 2:
        raise ValueError(f"similarity must be (Q, P), got shape {sim.shape}")
    n_query, n_pool = sim.shape
    if n_pool == 0:
        raise ValueError("empty retrieval pool")
    q_ids, p_ids = _label_ids(query_labels, pool_labels)
    if q_ids.shape[0] != n_query or p_ids.shape[0] != n_pool:
        raise ValueError(
            f"similarity {sim.shape} does not match {q_ids.shape[0]} query and "
            f"{p_ids.shape[0]} pool labels"
        )
    ks = _ks(ks)
    k_top = min(max(ks), n_pool)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"precision@{k}"] = np.empty(n_query)
        out[f"hit@{k}"] = np.empty(n_query)
    for start in range(0, n_query, max(1, int(chunk_size))):
        rows = slice(start, min(start + max(1, int(chunk_size)), n_query))
        order = np.argsort(-sim[rows], axis=1, kind="stable")[:, :k_top]
        found = np.cumsum(p_ids[order] == q_ids[rows, None], axis=1)
        for k in ks:
            kk = min(k, n_pool)
            out[f"precision@{k}"][rows] = found[:, kk - 1] / kk
            out[f"hit@{k}"][rows] = (found[:, kk - 1] > 0).astype(np.float64)
    return out


def retrieval_metrics(
    similarity: Any,
    query_labels: Any,
    pool_labels: Any,
    ks: Iterable[int] = (1, 5, 10, 100),
) -> dict[str, float]:
    """Mean over queries of :func:`per_query_retrieval`: ``{"precision@K", "hit@K"}`` for each K."""
    per_query = per_query_retrieval(similarity, query_labels, pool_labels, ks)
    if next(iter(per_query.values())).shape[0] == 0:
        raise ValueError("no queries")
    return {name: float(values.mean()) for name, values in per_query.items()}


# ------------------------------------------------------------------ normalization


def znormalize_per_class(scores: Any, ddof: int = 0) -> np.ndarray:
    """GLoRIA's transductive per-class z-normalization of zero-shot scores.

    ``scores``: (N, C), one column per class, rows = the evaluated images. Returns
    ``(scores - mean) / std`` with mean and std taken over the N images of each
    column (axis 0). ``ddof=0`` (population s.d.) matches GLoRIA, which uses
    numpy's default. It is transductive: every output depends on the whole
    evaluated set. A constant column (std 0) maps to 0 instead of nan.
    """
    s = _finite_scores(scores)
    if s.ndim != 2:
        raise ValueError(f"scores must be (N, C), got shape {s.shape}")
    if s.shape[0] == 0:
        raise ValueError("empty score matrix")
    centered = s - s.mean(axis=0, keepdims=True)
    std = s.std(axis=0, ddof=ddof, keepdims=True) if s.shape[0] > ddof else np.zeros((1, s.shape[1]))
    safe = np.where(std > 0, std, 1.0)
    return np.where(std > 0, centered / safe, 0.0)
