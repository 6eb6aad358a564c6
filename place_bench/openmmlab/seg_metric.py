"""Segmentation Dice as the suite reports it (datasets.md section 2.5), on mmseg's ``IoUMetric``.

:class:`PlaceBenchDiceMetric` (registered as ``PlaceBenchDiceMetric`` in ``mmseg.registry.METRICS``)
extends mmseg's ``IoUMetric``: its ``process`` is IoUMetric's (per-image class histograms of
intersection, union, prediction and ground truth from ``intersect_and_union``), and it also keeps
each image's ``sample_id``. ``compute_metrics`` returns, as fractions in [0, 1]:

* ``dice``: **per-image Dice averaged over images** (MGCA's definition, pitfall 7 fixed): an
  image with foreground in its ground truth scores ``2 |P ∩ T| / (|P| + |T|)``; an image with an
  empty ground truth scores 1 if the prediction is empty, else 0;
* ``dice_positive``: the same averaged over ground-truth-positive images only (nan if none);
* ``dice_dataset``: dataset-level foreground Dice ``2 ΣI / (ΣP + ΣT)`` = the foreground entry of
  IoUMetric's ``Dice`` (``total_area_to_metrics(..., ['mDice'])``);
* ``mDice``: mmseg's ``mDice`` (mean over background and foreground; BenchX's number).

The per-image counts of the last ``compute_metrics`` call stay on the metric
(:attr:`PlaceBenchDiceMetric.last_items`) for bootstrap intervals and per-item predictions.
The module-level functions compute the same quantities from count arrays.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from mmseg.evaluation import IoUMetric
from mmseg.registry import METRICS

__all__ = ["PlaceBenchDiceMetric", "dataset_dice", "per_image_dice", "positive_dice"]

FOREGROUND = 1


def per_image_dice(intersection, pred_area, gt_area) -> np.ndarray:
    """Per-image Dice from foreground pixel counts (arrays over images): ``2I / (P + T)`` where the
    ground truth has foreground, else 1 for an empty prediction and 0 otherwise."""
    i, p, t = (np.asarray(a, dtype=np.float64) for a in (intersection, pred_area, gt_area))
    with np.errstate(invalid="ignore", divide="ignore"):
        positive = 2.0 * i / (p + t)
    return np.where(t > 0, positive, (p == 0).astype(np.float64))


def dataset_dice(intersection, pred_area, gt_area) -> float:
    """Dataset-level foreground Dice ``2 ΣI / (ΣP + ΣT)`` (nan when both sums are 0, as mmseg)."""
    i, p, t = (float(np.sum(np.asarray(a, dtype=np.float64))) for a in (intersection, pred_area, gt_area))
    return 2.0 * i / (p + t) if p + t > 0 else float("nan")


def positive_dice(intersection, pred_area, gt_area) -> float:
    """Mean per-image Dice over ground-truth-positive images (nan if there are none)."""
    t = np.asarray(gt_area)
    if not (t > 0).any():
        return float("nan")
    return float(per_image_dice(intersection, pred_area, gt_area)[t > 0].mean())


def mean_image_dice(intersection, pred_area, gt_area) -> float:
    """Mean per-image Dice over all images (the suite's primary ``dice``)."""
    return float(per_image_dice(intersection, pred_area, gt_area).mean())


class PlaceBenchDiceMetric(IoUMetric):
    """mmseg's IoUMetric with the suite's per-image Dice; see the module docstring.

    ``foreground``: the class index whose Dice is reported (1 for binary masks).
    """

    def __init__(self, foreground: int = FOREGROUND, prefix: str | None = None, **kwargs):
        kwargs.setdefault("iou_metrics", ["mDice"])
        super().__init__(prefix=prefix, **kwargs)
        self.foreground = int(foreground)
        self.last_items: dict[str, np.ndarray] | None = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        start = len(self.results)
        super().process(data_batch, data_samples)
        for k, sample in enumerate(data_samples):
            counts = self.results[start + k]
            self.results[start + k] = (*counts, str(sample.get("sample_id", start + k)))

    def compute_metrics(self, results: list) -> dict[str, float]:
        ids = np.asarray([r[4] for r in results], dtype=str)
        inter, union, pred, label = (np.stack([np.asarray(r[j], dtype=np.float64) for r in results]) for j in range(4))
        totals = [torch.from_numpy(a.sum(0)) for a in (inter, union, pred, label)]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = self.total_area_to_metrics(*totals, self.metrics, self.nan_to_num, self.beta)
        fg = self.foreground
        items = {"item_ids": ids, "intersection": inter[:, fg].astype(np.int64),
                 "pred_area": pred[:, fg].astype(np.int64), "gt_area": label[:, fg].astype(np.int64)}
        self.last_items = items
        counts = (items["intersection"], items["pred_area"], items["gt_area"])
        out = {"dice": mean_image_dice(*counts), "dice_positive": positive_dice(*counts),
               "dice_dataset": float(per_class["Dice"][fg]) if "Dice" in per_class else dataset_dice(*counts)}
        if "Dice" in per_class:
            out["mDice"] = float(np.nanmean(per_class["Dice"]))
        return out


METRICS.register_module(name="PlaceBenchDiceMetric", module=PlaceBenchDiceMetric, force=True)
