"""Detection metrics of the ``det`` task (datasets.md section 2.6), computed with pycocotools.

**The suite canonical metric** (record name ``map``, task ``det``): COCO-style average precision
(101-point interpolated, at most ``max_dets`` = 100 detections per image, all areas) averaged over
the IoU thresholds 0.40, 0.45, ..., 0.75 (:data:`IOU_THRESHOLDS`; MGCA's torchmetrics setting),
computed by ``pycocotools.cocoeval.COCOeval`` (``params.iouThrs`` set to those thresholds) on the
**whole** test set, over every test image that has at least one ground-truth box. An image whose
predictions were all filtered out (objectness threshold, NMS) still counts: its boxes are misses.

Variants, all from the same per-image COCO matching:

=============  ==================================================================================
``map``        mean AP over :data:`IOU_THRESHOLDS`, images with ground truth (primary)
``ap50``       AP at IoU 0.5, same images
``map_all``    mean AP over :data:`IOU_THRESHOLDS`, **all** test images: detections on negative
               images are false positives
``ap50_all``   AP at IoU 0.5, all images
``map_mgca``   MGCA's (inflated) number: only images with ground truth **and** at least one
               surviving prediction are scored (datasets.md section 5, pitfall 5); for literature
               comparison only
=============  ==================================================================================

Images are the unit of the bootstrap: :func:`score_detections` attaches seeded percentile
intervals (:func:`place_bench.plugins.tasks._scoring.with_ci`) by resampling image indices of
each variant's image set. Resampling is fast because COCO's per-image matching does not depend
on the other images: :class:`CocoDetectionScorer` runs ``COCOeval.evaluate`` **once** and, for a
resample, hands pycocotools' own ``COCOeval.accumulate`` the per-image evaluations of the drawn
images (an image drawn twice contributes twice). This equals rebuilding the COCO ground-truth and
result objects for the resample with each drawn copy under a new image id (tested); resampled
indices are sorted first so that tied scores are ordered as such a rebuild orders them.
``n_resamples`` is the task's (200 for ``det`` by default). Each resample costs one
``accumulate`` per image set (``map`` and ``ap50`` share it): on an RSNA-sized test set (5,337
images, ~1,200 with boxes, ~7,700 detections) the one ``evaluate`` takes ~0.7 s and the 3 x 200
accumulates ~10 s on one CPU core.

:class:`PlaceBenchDetMetric` (registered as ``PlaceBenchDetMetric`` in mmdet's ``METRICS``) is
the mmengine metric the Runner's validation and test loops use: it collects every image's
ground truth and surviving predictions in native pixels and reports the point values above; the
collected arrays of the last evaluation stay on the metric (``last_images``) for the task to
bootstrap.

Boxes are ``xyxy`` (converted to COCO ``xywh`` for pycocotools); labels are 0-based class
indices (COCO category id = label + 1).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import io
import math
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "IOU_THRESHOLDS",
    "CocoDetectionScorer",
    "DetectionImages",
    "PlaceBenchDetMetric",
    "coco_objects",
    "detections_from_arrays",
    "detections_to_arrays",
    "paired_detection_metric",
    "score_detections",
]

#: MGCA's IoU thresholds 0.40:0.05:0.75 (exact decimals, so that 0.5 is one of them).
IOU_THRESHOLDS: tuple[float, ...] = tuple(float(x) for x in np.round(np.linspace(0.40, 0.75, 8), 2))
METRIC_NAME = "PlaceBenchDetMetric"


# --------------------------------------------------------------------------------------------
# Per-image ground truth and predictions
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class DetectionImages:
    """Ground truth and predictions of a set of images, one list entry per image.

    ``gt_boxes[i]``: float ``(G_i, 4)`` xyxy; ``gt_labels[i]``: int ``(G_i,)``;
    ``pred_boxes[i]``: ``(P_i, 4)``; ``pred_scores[i]``: ``(P_i,)``; ``pred_labels[i]``: ``(P_i,)``;
    ``ids``: one id per image (sample ids); ``num_classes``: number of classes (labels in
    ``[0, num_classes)``).
    """

    gt_boxes: list[np.ndarray]
    gt_labels: list[np.ndarray]
    pred_boxes: list[np.ndarray]
    pred_scores: list[np.ndarray]
    pred_labels: list[np.ndarray]
    num_classes: int = 1
    ids: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.gt_boxes)
        lists = (self.gt_labels, self.pred_boxes, self.pred_scores, self.pred_labels)
        if any(len(x) != n for x in lists):
            raise ValueError(f"per-image lists differ in length: {[n, *(len(x) for x in lists)]}")
        self.gt_boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in self.gt_boxes]
        self.gt_labels = [np.asarray(x, dtype=np.int64).reshape(-1) for x in self.gt_labels]
        self.pred_boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in self.pred_boxes]
        self.pred_scores = [np.asarray(x, dtype=np.float64).reshape(-1) for x in self.pred_scores]
        self.pred_labels = [np.asarray(x, dtype=np.int64).reshape(-1) for x in self.pred_labels]
        for i in range(n):
            if len(self.gt_boxes[i]) != len(self.gt_labels[i]):
                raise ValueError(f"image {i}: {len(self.gt_boxes[i])} gt boxes, {len(self.gt_labels[i])} labels")
            if not len(self.pred_boxes[i]) == len(self.pred_scores[i]) == len(self.pred_labels[i]):
                raise ValueError(f"image {i}: predictions differ in length")
            for what, labels in (("gt", self.gt_labels[i]), ("predicted", self.pred_labels[i])):
                if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                    raise ValueError(f"image {i}: {what} label outside [0, {self.num_classes})")
        if not self.ids:
            self.ids = [str(i) for i in range(n)]
        if len(self.ids) != n:
            raise ValueError(f"{len(self.ids)} ids for {n} images")

    def __len__(self) -> int:
        return len(self.gt_boxes)

    @property
    def has_gt(self) -> np.ndarray:
        """bool ``(N,)``: the image has at least one ground-truth box."""
        return np.asarray([len(b) > 0 for b in self.gt_boxes], dtype=bool)

    @property
    def has_pred(self) -> np.ndarray:
        """bool ``(N,)``: at least one prediction survived for the image."""
        return np.asarray([len(b) > 0 for b in self.pred_boxes], dtype=bool)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
    out[:, 2:] -= out[:, :2]
    return out


def coco_objects(images: DetectionImages, order: Sequence[int] | None = None):
    """``(COCO ground truth, COCO results)`` of ``images`` as pycocotools objects.

    ``order``: the images to include, in that order (repeats allowed); the k-th entry gets COCO
    image id ``k + 1``. Areas are ``w * h``; nothing is crowd. Built without ``loadRes`` (which
    refuses an empty result list), with the same fields ``loadRes`` would add for boxes.
    """
    from pycocotools.coco import COCO

    order = list(range(len(images))) if order is None else [int(i) for i in order]
    cats = [{"id": c + 1, "name": str(c)} for c in range(images.num_classes)]
    imgs, gt_anns, dt_anns = [], [], []
    for k, i in enumerate(order):
        image_id = k + 1
        imgs.append({"id": image_id})
        for box, label in zip(_xywh(images.gt_boxes[i]), images.gt_labels[i]):
            gt_anns.append({"id": len(gt_anns) + 1, "image_id": image_id, "category_id": int(label) + 1,
                            "bbox": [float(v) for v in box], "area": float(box[2] * box[3]), "iscrowd": 0})
        for box, score, label in zip(_xywh(images.pred_boxes[i]), images.pred_scores[i], images.pred_labels[i]):
            x, y, w, h = (float(v) for v in box)
            dt_anns.append({"id": len(dt_anns) + 1, "image_id": image_id, "category_id": int(label) + 1,
                            "bbox": [x, y, w, h], "score": float(score), "area": w * h, "iscrowd": 0,
                            "segmentation": [[x, y, x, y + h, x + w, y + h, x + w, y]]})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": imgs, "annotations": gt_anns, "categories": cats}
        gt.createIndex()
        dt = COCO()
        dt.dataset = {"images": list(imgs), "annotations": dt_anns, "categories": copy.deepcopy(cats)}
        dt.createIndex()
    return gt, dt


def _cocoeval(gt, dt, iou_thresholds: Sequence[float], max_dets: int):
    from pycocotools.cocoeval import COCOeval

    ev = COCOeval(gt, dt, iouType="bbox")
    ev.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
    ev.params.areaRng = [[0.0, 1e10]]
    ev.params.areaRngLbl = ["all"]
    ev.params.maxDets = [int(max_dets)]
    return ev


def _ap(precision: np.ndarray, t_index: np.ndarray | slice = slice(None)) -> float:
    """COCO's summary: mean of the defined precisions (> -1) at the chosen thresholds; nan when
    none is defined (no ground truth of any class)."""
    s = precision[t_index, :, :, 0, -1]
    s = s[s > -1]
    return float(np.mean(s)) if s.size else math.nan


# --------------------------------------------------------------------------------------------
# The scorer: COCOeval.evaluate once, accumulate per image set
# --------------------------------------------------------------------------------------------


class CocoDetectionScorer:
    """COCO average precision of any multiset of ``images``' images (see the module docstring).

    ``iou_thresholds``: COCO ``params.iouThrs``; ``max_dets``: detections kept per image.
    :meth:`scores` gives ``{"map", "ap50"}`` of the images ``index`` (repeats allowed);
    :meth:`map` / :meth:`ap50` the single values (bootstrap metric functions).
    """

    def __init__(self, images: DetectionImages, iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
                 max_dets: int = 100):
        self.images = images
        self.iou_thresholds = np.asarray(iou_thresholds, dtype=np.float64)
        self.max_dets = int(max_dets)
        n = len(images)
        self._k = images.num_classes
        self._ap50_index = np.flatnonzero(np.isclose(self.iou_thresholds, 0.5))
        gt, dt = coco_objects(images)
        ev = _cocoeval(gt, dt, self.iou_thresholds, self.max_dets)
        ev.params.catIds = list(range(1, self._k + 1))
        with contextlib.redirect_stdout(io.StringIO()):
            ev.evaluate()
        # evalImgs is laid out [category][area range (one)][image], images in id order 1..n
        self._per_image = [ev.evalImgs[k * n:(k + 1) * n] for k in range(self._k)]
        self._params = ev.params
        self._cache: dict[bytes, dict[str, float]] = {}

    def _accumulate(self, index: np.ndarray) -> np.ndarray:
        from pycocotools.cocoeval import COCOeval

        m = len(index)
        ev = COCOeval(iouType="bbox")
        p = copy.copy(self._params)
        p.imgIds = list(range(m))
        p.catIds = list(range(1, self._k + 1))
        ev.params = p
        ev._paramsEval = p
        ev.evalImgs = [self._per_image[k][i] for k in range(self._k) for i in index]
        with contextlib.redirect_stdout(io.StringIO()):
            ev.accumulate()
        return ev.eval["precision"]

    def scores(self, index: Iterable[int] | None = None) -> dict[str, float]:
        """``{"map", "ap50"}`` over the images ``index`` (default all); nan where no image of the set
        has ground truth. ``ap50`` is nan when 0.5 is not among the thresholds."""
        index = np.arange(len(self.images)) if index is None else np.sort(np.asarray(list(index), dtype=np.int64))
        if index.size == 0:
            return {"map": math.nan, "ap50": math.nan}
        # map and ap50 of one image set are bootstrapped with the same seed, hence the same
        # resamples: one accumulate serves both (keys are digests: a few bytes per resample)
        key = hashlib.sha1(index.tobytes()).digest()
        if key not in self._cache:
            precision = self._accumulate(index)
            ap50 = _ap(precision, self._ap50_index) if self._ap50_index.size else math.nan
            self._cache[key] = {"map": _ap(precision), "ap50": ap50}
        return dict(self._cache[key])

    def map(self, index: Iterable[int]) -> float:
        return self.scores(index)["map"]

    def ap50(self, index: Iterable[int]) -> float:
        return self.scores(index)["ap50"]

    # -- the image sets of the variants -------------------------------------------------------
    def image_sets(self) -> dict[str, np.ndarray]:
        """Image indices scored by each variant: ``gt`` (canonical), ``all``, ``mgca``."""
        has_gt, has_pred = self.images.has_gt, self.images.has_pred
        return {"gt": np.flatnonzero(has_gt), "all": np.arange(len(self.images)),
                "mgca": np.flatnonzero(has_gt & has_pred)}

    def point_metrics(self) -> dict[str, float]:
        """Point values of ``map``, ``ap50``, ``map_all``, ``ap50_all``, ``map_mgca``."""
        sets = self.image_sets()
        gt, every, mgca = self.scores(sets["gt"]), self.scores(sets["all"]), self.scores(sets["mgca"])
        return {"map": gt["map"], "ap50": gt["ap50"], "map_all": every["map"], "ap50_all": every["ap50"],
                "map_mgca": mgca["map"]}


#: metric name -> (image set, score key) of :meth:`CocoDetectionScorer.image_sets` / :meth:`scores`.
VARIANTS: dict[str, tuple[str, str]] = {
    "map": ("gt", "map"),
    "ap50": ("gt", "ap50"),
    "map_all": ("all", "map"),
    "ap50_all": ("all", "ap50"),
    "map_mgca": ("mgca", "map"),
}


def score_detections(images: DetectionImages, n_resamples: int = 200, seed: int = 0,
                     iou_thresholds: Sequence[float] = IOU_THRESHOLDS, max_dets: int = 100,
                     scorer: CocoDetectionScorer | None = None) -> tuple[dict[str, dict], str, dict[str, Any]]:
    """``(metrics, "map", extra)``: every :data:`VARIANTS` metric with a bootstrap interval over
    the images of its set (seeded, ``n_resamples``). A variant whose image set has no ground truth
    (e.g. ``map_mgca`` when nothing survived) is left out and named in ``extra["undefined"]``;
    the canonical ``map`` being undefined (no test image has a box) is an error."""
    from place_bench.plugins.tasks._scoring import with_ci

    scorer = scorer or CocoDetectionScorer(images, iou_thresholds, max_dets)
    sets = scorer.image_sets()
    metrics: dict[str, dict] = {}
    undefined: dict[str, str] = {}
    for name, (which, key) in VARIANTS.items():
        index = sets[which]

        def fn(idx, key=key):
            return scorer.scores(idx)[key]

        if index.size == 0 or not math.isfinite(fn(index)):
            undefined[name] = f"no ground-truth box among the {index.size} image(s) of the '{which}' set"
            continue
        metrics[name] = with_ci(fn, index, n_resamples=n_resamples, seed=seed)
        metrics[name]["n_images"] = int(index.size)
    if "map" not in metrics:
        raise ValueError(f"det: mAP is undefined: none of the {len(images)} test images has a ground-truth box")
    extra = {"n_images": len(images), "n_with_gt": int(sets["gt"].size), "n_negative": int(len(images) - sets["gt"].size),
             "n_mgca_scored": int(sets["mgca"].size), "n_gt_boxes": int(sum(len(b) for b in images.gt_boxes)),
             "n_predictions": int(sum(len(b) for b in images.pred_boxes)),
             "iou_thresholds": [float(t) for t in scorer.iou_thresholds], "max_dets": scorer.max_dets,
             "metric_definitions": {
                 "map": "COCO AP (pycocotools, 101-point) averaged over IoU 0.40:0.05:0.75, every test image with "
                        "ground truth (images without surviving predictions are misses)",
                 "ap50": "COCO AP at IoU 0.5, same images",
                 "map_all": "as map over all test images (detections on negatives are false positives)",
                 "ap50_all": "as ap50 over all test images",
                 "map_mgca": "MGCA's metric: only images with ground truth and at least one surviving prediction "
                             "(datasets.md section 5, pitfall 5; inflated, literature comparison only)"}}
    if undefined:
        extra["undefined"] = undefined
    return metrics, "map", extra


def paired_detection_metric(arrays_a: Mapping[str, np.ndarray], arrays_b: Mapping[str, np.ndarray], name: str = "map",
                            iou_thresholds: Sequence[float] = IOU_THRESHOLDS, max_dets: int = 100):
    """``(metric_fn, args_a, args_b)`` for :func:`place_bench.evaluation.bootstrap.paired_bootstrap_test`
    comparing two systems' saved detections (:func:`detections_to_arrays` arrays, rows aligned to
    the same test images) on ``name`` (``map``, ``ap50``, ``map_all`` or ``ap50_all``; ``map_mgca``
    is not paired: its image set differs between systems). Each system is evaluated once; the
    arguments are image indices (system B's offset by N), so a resample draws the same images for
    both."""
    if name not in VARIANTS or name == "map_mgca":
        raise ValueError(f"det: no paired test for metric {name!r}; use one of map, ap50, map_all, ap50_all")
    a, b = detections_from_arrays(arrays_a), detections_from_arrays(arrays_b)
    k = max(a.num_classes, b.num_classes)
    a.num_classes = b.num_classes = k
    if len(a) != len(b) or any(not np.array_equal(x, y) for x, y in zip(a.gt_boxes, b.gt_boxes)):
        raise ValueError("det: the two systems' ground truth differs (not the same test images in the same order)")
    scorer_a = CocoDetectionScorer(a, iou_thresholds, max_dets)
    scorer_b = CocoDetectionScorer(b, iou_thresholds, max_dets)
    which, key = VARIANTS[name]
    rows = scorer_a.image_sets()[which]
    n = len(a)

    def metric_fn(index: np.ndarray) -> float:
        index = np.asarray(index)
        if index.size and index[0] >= n:
            return scorer_b.scores(index - n)[key]
        return scorer_a.scores(index)[key]

    return metric_fn, (rows,), (rows + n,)


# --------------------------------------------------------------------------------------------
# Fixed-shape arrays (the task's saved predictions) <-> DetectionImages
# --------------------------------------------------------------------------------------------


def _pad(arrays: Sequence[np.ndarray], width: int | None, fill: float, dtype) -> np.ndarray:
    n = max([len(a) for a in arrays] + [0])
    shape = (len(arrays), n) + ((width,) if width else ())
    out = np.full(shape, fill, dtype=dtype)
    for i, a in enumerate(arrays):
        if len(a):
            out[i, : len(a)] = a
    return out


def detections_to_arrays(images: DetectionImages) -> dict[str, np.ndarray]:
    """Axis-0-per-image arrays (``place-bench compare`` aligns items along axis 0): ``gt_boxes``
    ``(N, G, 4)`` and ``det_boxes`` ``(N, P, 4)`` float32 padded with nan, ``gt_labels`` /
    ``det_labels`` ``(N, G|P)`` int64 padded with -1, ``det_scores`` ``(N, P)`` padded with nan;
    detections sorted by decreasing score."""
    order = [np.argsort(-s, kind="stable") for s in images.pred_scores]
    return {
        "gt_boxes": _pad(images.gt_boxes, 4, np.nan, np.float32),
        "gt_labels": _pad(images.gt_labels, None, -1, np.int64),
        "det_boxes": _pad([b[o] for b, o in zip(images.pred_boxes, order)], 4, np.nan, np.float32),
        "det_scores": _pad([s[o] for s, o in zip(images.pred_scores, order)], None, np.nan, np.float32),
        "det_labels": _pad([x[o] for x, o in zip(images.pred_labels, order)], None, -1, np.int64),
    }


def detections_from_arrays(arrays: Mapping[str, np.ndarray], num_classes: int | None = None,
                           ids: Sequence[str] | None = None) -> DetectionImages:
    """The inverse of :func:`detections_to_arrays` (e.g. on a loaded ``.predictions.npz``)."""
    gl, dl = np.asarray(arrays["gt_labels"]), np.asarray(arrays["det_labels"])
    gb, db, ds = np.asarray(arrays["gt_boxes"]), np.asarray(arrays["det_boxes"]), np.asarray(arrays["det_scores"])
    n = len(gl)
    if num_classes is None:
        num_classes = int(max(gl.max(initial=-1), dl.max(initial=-1)) + 1) or 1
    keep_g = [gl[i] >= 0 for i in range(n)]
    keep_d = [dl[i] >= 0 for i in range(n)]
    return DetectionImages(
        gt_boxes=[gb[i][keep_g[i]] for i in range(n)], gt_labels=[gl[i][keep_g[i]] for i in range(n)],
        pred_boxes=[db[i][keep_d[i]] for i in range(n)], pred_scores=[ds[i][keep_d[i]] for i in range(n)],
        pred_labels=[dl[i][keep_d[i]] for i in range(n)], num_classes=int(num_classes),
        ids=[str(x) for x in (ids if ids is not None else arrays.get("item_ids", range(n)))])


# --------------------------------------------------------------------------------------------
# The mmengine metric
# --------------------------------------------------------------------------------------------


def _tensor(x) -> np.ndarray:
    if hasattr(x, "tensor"):  # mmdet HorizontalBoxes
        x = x.tensor
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _metric_base():
    from mmengine.evaluator import BaseMetric

    return BaseMetric


class PlaceBenchDetMetric(_metric_base()):
    """Whole-set detection AP for mmengine's validation / test loops (see the module docstring).

    Reads each data sample's ``gt_instances`` (network-input pixels, mapped back to native pixels
    with the sample's ``scale_factor``), ``pred_instances`` (already native with ``rescale=True``),
    ``img_id`` (position in the dataset) and ``sample_id``. :meth:`compute_metrics` returns the
    point values of ``map``, ``ap50``, ``map_all``, ``ap50_all``, ``map_mgca`` (nan where
    undefined); ``last_images`` / ``last_scorer`` keep the last evaluation's data.
    """

    default_prefix = "det"

    def __init__(self, num_classes: int = 1, iou_thresholds: Sequence[float] = IOU_THRESHOLDS, max_dets: int = 100,
                 prefix: str | None = None, collect_device: str = "cpu"):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes = int(num_classes)
        self.iou_thresholds = tuple(float(t) for t in iou_thresholds)
        self.max_dets = int(max_dets)
        self.last_images: DetectionImages | None = None
        self.last_scorer: CocoDetectionScorer | None = None

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        for sample in data_samples:
            get = sample.get if isinstance(sample, Mapping) else (lambda k, s=sample: getattr(s, k, None))
            meta = sample if isinstance(sample, Mapping) else sample.metainfo
            gt, pred = get("gt_instances"), get("pred_instances")
            gt_get = gt.get if isinstance(gt, Mapping) else (lambda k, g=gt: getattr(g, k, None))
            pred_get = pred.get if isinstance(pred, Mapping) else (lambda k, q=pred: getattr(q, k, None))
            sx, sy = (float(v) for v in meta.get("scale_factor", (1.0, 1.0)))
            gt_boxes = _tensor(gt_get("bboxes")).reshape(-1, 4).astype(np.float64) / np.asarray([sx, sy, sx, sy])
            self.results.append({
                "index": int(meta["img_id"]), "id": str(meta.get("sample_id", meta["img_id"])),
                "gt_boxes": gt_boxes, "gt_labels": _tensor(gt_get("labels")).reshape(-1).astype(np.int64),
                "pred_boxes": _tensor(pred_get("bboxes")).reshape(-1, 4).astype(np.float64),
                "pred_scores": _tensor(pred_get("scores")).reshape(-1).astype(np.float64),
                "pred_labels": _tensor(pred_get("labels")).reshape(-1).astype(np.int64),
            })

    def compute_metrics(self, results: list) -> dict[str, float]:
        results = sorted(results, key=lambda r: r["index"])
        images = DetectionImages(
            gt_boxes=[r["gt_boxes"] for r in results], gt_labels=[r["gt_labels"] for r in results],
            pred_boxes=[r["pred_boxes"] for r in results], pred_scores=[r["pred_scores"] for r in results],
            pred_labels=[r["pred_labels"] for r in results], num_classes=self.num_classes,
            ids=[r["id"] for r in results])
        self.last_images = images
        self.last_scorer = CocoDetectionScorer(images, self.iou_thresholds, self.max_dets)
        return self.last_scorer.point_metrics()


def register_metric() -> None:
    from mmdet.registry import METRICS

    METRICS.register_module(name=METRIC_NAME, module=PlaceBenchDetMetric, force=True)


register_metric()
