"""``seg`` (place_bench.plugins.tasks.segmentation) on mmseg: Dice by hand, Object-CXR shapes, tiny
units on the emulated SIIM and RSNA manifests with the tiny ViT and resnet10t, frozen means frozen."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from place_bench.engine.task import DatasetRef, EvalContext, Unit

CONFIGS = __import__("pathlib").Path(__file__).resolve().parents[3] / "configs"
# Few iterations, tiny decoder: a unit takes a few seconds on one core.
TINY = dict(batch_size=2, max_iters=3, val_interval=2, head_channels=16, num_workers=0, n_resamples=30)


# --------------------------------------------------------------------------------------------
# Dice
# --------------------------------------------------------------------------------------------


def _sample(pred: np.ndarray, gt: np.ndarray, sid: str) -> dict:
    return {"pred_sem_seg": {"data": torch.from_numpy(pred[None].astype(np.int64))},
            "gt_sem_seg": {"data": torch.from_numpy(gt[None].astype(np.int64))}, "sample_id": sid}


def test_dice_matches_a_hand_computation():
    import place_bench.openmmlab  # noqa: F401
    from place_bench.openmmlab.seg_metric import PlaceBenchDiceMetric

    z = np.zeros((4, 4), dtype=np.int64)
    a_gt, a_pred = z.copy(), z.copy()
    a_gt[0, :3] = 1          # |T| = 3
    a_pred[0, 1:] = 1        # |P| = 3, |P ∩ T| = 2 -> 4/6
    c_pred = z.copy()
    c_pred[3, 3] = 1         # empty truth, one false pixel -> 0
    d_gt = z.copy()
    d_gt[2, 2:4] = 1         # positive truth, empty prediction -> 0
    cases = [(a_pred, a_gt, "a"), (z, z, "b"), (c_pred, z, "c"), (z, d_gt, "d")]
    metric = PlaceBenchDiceMetric(prefix="test")
    metric.dataset_meta = {"classes": ("background", "foreground")}
    metric.process({}, [_sample(p, g, s) for p, g, s in cases[:2]])
    metric.process({}, [_sample(p, g, s) for p, g, s in cases[2:]])
    out = metric.evaluate(4)
    per_image = [4 / 6, 1.0, 0.0, 0.0]
    assert out["test/dice"] == pytest.approx(np.mean(per_image))
    assert out["test/dice_positive"] == pytest.approx((4 / 6 + 0.0) / 2)
    # dataset level: 2 * (2) / ((3 + 1) + (3 + 2))
    assert out["test/dice_dataset"] == pytest.approx(4 / 9)
    background = 2 * (12 + 16 + 15 + 14) / ((13 + 16 + 15 + 16) + (13 + 16 + 16 + 14))
    assert out["test/mDice"] == pytest.approx((background + 4 / 9) / 2)
    items = metric.last_items
    assert items["item_ids"].tolist() == ["a", "b", "c", "d"]
    assert items["intersection"].tolist() == [2, 0, 0, 0]
    assert items["pred_area"].tolist() == [3, 0, 1, 0] and items["gt_area"].tolist() == [3, 0, 0, 2]


def test_score_segmentation_intervals_and_undefined_metrics():
    from place_bench.plugins.tasks.segmentation import score_segmentation

    items = {"intersection": np.array([2, 0, 0, 0, 5]), "pred_area": np.array([3, 0, 1, 0, 5]),
             "gt_area": np.array([3, 0, 0, 2, 6])}
    metrics, extra = score_segmentation(items, n_resamples=50, seed=0)
    assert metrics["dice"]["value"] == pytest.approx(np.mean([4 / 6, 1, 0, 0, 10 / 11]))
    assert metrics["dice_dataset"]["value"] == pytest.approx(14 / 20)
    assert metrics["dice_positive"]["value"] == pytest.approx(np.mean([4 / 6, 0, 10 / 11]))
    for m in metrics.values():
        assert m["ci_low"] <= m["value"] <= m["ci_high"] and m["n_resamples"] == 50
    assert extra["n_positive"] == 3 and extra["n_negative"] == 2
    negatives = {"intersection": np.array([0, 0]), "pred_area": np.array([0, 0]), "gt_area": np.array([0, 0])}
    metrics, extra = score_segmentation(negatives, n_resamples=10, seed=0)
    assert metrics["dice"]["value"] == 1.0
    assert set(extra["undefined_metrics"]) == {"dice_positive", "dice_dataset"}


def test_object_cxr_shapes_are_rasterized_as_drawn():
    from place_bench.openmmlab.seg_dataset import ellipse_to_mask, polygon_to_mask, shapes_to_mask

    ellipse = ellipse_to_mask({"x1": 10, "y1": 20, "x2": 50, "y2": 40}, 64, 64)
    assert abs(ellipse.sum() - math.pi * 20 * 10) < 0.03 * math.pi * 20 * 10
    assert ellipse[30, 30] and not ellipse[20, 10] and not ellipse[39, 49]  # corners of the box are outside
    triangle = polygon_to_mask([0, 0, 8, 0, 0, 8], 10, 10)  # centres (c + .5, r + .5) with c + r + 1 < 8
    assert triangle.sum() == 28 and triangle[0, 0] and triangle[6, 0] and not triangle[7, 0] and not triangle[4, 4]
    boxes = [{"x1": 0, "y1": 0, "x2": 2, "y2": 2, "shape": "rect"},
             {"x1": 0, "y1": 0, "x2": 8, "y2": 8, "shape": "polygon_bbox"}]  # the polygon's bbox: not drawn
    union = shapes_to_mask(boxes, [{"points": [0, 0, 8, 0, 0, 8]}], 10, 10)
    assert union.sum() == 28 and not union[7, 7]
    assert shapes_to_mask([{"x1": 8, "y1": 8, "x2": 10, "y2": 10, "shape": "rect"}], [{"points": [0, 0, 8, 0, 0, 8]}],
                          10, 10).sum() == 28 + 4


# --------------------------------------------------------------------------------------------
# Tiny units on emulated data
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    from place_bench.plugin_manager import get_plugin_manager, reset_plugin_manager
    from place_bench.plugins.datasets.synthetic.emulators import emulate
    from place_bench.registry import get_component

    root = tmp_path_factory.mktemp("seg")
    reset_plugin_manager()
    get_plugin_manager()
    out = {}
    for name, counts in (("siim", {"dicom_images": 8}), ("rsna", None), ("object_cxr", None)):
        emulated = emulate(name, root / name, size="tiny", seed=0, **({"counts": counts} if counts else {}))
        result = get_component("dataset", name).obj().prepare(emulated.root, "suite", root / "out", check_images=False)
        out[name] = DatasetRef.open(result.manifest_path)
    reset_plugin_manager()
    return out


def _subject(kind: str, tmp_path):
    from place_bench.engine.evaluate import load_subject

    if kind == "vit":
        source = "eval/embed_tiny"
    else:
        source = tmp_path / "tiny_resnet.py"
        source.write_text(f"_base_ = [{str(CONFIGS / '_base_/models/tiny_resnet_bert.py')!r}, "
                          f"{str(CONFIGS / '_base_/datasets/cxr_pipeline_64.py')!r}]\nmodel = dict(text_encoder=None)\n")
    subject = load_subject(str(source))
    subject.model.eval()
    return subject


def _context(subject, dataset, tmp_path) -> EvalContext:
    return EvalContext(model=subject.model, subject_id=subject.sha256, dataset=dataset, work_dir=tmp_path / "work",
                       cache_dir=tmp_path / "work" / "cache", device=torch.device("cpu"), log=lambda *_: None,
                       pipeline=dict((subject.config.get("data") or {}).get("pipeline") or {}))


@pytest.mark.parametrize("kind,dataset", [("vit", "siim"), ("resnet", "rsna"), ("resnet", "object_cxr")])
def test_tiny_unit_gives_a_result_with_intervals(kind, dataset, manifests, tmp_path):
    from place_bench.plugins.tasks.segmentation import SegmentationTask

    subject = _subject(kind, tmp_path)
    before = {k: v.clone() for k, v in subject.model.state_dict().items()}
    # the emulated test split holds one negative image: score the train split as well to see positives
    task = SegmentationTask(**TINY, splits={"test": "train"} if dataset == "siim" else None)
    [result] = list(task.run(_context(subject, manifests[dataset], tmp_path), task.units([1.0], [1])))
    assert result.unit == Unit(1.0, 1, None) and result.primary_metric == "dice"
    assert result.extra["head"] == ("setr" if kind == "vit" else "upernet") and result.extra["iters"] == 3
    dice = result.metrics["dice"]
    assert 0.0 <= dice["ci_low"] <= dice["value"] <= dice["ci_high"] <= 1.0
    per_item = result.predictions["per_item__dice"]
    assert len(result.item_ids) == result.n_test == len(per_item)
    assert np.mean(per_item) == pytest.approx(dice["value"])
    counts = [result.predictions[k] for k in ("intersection", "pred_area", "gt_area")]
    if "dice_dataset" in result.metrics:
        assert result.metrics["dice_dataset"]["value"] == pytest.approx(2 * counts[0].sum() / (counts[1].sum() + counts[2].sum()))
        assert result.extra["mmseg"]["test/dice_dataset"] == pytest.approx(result.metrics["dice_dataset"]["value"])
    if dataset == "siim":
        assert result.extra["n_positive"] >= 1 and "dice_positive" in result.metrics
    after = subject.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the evaluated model is untouched


def test_frozen_resnet_encoder_and_batchnorm_stay_bit_identical(manifests, tmp_path):
    from place_bench.plugins.tasks.segmentation import SegmentationTask

    subject = _subject("resnet", tmp_path)
    ctx = _context(subject, manifests["rsna"], tmp_path)
    task = SegmentationTask(**dict(TINY, max_iters=4, lr=1e-2), splits={"val": None})
    segmentor, log, items = task.train_unit(ctx, Unit(1.0, 0), test=False)
    assert items is None and log["iters"] == 4 and log["best_iter"] is None
    original = subject.model.image_encoder.state_dict()
    trained = segmentor.backbone.encoder.state_dict()
    assert any(k.endswith("running_mean") for k in original)
    assert set(trained) == set(original) and all(torch.equal(trained[k], original[k]) for k in original)
    assert log["trainable_parameters"] > 0 and not any(p.requires_grad for p in segmentor.backbone.parameters())
    # the decoder did learn (its BatchNorm statistics moved away from the initial 0 / 1)
    head_bn = [m for m in segmentor.decode_head.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert head_bn and any(not torch.all(m.running_mean == 0) for m in head_bn)
