"""``det`` metrics (place_bench.openmmlab.det_metric) against pycocotools called directly."""

from __future__ import annotations

import contextlib
import io
import json
import math

import numpy as np
import pytest

from place_bench.openmmlab.det_metric import (
    IOU_THRESHOLDS,
    CocoDetectionScorer,
    DetectionImages,
    PlaceBenchDetMetric,
    detections_from_arrays,
    detections_to_arrays,
    paired_detection_metric,
    score_detections,
)


def fixture() -> DetectionImages:
    """Six images, one class: 0-2 good / poor / duplicate detections on positives, image 3 has
    ground truth but no surviving prediction (a miss), image 4 is a negative with a confident
    false positive, image 5 a negative without predictions."""
    gt_boxes = [
        [[10, 10, 50, 50]],
        [[20, 20, 60, 80], [100, 100, 140, 130]],
        [[5, 5, 30, 40]],
        [[60, 60, 90, 100]],
        [],
        [],
    ]
    pred = [
        ([[12, 11, 50, 52], [200, 200, 220, 230]], [0.9, 0.3]),
        ([[22, 25, 60, 78], [100, 96, 150, 130], [101, 100, 139, 128]], [0.8, 0.65, 0.55]),
        ([[0, 0, 20, 30]], [0.7]),  # IoU ~0.44: a hit at 0.40, a miss at 0.5
        ([], []),
        ([[30, 30, 70, 70]], [0.95]),
        ([], []),
    ]
    return DetectionImages(
        gt_boxes=gt_boxes, gt_labels=[[0] * len(b) for b in gt_boxes],
        pred_boxes=[p[0] for p in pred], pred_scores=[p[1] for p in pred], pred_labels=[[0] * len(p[1]) for p in pred],
        num_classes=1, ids=[f"img{i}" for i in range(6)])


