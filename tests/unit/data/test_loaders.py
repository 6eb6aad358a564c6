"""Torch datasets over manifests (place_bench.data.loaders) on tiny hand-made manifests."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from place_bench.data.images import ImageReadError, letterbox
from place_bench.data.loaders import (
    ClassificationDataset,
    DetectionDataset,
    ReportGenerationDataset,
    SegmentationDataset,
    boxes_to_mask,
    detection_collate,
)
from place_bench.data.manifest import sidecar_path, write_manifest, write_sidecar
from place_bench.data.rle import mask_to_rle, rle_to_mask

NAN = float("nan")


def png(path, h, w, rect=None, value=255):
    """Black ``h x w`` PNG, with ``rect = (y1, y2, x1, x2)`` (native pixels) set to ``value``."""
    a = np.zeros((h, w), dtype=np.uint8)
    if rect is not None:
        y1, y2, x1, x2 = rect
        a[y1:y2, x1:x2] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return a


def manifest(tmp_path, rows, label_names=(), name="m", **sidecar):
    rows = sorted(({"dataset": "toy", **r} for r in rows), key=lambda r: r["sample_id"])
    path = tmp_path / f"{name}.parquet"
    write_manifest(path, rows, label_names)
    write_sidecar(sidecar_path(path), {"dataset": "toy", "native_root": str(tmp_path),
                                       "label_names": list(label_names), **sidecar})
    return path


# ------------------------------------------------------------------ classification


def test_uncertainty_policies_and_label_selection(tmp_path):
    png(tmp_path / "a.png", 30, 40)
    names = ["A", "B", "C", "D"]
    rows = [{"sample_id": "s0", "split": "train", "image_path": "a.png", "labels": [1.0, 0.0, -1.0, NAN]},
            {"sample_id": "s1", "split": "train", "image_path": "a.png", "labels": [-1.0, NAN, 1.0, 0.0]}]
    path = manifest(tmp_path, rows, names)
    ones = ClassificationDataset(path, split="train", uncertain="ones")
    assert ones[0]["target"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert ones[1]["target"].tolist() == [1.0, 0.0, 1.0, 0.0]
    assert ones[0]["target"].dtype == torch.float32 and "target_mask" not in ones[0]
    zeros = ClassificationDataset(path, split="train", uncertain="zeros")
    assert zeros[0]["target"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert zeros[1]["target"].tolist() == [0.0, 0.0, 1.0, 0.0]
    ignore = ClassificationDataset(path, split="train", uncertain="ignore")
    assert ignore[0]["target"].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert ignore[0]["target_mask"].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert ignore[1]["target_mask"].tolist() == [0.0, 1.0, 1.0, 1.0]
    picked = ClassificationDataset(path, split="train", labels=["C", "A"], uncertain="zeros")
    assert picked.label_names == ["C", "A"]
    assert picked[0]["target"].tolist() == [0.0, 1.0]
    assert ones[0]["image"].shape == (3, 224, 224) and ones[0]["sample_id"] == "s0"
    with pytest.raises(ValueError, match="unknown label"):
        ClassificationDataset(path, labels=["Z"])
    with pytest.raises(ValueError, match="uncertain must be"):
        ClassificationDataset(path, uncertain="maybe")


def test_mgca_uncertainty_is_per_label(tmp_path):
    png(tmp_path / "a.png", 30, 40)
    names = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
    rows = [{"sample_id": "s0", "split": "train", "image_path": "a.png", "labels": [-1.0] * 5}]
    data = ClassificationDataset(manifest(tmp_path, rows, names), split="train", uncertain="mgca")
    # U-Ones for Atelectasis, Edema, Pleural Effusion; U-Zeros for Cardiomegaly, Consolidation.
    assert data[0]["target"].tolist() == [1.0, 0.0, 0.0, 1.0, 1.0]


def test_multiclass_uses_class_index(tmp_path):
    png(tmp_path / "a.png", 30, 40)
    classes = ["normal", "pneumonia", "COVID-19"]
    rows = [{"sample_id": f"s{i}", "split": "test", "image_path": "a.png", "class_index": c,
             "class_name": classes[c], "labels": np.eye(3)[c].tolist()} for i, c in enumerate([2, 0, 1])]
    path = manifest(tmp_path, rows, classes, class_names=classes)
    ds = ClassificationDataset(path, split="test")
    assert ds.target_kind == "multiclass"
    assert [ds[i]["target"].item() for i in range(3)] == [2, 0, 1]
    assert ds[0]["target"].dtype == torch.int64 and ds[0]["target"].shape == ()
    assert ClassificationDataset(path, split="test", target="multilabel")[0]["target"].tolist() == [0, 0, 1]


def test_fractions_are_nested_with_exact_counts(tmp_path):
    png(tmp_path / "a.png", 30, 40)
    n = 150
    ranks = np.random.RandomState(3).permutation(n)
    rows = [{"sample_id": f"s{i:03d}", "split": "train", "image_path": "a.png", "frac_rank": int(ranks[i]),
             "labels": [float(i % 2)]} for i in range(n)]
    rows += [{"sample_id": f"v{i}", "split": "valid", "image_path": "a.png", "labels": [0.0]} for i in range(5)]
    path = manifest(tmp_path, rows, ["P"], frac_base=n)
    members = {}
    for p in (0.01, 0.1, 1.0):
        ds = ClassificationDataset(path, split="train", fraction=p)
        members[p] = {r["sample_id"] for r in ds.rows}
    # round(1.5) = 2, round(15.0) = 15, all 150
    assert [len(members[p]) for p in (0.01, 0.1, 1.0)] == [2, 15, 150]
    assert members[0.01] < members[0.1] < members[1.0]
    expected = {f"s{i:03d}" for i in range(n) if ranks[i] < 15}
    assert members[0.1] == expected
    assert len(ClassificationDataset(path, split="valid")) == 5


# ------------------------------------------------------------------ segmentation


def test_mask_lands_on_the_letterboxed_rectangle_exact(tmp_path):
    # 30x40 -> letterbox 80 (scale 2, 60x80, top pad 10) -> centre crop 64 (offset 8):
    # rows 5..15 -> 10..30 -> 20..40 -> 12..32; cols 10..20 -> 20..40 -> 12..32.
    h, w, rect = 30, 40, (5, 15, 10, 20)
    native = png(tmp_path / "a.png", h, w, rect)
    rows = [{"sample_id": "s", "split": "train", "image_path": "a.png", "mask_rle": mask_to_rle(native > 0)}]
    ds = SegmentationDataset(manifest(tmp_path, rows), split="train", pipeline={"resize_to": 80, "crop": 64})
    item = ds[0]
    expected = np.zeros((64, 64), dtype=np.uint8)
    expected[12:32, 12:32] = 1
    assert item["mask"].dtype == torch.uint8 and item["mask"].shape == (64, 64)
    np.testing.assert_array_equal(item["mask"].numpy(), expected)
    np.testing.assert_array_equal((item["image"][0] > 0).numpy().astype(np.uint8), expected)


@pytest.mark.parametrize("hw", [(30, 40), (40, 30)])
@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("mask_from", ["rle", "boxes"])
def test_mask_follows_image_geometry(tmp_path, hw, train, mask_from):
    # Scale 6.4: rectangle edges fall inside output pixels. Along one axis, an edge pixel's
    # area-averaged value exceeds 0.5 exactly when its centre is inside (where nearest-neighbour
    # says 1); at corners coverages multiply, so the expectation is built per axis from the
    # thresholded image's middle row and column of the rectangle.
    h, w = hw
    rect = (7, 19, 3, 17)
    native = png(tmp_path / "a.png", h, w, rect)
    box = {"x1": 3.0, "y1": 7.0, "x2": 17.0, "y2": 19.0, "label": "x", "shape": "rect"}
    rows = [{"sample_id": "s", "split": "train", "image_path": "a.png",
             "mask_rle": mask_to_rle(native > 0), "boxes": [box]}]
    ds = SegmentationDataset(manifest(tmp_path, rows), split="train", train=train, seed=5, mask_from=mask_from)
    for key in ((0, 0), (0, 1)):
        item = ds[key]
        assert item["mask"].shape == (224, 224)
        bright = (item["image"][0] > 0).numpy()
        r, c = np.argwhere(bright).mean(axis=0).round().astype(int)  # inside the rectangle
        expected = np.outer(bright[:, c], bright[r, :]).astype(np.uint8)
        np.testing.assert_array_equal(item["mask"].numpy(), expected)
        assert 0 < item["mask"].sum() < 224 * 224 // 4


def test_boxes_to_mask_uses_pixel_centres():
    m = boxes_to_mask([{"x1": 2.0, "y1": 1.0, "x2": 5.0, "y2": 3.0}, {"x1": 7.4, "y1": 0.0, "x2": 8.6, "y2": 0.6}], 4, 10)
    expected = np.zeros((4, 10), dtype=bool)
    expected[1:3, 2:5] = True
    expected[0, 7:9] = True  # centres 7.5, 8.5 in [7.4, 8.6); row centre 0.5 in [0, 0.6)
    np.testing.assert_array_equal(m, expected)


def test_mask_size_mismatch_is_an_error(tmp_path):
    png(tmp_path / "a.png", 30, 40)
    rows = [{"sample_id": "s", "split": "train", "image_path": "a.png", "mask_rle": mask_to_rle(np.zeros((20, 20), bool))}]
    ds = SegmentationDataset(manifest(tmp_path, rows), split="train")
    with pytest.raises(ValueError, match="mask is 20x20 but the image is 30x40"):
        ds[0]


# ------------------------------------------------------------------ detection


def test_detection_squash_boxes_and_negatives(tmp_path):
    png(tmp_path / "a.png", 30, 40, (5, 15, 10, 20))
    png(tmp_path / "b.png", 30, 40)
    box = {"x1": 10.0, "y1": 5.0, "x2": 20.0, "y2": 15.0, "label": "Lung Opacity", "shape": "rect"}
    box2 = {"x1": 0.0, "y1": 0.0, "x2": 40.0, "y2": 30.0, "label": "Lung Opacity", "shape": "rect"}
    rows = [{"sample_id": "pos", "split": "train", "image_path": "a.png", "boxes": [box, box2]},
            {"sample_id": "zneg", "split": "train", "image_path": "b.png", "boxes": []}]
    path = manifest(tmp_path, rows)
    ds = DetectionDataset(path, split="train", size=224)
    assert len(ds) == 2 and len(DetectionDataset(path, split="train", include_negatives=False)) == 1
    item = ds[0]
    assert item["image"].shape == (3, 224, 224) and item["orig_size"] == (30, 40)
    # x * 224/40 = 5.6x, y * 224/30
    expected = [[56.0, 5 * 224 / 30, 112.0, 15 * 224 / 30], [0.0, 0.0, 224.0, 224.0]]
    np.testing.assert_allclose(item["boxes"].numpy(), expected, rtol=1e-6)
    assert item["labels"].tolist() == [0, 0] and ds.classes == ["Lung Opacity"]
    # the squashed image is bright inside the scaled box (away from its bilinear edges)
    assert item["image"][0, 60:100, 65:105].min() > 0.9 and item["image"][0, :20, :20].max() < -0.9
    neg = ds[1]
    assert neg["boxes"].shape == (0, 4) and neg["labels"].shape == (0,)
    batch = detection_collate([item, neg])
    assert batch["images"].shape == (2, 3, 224, 224) and batch["orig_sizes"].tolist() == [[30, 40], [30, 40]]
    assert [b.shape[0] for b in batch["boxes"]] == [2, 0]


# ------------------------------------------------------------------ report generation


def test_report_generation_two_views(tmp_path):
    png(tmp_path / "f.png", 40, 40, (0, 40, 0, 40))  # square, all white: no padding
    png(tmp_path / "l.png", 40, 30)  # all black
    rows = [{"sample_id": "r0", "split": "test", "image_path": "f.png", "aux_image_paths": ["l.png", "f.png"],
             "findings": "the heart is normal . no effusion .", "report": "ignored"},
            {"sample_id": "r1", "split": "test", "image_path": "l.png", "aux_image_paths": ["f.png"],
             "findings": None, "report": "lungs are clear ."},
            {"sample_id": "r2", "split": "test", "image_path": "l.png", "aux_image_paths": ["f.png"], "findings": " "}]
    path = manifest(tmp_path, rows, dataset="iu_xray")
    ds = ReportGenerationDataset(path, split="test", max_words=3)
    assert ds.views == 2 and len(ds) == 2 and ds.skipped_empty == 1
    item = ds[0]
    assert item["images"].shape == (2, 3, 224, 224)
    assert item["images"][0].min() == 1.0  # frontal: white everywhere
    assert item["images"][1].max() == -1.0
    assert item["report"] == "the heart is"
    assert ds[1]["report"] == "lungs are clear"
    one = ReportGenerationDataset(path, split="test", views=1)
    assert one[0]["images"].shape == (1, 3, 224, 224) and one[0]["report"] == "the heart is normal . no effusion ."
    with pytest.raises(ValueError, match="3 views requested"):
        ReportGenerationDataset(path, split="test", views=3)


# ------------------------------------------------------------------ errors


def test_error_messages(tmp_path):
    png(tmp_path / "a.png", 30, 40)
    rows = [{"sample_id": "s", "split": "train", "image_path": "a.png", "frac_rank": 0, "labels": [1.0]},
            {"sample_id": "t", "split": "test", "image_path": "missing.png", "labels": [1.0]}]
    path = manifest(tmp_path, rows, ["P"], frac_base=1)
    with pytest.raises(FileNotFoundError, match="nope.parquet' does not exist"):
        ClassificationDataset(tmp_path / "nope.parquet")
    with pytest.raises(ValueError, match=r"unknown split 'validation'; available: test, train"):
        ClassificationDataset(path, split="validation")
    for bad in (0, 1.5, -0.1, "x"):
        with pytest.raises(ValueError, match="fraction must"):
            SegmentationDataset(path, fraction=bad)
    with pytest.raises(ValueError, match="'train' split only"):
        DetectionDataset(path, split="test", fraction=0.5)
    with pytest.raises(ValueError, match="keeps no row"):
        ClassificationDataset(path, split="train", fraction=0.1)
    ds = ClassificationDataset(path, split="test")
    with pytest.raises(ImageReadError, match="missing.png"):
        ds[0]


# ------------------------------------------------------------------ emulated SIIM end to end


def test_emulated_siim_positive_mask(tmp_path):
    from place_bench.plugins.datasets.synthetic.emulators import emulate
    from place_bench.registry import get_component

    emulated = emulate("siim", tmp_path / "native", size="tiny", seed=0, counts={"dicom_images": 4})
    result = get_component("dataset", "siim").obj().prepare(emulated.root, "suite", tmp_path / "out", check_images=False)
    truth = {}
    for line in (emulated.root / "latent.jsonl").read_text().splitlines():
        rec = json.loads(line)
        truth[rec["ids"]["ImageId"]] = rec["union_rle_canonical"]
    checked = 0
    for split in ("train", "valid", "test"):
        try:
            ds = SegmentationDataset(result.manifest_path, split=split)
        except ValueError:
            continue  # split absent at this size
        for i, row in enumerate(ds.rows):
            drawn = rle_to_mask(truth[row["sample_id"]])
            if not drawn.any():
                continue
            mask = ds[i]["mask"].numpy().astype(bool)
            assert mask.sum() > 0
            # the renderer's region sent through the pipeline independently: area letterbox,
            # centre crop, threshold at one half
            boxed, _ = letterbox(drawn.astype(np.float32), 256)
            expected = boxed[16:240, 16:240] > 0.5
            iou = (mask & expected).sum() / (mask | expected).sum()
            assert iou > 0.8, iou
            checked += 1
    assert checked >= 1
