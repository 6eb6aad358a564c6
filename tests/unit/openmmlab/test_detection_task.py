"""``det`` (place_bench.plugins.tasks.detection) end to end on the synthetic RSNA and Object-CXR
emulations: mmdet's YOLOV3 / Faster R-CNN on a frozen resnet10t at 64 px, a few Runner
iterations per unit, plus the dataset reader (place_bench.openmmlab.det_dataset)."""

from __future__ import annotations

import math
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from place_bench.engine.task import DatasetRef, EvalContext, Unit

# 64 px, narrow YOLOv3 neck/head, 4 iterations with validation at 2 and 4: ~3 s per unit on one core.
TINY = dict(size=64, batch_size=4, max_iters=4, val_interval=2, num_workers=0, n_resamples=20,
            neck_channels=(64, 32, 16), head_channels=(128, 64, 32), log_interval=1)
RESNET = dict(type="timm", model_name="resnet10t")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Suite manifests of the emulated RSNA (12 DICOMs at 128 px: the test split holds a positive and
    a negative) and Object-CXR (tiny) native trees."""
    from place_bench.plugins.datasets.synthetic.emulators import emulate
    from place_bench.registry import get_component

    root = tmp_path_factory.mktemp("det")
    out = {}
    for name, options in (("rsna", dict(image_px=128, counts={"dicom_images": 12})), ("object_cxr", {})):
        emulated = emulate(name, root / f"{name}_native", size="tiny", seed=0, **options)
        result = get_component("dataset", name).obj().prepare(emulated.root, "suite", root / "out", check_images=False)
        out[name] = DatasetRef.open(result.manifest_path)
    return out


@pytest.fixture(scope="module")
def model():
    from place_bench.openmmlab.backbone import build_suite_encoder

    torch.manual_seed(0)
    encoder, _ = build_suite_encoder(encoder=RESNET)
    return types.SimpleNamespace(image_encoder=encoder.eval())


def context(model, dataset, tmp_path) -> EvalContext:
    return EvalContext(model=model, subject_id="init:0123456789abcdef", dataset=dataset, work_dir=tmp_path / "work",
                       cache_dir=tmp_path / "work" / "cache", device=torch.device("cpu"), log=lambda *_: None,
                       pipeline={})


def _state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _native_boxes(dataset: DatasetRef, split: str) -> dict[str, np.ndarray]:
    from place_bench.data.manifest import iter_manifest

    return {r["sample_id"]: np.asarray([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in r["boxes"] or []]).reshape(-1, 4)
            for r in iter_manifest(dataset.manifest, columns=["sample_id", "split", "boxes"]) if r["split"] == split}


# ------------------------------------------------------------------------------------ dataset


def test_dataset_reader_packs_squashed_items_with_native_scale(prepared):
    import place_bench.openmmlab  # noqa: F401
    from mmdet.registry import DATASETS
    from mmdet.structures.bbox import HorizontalBoxes

    from place_bench.data.loaders import DetectionDataset

    ref = prepared["object_cxr"]
    ds = DATASETS.build(dict(type="PlaceBenchDetDataset", manifest=str(ref.manifest), split="train", size=64))
    plain = DetectionDataset(ref.manifest, split="train", size=64)
    assert len(ds) == len(plain) and ds.metainfo == {"classes": ("Foreign Object",)}
    k = next(i for i, r in enumerate(plain.rows) if r["boxes"])
    item, raw = ds[k], plain[k]
    sample = item["data_samples"]
    assert item["inputs"].shape == (3, 64, 64) and torch.equal(item["inputs"], raw["image"])
    assert isinstance(sample.gt_instances.bboxes, HorizontalBoxes)
    assert torch.equal(sample.gt_instances.bboxes.tensor, raw["boxes"])
    h, w = raw["orig_size"]
    assert sample.metainfo["ori_shape"] == (h, w) and sample.metainfo["img_shape"] == (64, 64)
    assert sample.metainfo["scale_factor"] == pytest.approx((64 / w, 64 / h))
    assert sample.metainfo["sample_id"] == raw["sample_id"] and sample.metainfo["img_id"] == k
    # tight boxes, every Object-CXR shape (rectangle, ellipse, polygon): native = packed / scale
    native = _native_boxes(ref, "train")[raw["sample_id"]]
    back = sample.gt_instances.bboxes.tensor.numpy() / np.asarray([64 / w, 64 / h] * 2)
    assert np.allclose(back, native, atol=1e-3)
    shapes = {b["shape"] for r in plain.rows for b in (r["boxes"] or [])}
    assert shapes == {"rect", "ellipse", "polygon_bbox"}
    # nested label fractions, negatives kept / dropped
    half = DATASETS.build(dict(type="PlaceBenchDetDataset", manifest=str(ref.manifest), split="train", fraction=0.5,
                               size=64))
    assert set(half.sample_ids) < set(ds.sample_ids) and len(half) == round(0.5 * len(ds))
    positives = DATASETS.build(dict(type="PlaceBenchDetDataset", manifest=str(ref.manifest), split="train", size=64,
                                    include_negatives=False))
    assert len(positives) == sum(bool(r["boxes"]) for r in plain.rows) < len(ds)


# ------------------------------------------------------------------------------------ model


def test_yolov3_card_model_config(model):
    from place_bench.plugins.tasks.detection import DetectionTask

    task = DetectionTask()
    assert task.optimizer == dict(type="AdamW", lr=5e-4, weight_decay=1e-6) and task.batch_size == 16
    assert task.conf_thr == 0.5 and task.nms_iou == 0.5 and task.variant is None and task.frozen
    anchors = task.yolo_anchors(224)
    assert anchors[0][0] == pytest.approx((116 * 224 / 416, 90 * 224 / 416)) and len(anchors) == 3
    assert all(len(level) == 3 for level in anchors)
    import copy

    encoder = copy.deepcopy(model.image_encoder)
    detector, cfg = task.build_detector(encoder, num_classes=1, size=224)
    assert cfg["type"] == "YOLOV3" and cfg["backbone"]["out_indices"] == (1, 2, 3)
    assert detector.backbone.strides == [8, 16, 32]
    assert cfg["neck"]["in_channels"] == list(reversed(detector.backbone.out_channels))
    assert cfg["bbox_head"]["featmap_strides"] == [32, 16, 8]
    assert cfg["test_cfg"]["conf_thr"] == 0.5 and cfg["test_cfg"]["nms"]["iou_threshold"] == 0.5
    detector.train()
    assert not detector.backbone.encoder.training and detector.bbox_head.training
    assert not any(p.requires_grad for p in detector.backbone.parameters())
    assert any(p.requires_grad for p in detector.bbox_head.parameters())
    fr = DetectionTask(head="faster_rcnn")
    assert fr.variant == "faster_rcnn" and fr.optimizer["type"] == "SGD" and fr.units([0.1], [0])[0].variant == "faster_rcnn"


def test_configs_and_per_fraction_overrides():
    from mmengine.config import Config

    from place_bench.plugins.tasks.detection import DetectionTask

    root = Path(__file__).resolve().parents[3] / "configs" / "_base_" / "tasks"
    cfg = Config.fromfile(str(root / "det.py"))
    assert cfg.task.type == "det" and cfg.fractions == [0.01, 0.1, 1.0] and cfg.seeds == [0, 1, 2]
    task = DetectionTask(**{k: v for k, v in cfg.task.to_dict().items() if k != "type"})
    assert [(u.fraction, u.seed, u.variant) for u in task.units(cfg.fractions, [0])] == [(0.01, 0, None), (0.1, 0, None),
                                                                                        (1.0, 0, None)]
    one = task.for_unit("rsna", 0.01)
    assert one.optimizer["lr"] == 2e-4 and one.batch_size == 8 and one.optimizer["weight_decay"] == 1e-6
    assert task.for_unit("object_cxr", 0.01).optimizer["lr"] == 2.5e-4
    assert task.for_unit("rsna", 0.1) is task and task.for_unit("siim", 0.01) is task
    faster = Config.fromfile(str(root / "det_faster_rcnn.py"))
    ftask = DetectionTask(**{k: v for k, v in faster.task.to_dict().items() if k != "type"})
    assert ftask.head == "faster_rcnn" and ftask.variant == "faster_rcnn" and ftask.by_dataset == {}
    assert ftask.for_unit("rsna", 0.01) is ftask
    with pytest.raises(ValueError, match="cannot be set"):
        DetectionTask(by_fraction={0.01: dict(head="faster_rcnn")})


# ------------------------------------------------------------------------------------ runs


def test_yolov3_unit_on_rsna(prepared, model, tmp_path):
    from place_bench.plugins.tasks.detection import DetectionTask

    ref = prepared["rsna"]
    before = _state(model.image_encoder)
    task = DetectionTask(**TINY)
    [result] = list(task.run(context(model, ref, tmp_path), task.units([1.0], [3])))
    assert result.unit == Unit(1.0, 3, None) and result.primary_metric == "map"
    truth = _native_boxes(ref, "test")
    assert result.n_test == len(truth) == len(result.item_ids) and set(result.item_ids) == set(truth)
    assert result.extra["n_with_gt"] == sum(len(b) > 0 for b in truth.values()) >= 1
    assert result.extra["n_negative"] >= 1
    for name in ("map", "ap50", "map_all", "ap50_all"):
        m = result.metrics[name]
        assert 0.0 <= m["value"] <= 1.0 and m["seed"] == 3 and m["n_resamples"] == 20
    assert result.metrics["map"]["n_images"] == result.extra["n_with_gt"]
    assert result.metrics["map_all"]["n_images"] == result.n_test
    # per-image arrays, axis 0 = test image; ground truth back in native pixels
    p = result.predictions
    assert {"gt_boxes", "gt_labels", "det_boxes", "det_scores", "det_labels"} <= set(p)
    assert all(len(v) == result.n_test for v in p.values())
    for i, sid in enumerate(result.item_ids):
        gt = p["gt_boxes"][i][p["gt_labels"][i] >= 0]
        assert np.allclose(gt, truth[sid], atol=1e-2)
    extra = result.extra
    assert extra["iters"] == 4 and [h[0] for h in extra["val_history"]] == [2, 4]
    assert extra["classes"] == ["Lung Opacity"] and extra["size"] == 64
    assert extra["model"]["type"] == "YOLOV3" and extra["model"]["strides"] == [8, 16, 32]
    # frozen means frozen: the trained copy's weights and BN buffers are bit-identical, eval mode kept
    assert extra["encoder_unchanged"] and extra["encoder_sha256_before"] == extra["encoder_sha256_after"]
    assert not extra["encoder_training_mode"] and not extra["encoder_requires_grad"]
    from place_bench.plugins.tasks.detection import state_fingerprint

    assert extra["encoder_sha256_after"] == state_fingerprint(model.image_encoder)
    after = model.image_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the evaluated model is untouched
    assert (tmp_path / "work" / "det").is_dir()


def test_yolov3_unit_on_object_cxr_fraction_with_detections(prepared, model, tmp_path):
    from place_bench.openmmlab.det_metric import CocoDetectionScorer, detections_from_arrays
    from place_bench.plugins.tasks.detection import DetectionTask

    ref = prepared["object_cxr"]
    # objectness threshold 0 so that detections survive after 4 iterations
    task = DetectionTask(**dict(TINY, conf_thr=0.0, max_per_img=20))
    [result] = list(task.run(context(model, ref, tmp_path), [Unit(0.5, 0)]))
    extra = result.extra
    assert extra["n_train"] == round(0.5 * 36) and extra["n_predictions"] > 0
    assert result.predictions["det_boxes"].shape[1] <= 20
    assert set(result.metrics) == {"map", "ap50", "map_all", "ap50_all", "map_mgca"}
    # the saved arrays reproduce the recorded point values
    again = CocoDetectionScorer(detections_from_arrays(result.predictions, num_classes=1), max_dets=20).point_metrics()
    for name in ("map", "ap50", "map_all", "ap50_all", "map_mgca"):
        assert again[name] == pytest.approx(result.metrics[name]["value"], abs=1e-9)
    # predictions are native pixels: inside the (un-squashed) image, up to the decoder's overshoot
    d = result.predictions["det_boxes"]
    assert np.nanmax(d[..., 2]) > 64 or np.nanmax(d[..., 3]) > 64
    assert extra["encoder_unchanged"]
    # seeded: the same unit again gives the same detections and metrics
    [again] = list(task.run(context(model, ref, tmp_path / "again"), [Unit(0.5, 0)]))
    assert again.metrics == result.metrics and again.extra["val_history"] == extra["val_history"]
    for k, v in result.predictions.items():
        assert np.array_equal(v, again.predictions[k], equal_nan=True)


def test_faster_rcnn_unit_is_a_separate_variant(prepared, model, tmp_path):
    from place_bench.plugins.tasks.detection import DetectionTask

    task = DetectionTask(**dict(TINY, head="faster_rcnn", batch_size=2, eval_batch_size=4, max_iters=2,
                                val_interval=2, lr=0.01, warmup_iters=0))
    [result] = list(task.run(context(model, prepared["object_cxr"], tmp_path), task.units([1.0], [0])))
    assert result.unit.variant == "faster_rcnn" and result.primary_metric == "map"
    assert result.extra["model"]["type"] == "FasterRCNN" and result.extra["model"]["strides"] == [4, 8, 16, 32]
    assert result.extra["iters"] == 2 and result.extra["encoder_unchanged"]
    assert math.isfinite(result.metrics["map"]["value"])


def test_through_evaluate_writes_record_and_predictions(prepared, tmp_path):
    """The runner's path (place_bench.engine.evaluate) with the task registered as ``det`` (the
    entry point does this once wired; here it is added for the test only when absent)."""
    from place_bench import registry
    from place_bench.engine.evaluate import evaluate, load_subject, predictions_path
    from place_bench.plugins.tasks.detection import DetectionTask
    from place_bench.results.store import ResultsStore

    added = False
    try:
        registry.get_component("task", "det")
    except registry.UnknownComponentError:
        registry.add_component("task", "det", DetectionTask, "test_detection_task")
        added = True
    try:
        config = Path(__file__).resolve().parents[3] / "configs" / "_base_" / "models" / "tiny_resnet_bert.py"
        subject = load_subject(str(config))
        store = ResultsStore(tmp_path / "results")
        summary = evaluate(subject, dict(type="det", **dict(TINY, max_iters=2)), prepared["rsna"], store,
                           fractions=[1.0], seeds=[0], work_dir=tmp_path / "work", log=lambda *_: None)
    finally:
        if added:
            registry.remove_plugin_components("test_detection_task")
    assert not summary.failed and len(summary.written) == 1
    record = summary.records[0]
    assert record["task"] == "det" and record["variant"] is None and record["primary_metric"] == "map"
    assert record["status"] == "ok" and record["config"]["protocol"]["card"] == "mgca_yolov3"
    saved = np.load(predictions_path(store, "det", "rsna", record["key"]))
    assert len(saved["item_ids"]) == record["n_test"] and saved["det_boxes"].shape[0] == record["n_test"]
