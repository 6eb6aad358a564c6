"""RSNA stage-2 emulator: CSV layouts, box rows against the latent, DICOM storage variants, pixels."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from scipy import ndimage

from place_bench.data.images import read_image
from place_bench.plugins.datasets.synthetic import compute_targets, render_frontal
from place_bench.plugins.datasets.synthetic.emulators import rsna
from place_bench.plugins.datasets.synthetic.latent import StudyLatent

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
N_IMAGES = 4


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """The native 1024-px images, fewer of them than ``tiny``'s 8 to keep the test quick."""
    root = tmp_path_factory.mktemp("rsna") / "rsna"
    return root, rsna.emulate(root, "tiny", seed=2, counts={"dicom_images": N_IMAGES})


@pytest.fixture(scope="module")
def records(tree):
    root, _ = tree
    return [json.loads(x) for x in (root / "latent.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def renders(records):
    """Frontal image of every record, re-rendered from its latent at the native 1024 px."""
    return {rec["ids"]["patientId"]: render_frontal(StudyLatent.from_dict(rec["latent"]), 1024) for rec in records}


def test_label_and_class_tables(tree):
    root, result = tree
    labels = _csv(root / "stage_2_train_labels.csv")
    classes = _csv(root / "stage_2_detailed_class_info.csv")
    assert labels[0] == ["patientId", "x", "y", "width", "height", "Target"]
    assert classes[0] == ["patientId", "class"]
    assert [r[0] for r in labels[1:]] == [r[0] for r in classes[1:]]  # one class row per label row
    seen: list[str] = []
    for (pid, x, y, w, h, target), (_, cls) in zip(labels[1:], classes[1:]):
        assert UUID4.match(pid)
        if not seen or seen[-1] != pid:
            assert pid not in seen, "rows of one patient must be consecutive"
            seen.append(pid)
        if target == "0":
            assert (x, y, w, h) == ("", "", "", "")
            assert cls in ("Normal", "No Lung Opacity / Not Normal")
        else:
            assert target == "1" and cls == "Lung Opacity"
            assert all(re.fullmatch(r"\d+\.0", v) for v in (x, y, w, h)) and float(w) > 0 and float(h) > 0
    assert len(seen) == N_IMAGES
    per_patient = {p: sum(r[0] == p for r in labels[1:]) for p in seen}
    assert max(per_patient.values()) >= 2, "a positive image with several boxes is planted"
    assert result.expected["positives"] == len({r[0] for r in labels[1:] if r[5] == "1"})
    assert result.expected["boxes"] == sum(r[5] == "1" for r in labels[1:])


def test_boxes_are_the_opacity_components_of_the_latent(tree, records):
    root, _ = tree
    rows = _csv(root / "stage_2_train_labels.csv")[1:]
    for rec in records:
        pid = rec["ids"]["patientId"]
        latent = StudyLatent.from_dict(rec["latent"])
        mask = compute_targets(latent, 1024).mask(("consolidation", "ground_glass"))
        lab, n = ndimage.label(mask, structure=np.ones((3, 3)))
        comps = []
        for i, sl in enumerate(ndimage.find_objects(lab), start=1):
            area = int((lab[sl] == i).sum())
            comps.append((area, (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)))
        keep = {b for _, b in sorted(comps, key=lambda t: -t[0])[:4]}
        got = [(float(x), float(y), float(x) + float(w), float(y) + float(h))
               for p, x, y, w, h, t in rows if p == pid and t == "1"]
        assert {tuple(int(v) for v in b) for b in got} == keep
        assert len(got) == len(keep) and (len(got) > 0) == (rec["target"] == 1)


def test_dicom_headers_and_storage_variants(tree, records):
    root, _ = tree
    kinds = set()
    for rec in records:
        path = root / "stage_2_train_images" / f"{rec['ids']['patientId']}.dcm"
        assert path.is_file()
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert (ds.Rows, ds.Columns) == (1024, 1024)
        assert ds.PatientID == rec["ids"]["patientId"]
        assert ds.ViewPosition == rec["latent"]["view"] and ds.ViewPosition in ("PA", "AP")
        assert ds.PhotometricInterpretation in ("MONOCHROME1", "MONOCHROME2")
        bits = (ds.BitsAllocated, ds.BitsStored, ds.HighBit)
        assert bits in ((8, 8, 7), (16, 12, 11))
        kinds.add((ds.PhotometricInterpretation, ds.BitsStored))
        assert "StudyDate" in ds and ds.StudyDate == "19010101"
    assert ("MONOCHROME1", 8) in kinds or ("MONOCHROME1", 12) in kinds
    assert any(b == 12 for _, b in kinds) and ("MONOCHROME2", 8) in kinds


def test_dicoms_decode_to_the_rendered_image(tree, records, renders):
    root, _ = tree
    for rec in records:
        path = root / "stage_2_train_images" / f"{rec['ids']['patientId']}.dcm"
        want = renders[rec["ids"]["patientId"]]
        levels = 4095.0 if rec["ids"]["bits"] == 12 else 255.0
        got = read_image(path, dicom_scaling="bits")
        assert np.abs(got - want).max() <= 0.5 / levels + 1e-6, path.name
        # MGCA's max-scaling differs only by a gain, and MONOCHROME1 is inverted back (bone bright)
        g = read_image(path)
        q = np.round(np.clip(want, 0, 1) * levels) / levels
        assert np.allclose(g, q / q.max(), atol=1e-5) if rec["ids"]["photometric"] == "MONOCHROME2" else \
            np.corrcoef(g.ravel(), want.ravel())[0, 1] > 0.99
        assert np.abs(got - want[:, ::-1]).mean() > 10 * np.abs(got - want).mean()


def test_quirks_manifest(tree):
    root, result = tree
    manifest = json.loads((root / "manifest_of_quirks.json").read_text())
    assert manifest["dataset"] == "rsna"
    assert manifest["quirks"]["monochrome1"]["patientIds"] and manifest["quirks"]["bits_stored_12"]["patientIds"]
    assert manifest["expected_prepare"]["rows"] == N_IMAGES
    assert manifest["expected_prepare"]["label_rows"] == len(_csv(root / "stage_2_train_labels.csv")) - 1


def test_deterministic(tmp_path):
    a = rsna.emulate(tmp_path / "a", "tiny", seed=2, image_px=128, counts={"dicom_images": 4})
    rsna.emulate(tmp_path / "b", "tiny", seed=2, image_px=128, counts={"dicom_images": 4})
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert ds_rows(tmp_path / "a") == 128 and len(a.paths) == 4 + 4


def ds_rows(root: Path) -> int:
    return int(pydicom.dcmread(next((root / "stage_2_train_images").glob("*.dcm"))).Rows)
