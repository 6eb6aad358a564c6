"""Paired comparison of two result records on the same test set (``place-bench compare``).

Each measured record that has per-item predictions points to a ``<key>.predictions.npz`` beside
it (``extra.files.predictions``) holding ``item_ids`` and either ``scores`` + ``targets`` (the
metric is recomputed by name, :func:`metric_function`), ``per_item__<metric>`` arrays (the
metric is their mean, e.g. retrieval precision per query, per-image Dice), or per-image
detections ``gt_*`` / ``det_*`` (mAP recomputed with pycocotools per resample). Two records are comparable when they
were computed on the same manifest (same fingerprint) with the same set of test items; items
are aligned by id, then :func:`place_bench.evaluation.bootstrap.paired_bootstrap_test` resamples
the same items for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from place_bench.evaluation import metrics as M
from place_bench.evaluation.bootstrap import PairedBootstrapResult, paired_bootstrap_test

__all__ = ["CompareError", "compare_records", "load_predictions", "metric_function"]


class CompareError(ValueError):
    """Two records cannot be compared (different test sets, no predictions, unknown metric)."""


def metric_function(name: str, n_classes: int | None = None) -> Callable[[np.ndarray, np.ndarray], float]:
    """The function ``(scores, targets) -> value`` of a classification metric recorded by the tasks."""
    if name in ("auroc", "auroc_macro"):
        return M.auroc
    if name == "accuracy":
        return M.accuracy
    if name == "accuracy_znorm":
        return lambda s, t: M.accuracy(M.znormalize_per_class(s), t)
    if name == "f1":
        return M.f1
    if name in ("f1_macro", "f1_macro_znorm"):
        if n_classes is None:
            raise CompareError(f"metric {name!r} needs the number of classes")
        if name == "f1_macro":
            return lambda s, t: M.macro_f1(s, t, n_classes)
        return lambda s, t: M.macro_f1(M.znormalize_per_class(s), t, n_classes)
    raise CompareError(f"metric {name!r} cannot be recomputed from saved scores")


def load_predictions(record: Mapping[str, Any], record_path: str | Path) -> dict[str, np.ndarray]:
    name = ((record.get("extra") or {}).get("files") or {}).get("predictions")
    if not name:
        raise CompareError(f"record {record['key']} ({record_path}) has no saved predictions")
    path = Path(record_path).parent / name
    if not path.is_file():
        raise CompareError(f"predictions file '{path}' of record {record['key']} is missing")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _aligned(pred: dict[str, np.ndarray], order: np.ndarray) -> dict[str, np.ndarray]:
    position = {item: i for i, item in enumerate(pred["item_ids"].tolist())}
    idx = np.asarray([position[i] for i in order.tolist()])
    return {k: v[idx] for k, v in pred.items() if k != "item_ids"}


def compare_records(
    a: Mapping[str, Any], a_path: str | Path, b: Mapping[str, Any], b_path: str | Path,
    metric: str | None = None, n_resamples: int = 1000, seed: int = 0,
) -> tuple[str, PairedBootstrapResult]:
    """(metric name, paired bootstrap result of ``a - b``) on the records' common test set."""
    if a.get("manifest", {}).get("fingerprint") != b.get("manifest", {}).get("fingerprint"):
        raise CompareError("the two records were computed on different manifests (fingerprints differ)")
    if metric is None:
        if a.get("primary_metric") is None or a.get("primary_metric") != b.get("primary_metric"):
            raise CompareError(f"give --metric: the records' primary metrics differ "
                               f"({a.get('primary_metric')} vs {b.get('primary_metric')})")
        metric = a["primary_metric"]
    pa, pb = load_predictions(a, a_path), load_predictions(b, b_path)
    ids_a, ids_b = pa["item_ids"], pb["item_ids"]
    if set(ids_a.tolist()) != set(ids_b.tolist()) or len(ids_a) != len(ids_b):
        raise CompareError(f"the records have different test items ({len(ids_a)} vs {len(ids_b)})")
    xa, xb = _aligned(pa, ids_a), _aligned(pb, ids_a)
    per_item = f"per_item__{metric}"
    if per_item in xa and per_item in xb:
        return metric, paired_bootstrap_test(np.mean, (xa[per_item],), (xb[per_item],), n_resamples, seed=seed)
    if any(k.startswith("det_") for k in xa) and any(k.startswith("det_") for k in xb):
        # Detections: each system is scored once by pycocotools and resampled by image index.
        from place_bench.openmmlab.det_metric import paired_detection_metric

        try:
            fn, args_a, args_b = paired_detection_metric(xa, xb, metric)
        except ValueError as exc:
            raise CompareError(str(exc)) from None
        return metric, paired_bootstrap_test(fn, args_a, args_b, n_resamples, seed=seed)
    if not {"scores", "targets"} <= set(xa) & set(xb):
        raise CompareError(f"metric {metric!r} cannot be recomputed from the saved predictions")
    if not np.array_equal(xa["targets"], xb["targets"]):
        raise CompareError("the records' targets differ for the same items (different label policies?)")
    n_classes = xa["scores"].shape[1] if xa["scores"].ndim == 2 else None
    fn = metric_function(metric, n_classes)
    targets = xa["targets"]
    if targets.ndim == 2 and targets.shape[1] == 1 and xa["scores"].ndim == 1:
        targets = targets[:, 0]
    return metric, paired_bootstrap_test(fn, (xa["scores"], targets), (xb["scores"], targets), n_resamples, seed=seed)