def pycocotools_direct(images: DetectionImages, keep: list[int]) -> tuple[float, float]:
    """(mAP@[.40:.75], AP50) of the images ``keep`` by the plain pycocotools recipe: a COCO ground
    truth from a JSON dict, ``loadRes`` of the detections, ``COCOeval`` with ``iouThrs`` set,
    ``evaluate / accumulate / summarize`` -> ``stats[0]``, ``stats[1]``."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    imgs, anns, dets = [], [], []
    for i in keep:
        imgs.append({"id": i + 1, "width": 300, "height": 300})
        for b in images.gt_boxes[i]:
            x1, y1, x2, y2 = map(float, b)
            anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1],
                         "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
        for b, s in zip(images.pred_boxes[i], images.pred_scores[i]):
            x1, y1, x2, y2 = map(float, b)
            dets.append({"image_id": i + 1, "category_id": 1, "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = json.loads(json.dumps({"images": imgs, "annotations": anns, "categories": [{"id": 1, "name": "x"}]}))
        gt.createIndex()
        dt = gt.loadRes(dets)
        ev = COCOeval(gt, dt, "bbox")
        ev.params.iouThrs = np.array([0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75])
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0]), float(ev.stats[1])


def test_thresholds_are_mgca():
    assert IOU_THRESHOLDS == (0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75)


def test_map_and_ap50_equal_pycocotools_and_variants_differ():
    images = fixture()
    scorer = CocoDetectionScorer(images)
    point = scorer.point_metrics()
    # canonical: every image with ground truth (0-3; image 3 is a miss), negatives left out
    assert (point["map"], point["ap50"]) == pytest.approx(pycocotools_direct(images, [0, 1, 2, 3]), abs=1e-12)
    # all images: the confident false positive on negative image 4 lowers the number
    assert (point["map_all"], point["ap50_all"]) == pytest.approx(pycocotools_direct(images, list(range(6))), abs=1e-12)
    assert point["map_all"] < point["map"]
    # MGCA's skipping (images with ground truth and a surviving prediction: 0-2) inflates mAP
    assert point["map_mgca"] == pytest.approx(pycocotools_direct(images, [0, 1, 2])[0], abs=1e-12)
    assert point["map_mgca"] > point["map"]
    assert 0.0 < point["map"] < 1.0 and point["ap50"] != point["map"]


def test_resample_equals_rebuilding_coco_objects():
    """A resample with repeated images = pycocotools on a rebuilt COCO where each drawn copy is a
    new image."""
    images = fixture()
    scorer = CocoDetectionScorer(images)
    rng = np.random.default_rng(3)
    for _ in range(4):
        idx = rng.integers(0, 6, size=6)
        copies = DetectionImages(
            gt_boxes=[images.gt_boxes[i] for i in sorted(idx)], gt_labels=[images.gt_labels[i] for i in sorted(idx)],
            pred_boxes=[images.pred_boxes[i] for i in sorted(idx)], pred_scores=[images.pred_scores[i] for i in sorted(idx)],
            pred_labels=[images.pred_labels[i] for i in sorted(idx)])
        if not any(len(b) for b in copies.gt_boxes):
            assert math.isnan(scorer.map(idx))
            continue
        expected = pycocotools_direct(copies, list(range(len(copies))))
        got = scorer.scores(idx)
        assert (got["map"], got["ap50"]) == pytest.approx(expected, abs=1e-12)


def test_score_detections_has_bootstrap_intervals_and_round_trips_arrays():
    images = fixture()
    metrics, primary, extra = score_detections(images, n_resamples=50, seed=1)
    assert primary == "map"
    assert set(metrics) == {"map", "ap50", "map_all", "ap50_all", "map_mgca"}
    m = metrics["map"]
    assert m["n_resamples"] == 50 and m["seed"] == 1 and m["n_images"] == 4
    assert m["ci_low"] <= m["value"] <= m["ci_high"]
    assert metrics["map_all"]["n_images"] == 6 and metrics["map_mgca"]["n_images"] == 3
    assert extra["n_with_gt"] == 4 and extra["n_negative"] == 2 and extra["n_mgca_scored"] == 3
    again, _, _ = score_detections(images, n_resamples=50, seed=1)
    assert again == metrics  # seeded
    arrays = detections_to_arrays(images)
    assert arrays["det_boxes"].shape == (6, 3, 4) and arrays["gt_labels"].shape == (6, 2)
    back = detections_from_arrays(arrays, num_classes=1)
    assert CocoDetectionScorer(back).point_metrics() == pytest.approx(CocoDetectionScorer(images).point_metrics())


def test_no_ground_truth_is_an_error_and_empty_predictions_are_misses():
    neg = DetectionImages(gt_boxes=[[]], gt_labels=[[]], pred_boxes=[[[0, 0, 5, 5]]], pred_scores=[[0.9]],
                          pred_labels=[[0]])
    with pytest.raises(ValueError, match="undefined"):
        score_detections(neg, n_resamples=10)
    blind = DetectionImages(gt_boxes=[[[0, 0, 5, 5]], [[1, 1, 9, 9]]], gt_labels=[[0], [0]], pred_boxes=[[], []],
                            pred_scores=[[], []], pred_labels=[[], []])
    metrics, _, extra = score_detections(blind, n_resamples=10)
    assert metrics["map"]["value"] == 0.0 and "map_mgca" in extra["undefined"]


def test_mmengine_metric_maps_gt_back_to_native_pixels():
    import torch
    from mmdet.registry import METRICS
    from mmdet.structures import DetDataSample
    from mmdet.structures.bbox import HorizontalBoxes
    from mmengine.structures import InstanceData

    metric = METRICS.build(dict(type="PlaceBenchDetMetric", num_classes=1, prefix="val"))
    assert isinstance(metric, PlaceBenchDetMetric)
    samples = []
    for k, (gt, pred) in enumerate((([10, 20, 30, 60], [20, 40, 60, 120]), (None, [0, 0, 4, 4]))):
        s = DetDataSample(metainfo=dict(img_id=k, sample_id=f"s{k}", scale_factor=(0.5, 0.5)))
        s.gt_instances = InstanceData(bboxes=HorizontalBoxes(torch.tensor([gt] if gt else [], dtype=torch.float32).reshape(-1, 4)),
                                      labels=torch.zeros(1 if gt else 0, dtype=torch.long))
        s.pred_instances = InstanceData(bboxes=torch.tensor([pred], dtype=torch.float32), scores=torch.tensor([0.9]),
                                        labels=torch.zeros(1, dtype=torch.long))
        samples.append(s.to_dict())
    metric.process({}, samples[::-1])
    out = metric.evaluate(2)
    assert out["val/map"] == pytest.approx(1.0) and out["val/map_all"] < 1.0
    assert metric.last_images.ids == ["s0", "s1"]


def test_paired_comparison_of_saved_detections():
    from place_bench.evaluation.bootstrap import paired_bootstrap_test

    images = fixture()
    a = detections_to_arrays(images)
    worse = dict(a, det_scores=np.where(np.isnan(a["det_scores"]), np.nan, 1.0 - a["det_scores"]))
    fn, args_a, args_b = paired_detection_metric(a, a, "map")
    same = paired_bootstrap_test(fn, args_a, args_b, n_resamples=30, seed=0)
    assert same.difference == 0.0 and same.p_value == 1.0
    fn, args_a, args_b = paired_detection_metric(a, worse, "map")
    diff = paired_bootstrap_test(fn, args_a, args_b, n_resamples=30, seed=0)
    assert diff.value_a == pytest.approx(CocoDetectionScorer(images).point_metrics()["map"])
    assert diff.difference > 0
    with pytest.raises(ValueError, match="no paired test"):
        paired_detection_metric(a, a, "map_mgca")
