"""MIMIC R2Gen annotation emulator: entries reference the emulated MIMIC tree; standalone images match it."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

import pytest

from place_bench.data.report_text import parse_mimic_report
from place_bench.plugins.datasets.synthetic.emulators import mimic_cxr, mimic_rrg

COUNTS = {"pretrain": 16, "valid": 3, "test": 3, "5xn": 1}


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _table(path: Path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(gzip.decompress(path.read_bytes()).decode())))


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("rrg")
    mimic_cxr.emulate(base / "mimic_cxr", "tiny", seed=11, counts=COUNTS)
    mimic_rrg.emulate(base / "mimic_rrg", "tiny", seed=11, counts=COUNTS, mimic_root=base / "mimic_cxr")
    return base


def test_entries_reference_the_mimic_tree(trees):
    mimic, rrg = trees / "mimic_cxr", trees / "mimic_rrg"
    manifest = json.loads((rrg / "manifest_of_quirks.json").read_text())
    assert manifest["image_root"] == "../mimic_cxr/files"
    image_root = (rrg / manifest["image_root"]).resolve()
    ann = json.loads((rrg / "annotation.json").read_text())
    assert list(ann) == ["train", "val", "test"]
    split = {r["dicom_id"]: r["split"] for r in _table(mimic / "mimic-cxr-2.0.0-split.csv.gz")}
    official = {"train": "train", "validate": "val", "test": "test"}
    seen = set()
    for name, entries in ann.items():
        assert entries, name
        for e in entries:
            assert list(e) == ["id", "study_id", "subject_id", "report", "image_path", "split"]
            assert isinstance(e["study_id"], int) and isinstance(e["subject_id"], int)
            assert e["split"] == name == official[split[e["id"]]]
            (path,) = e["image_path"]
            s = str(e["subject_id"])
            assert path == f"p{s[:2]}/p{s}/s{e['study_id']}/{e['id']}.jpg"
            assert (image_root / path).is_file()
            report = parse_mimic_report((image_root / f"p{s[:2]}/p{s}/s{e['study_id']}.txt").read_text())
            assert e["report"] == " ".join(report.findings.split())
            seen.add(e["study_id"])
    # every study with a FINDINGS section and images on disk is in, the others are not
    want = set()
    for line in (mimic / "latent.jsonl").read_text().splitlines():
        rec = json.loads(line)
        if rec["report_state"] == "text" and rec["report_sections"].get("findings") and \
                any(im["written"] for im in rec["ids"]["images"]):
            want.add(rec["ids"]["study_id"])
    assert seen == want


def test_standalone_images_are_the_mimic_images(trees, tmp_path):
    mimic_rrg.emulate(tmp_path / "alone", "tiny", seed=11, counts=COUNTS)
    ann = json.loads((tmp_path / "alone" / "annotation.json").read_text())
    assert ann == json.loads((trees / "mimic_rrg" / "annotation.json").read_text())
    for e in ann["train"][:10]:
        (path,) = e["image_path"]
        alone = (tmp_path / "alone" / "images" / path).read_bytes()
        assert alone == (trees / "mimic_cxr" / "files" / path).read_bytes()


def test_deterministic(trees, tmp_path):
    mimic_rrg.emulate(tmp_path / "again", "tiny", seed=11, counts=COUNTS, mimic_root=trees / "mimic_cxr")
    a, b = _digest(tmp_path / "again"), _digest(trees / "mimic_rrg")
    manifest = "manifest_of_quirks.json"  # holds the relative image root, which depends on the location
    assert {k: v for k, v in a.items() if k != manifest} == {k: v for k, v in b.items() if k != manifest}
