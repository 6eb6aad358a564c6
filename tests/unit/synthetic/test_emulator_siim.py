"""SIIM-ACR stage-1 emulator: the train-rle.csv quirks, RLE rows against the rendered mask, DICOM tree."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest

from place_bench.data.images import read_image
from place_bench.data.rle import siim_rle_to_mask
from place_bench.plugins.datasets.synthetic import compute_targets, render_frontal
from place_bench.plugins.datasets.synthetic.emulators import siim
from place_bench.plugins.datasets.synthetic.latent import StudyLatent

N_IMAGES = 4
PX = 1024
UID = r"1\.2\.276\.0\.7230010\.3\.1\.{}\.8323329\.\d+\.\d+\.\d+"


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _table(root: Path) -> list[tuple[str, str]]:
    """(ImageId, raw value) per data line of train-rle.csv, split at the first comma."""
    lines = (root / "train-rle.csv").read_text().splitlines()
    return [tuple(line.split(",", 1)) for line in lines[1:]]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("siim") / "siim"
    return root, siim.emulate(root, "tiny", seed=4, counts={"dicom_images": N_IMAGES})


@pytest.fixture(scope="module")
def records(tree):
    root, _ = tree
    return {json.loads(x)["ids"]["ImageId"]: json.loads(x) for x in (root / "latent.jsonl").read_text().splitlines()}


def test_header_and_leading_spaces(tree):
    root, _ = tree
    lines = (root / "train-rle.csv").read_text().splitlines()
    assert lines[0] == "ImageId, EncodedPixels"
    rows = _table(root)
    assert all(v.startswith(" ") and not v.startswith("  ") for _, v in rows)
    assert any(v == " -1" for _, v in rows)
    assert all(v == " -1" or re.fullmatch(r"( \d+ \d+)+", v) for _, v in rows)
    assert all(re.fullmatch(UID.format(4), i) for i, _ in rows)
    stage2 = (root / "stage_2_train.csv").read_text().splitlines()
    assert stage2[0] == "ImageId,EncodedPixels"
    assert [tuple(x.split(",", 1)) for x in stage2[1:]] == [(i, v.strip()) for i, v in rows]


def test_rle_rows_decode_to_the_rendered_mask(tree, records):
    root, result = tree
    rows = _table(root)
    ids = list(dict.fromkeys(i for i, _ in rows))
    positives = 0
    for image_id in ids:
        values = [v for i, v in rows if i == image_id]
        mask = siim_rle_to_mask(values, (PX, PX))
        if image_id not in records:  # planted: listed, no DICOM
            assert values == [" -1"]
            continue
        rec = records[image_id]
        want = compute_targets(StudyLatent.from_dict(rec["latent"]), PX).mask("pneumothorax")
        if rec["corner_region"]:
            k = max(3, PX // 100)
            want = want.copy()
            want[PX - k:, PX - 1] = True  # the planted region ending at the last pixel
        assert np.array_equal(mask, want), image_id
        positives += bool(want.any())
        if rec["split_regions"]:
            parts = [siim_rle_to_mask(v, (PX, PX)) for v in values]
            assert len(parts) == 2 and all(p.any() for p in parts) and not (parts[0] & parts[1]).any()
    assert positives == result.expected["positives"] >= 2


def test_planted_quirks(tree, records):
    root, result = tree
    rows = _table(root)
    q = result.quirks
    last = q["run_to_last_pixel"]["ImageIds"]
    assert len(last) == 1
    tail = [siim_rle_to_mask(v, (PX, PX)) for i, v in rows if i == last[0]]
    assert any(m[-1, -1] for m in tail)  # a run reaching the very last pixel (column-major)
    assert len(q["split_regions"]["ImageIds"]) == 1
    counts = {}
    for i, _ in rows:
        counts[i] = counts.get(i, 0) + 1
    assert sorted(i for i, k in counts.items() if k > 1) == sorted(q["multi_row_images"]["ImageIds"])
    missing = q["missing_image"]["ImageIds"]
    assert len(missing) == 1 and missing[0] in counts and missing[0] not in records
    assert not list((root / "dicom-images-train").rglob(f"{missing[0]}.dcm"))
    assert result.expected["rows"] == N_IMAGES and result.expected["table_rows"] == len(rows)


def test_dicom_tree_and_pixels(tree, records):
    root, _ = tree
    files = sorted((root / "dicom-images-train").rglob("*.dcm"))
    assert len(files) == N_IMAGES
    for path in files:
        study, series, name = path.relative_to(root / "dicom-images-train").parts
        assert re.fullmatch(UID.format(2), study) and re.fullmatch(UID.format(3), series)
        ds = pydicom.dcmread(path)
        assert ds.SOPInstanceUID == name[:-4] and ds.StudyInstanceUID == study and ds.SeriesInstanceUID == series
        assert (ds.Rows, ds.Columns, ds.BitsStored, ds.PhotometricInterpretation) == (PX, PX, 8, "MONOCHROME2")
        rec = records[ds.SOPInstanceUID]
        assert ds.ViewPosition == rec["latent"]["view"]
    # pixels of one image (rendering at 1024 px is the slow part)
    path = files[0]
    rec = records[path.stem]
    want = render_frontal(StudyLatent.from_dict(rec["latent"]), PX)
    got = read_image(path, dicom_scaling="bits")
    assert np.abs(got - want).max() <= 0.5 / 255 + 1e-6
    assert np.abs(got - want[:, ::-1]).mean() > 10 * np.abs(got - want).mean()


def test_deterministic(tmp_path):
    siim.emulate(tmp_path / "a", "tiny", seed=4, image_px=96, counts={"dicom_images": 4})
    siim.emulate(tmp_path / "b", "tiny", seed=4, image_px=96, counts={"dicom_images": 4})
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
