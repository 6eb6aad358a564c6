"""MIMIC-CXR-JPG + reports emulator: layout, columns, ids, quirks, labels, pixels, determinism.

Expectations come from datasets.md §1.1 (column lists written out below by hand), from the
MIT-LCP-style section parser and the rule labeler run on the written report files, and from
images re-rendered from ``latent.jsonl``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from place_bench.data.images import read_image
from place_bench.data.report_text import parse_mimic_report
from place_bench.plugins.datasets.synthetic import label_sections, render_frontal, render_lateral
from place_bench.plugins.datasets.synthetic.emulators import mimic_cxr
from place_bench.plugins.datasets.synthetic.latent import StudyLatent

COUNTS = {"pretrain": 40, "valid": 4, "test": 6, "5xn": 2}
PX = 64
METADATA = ["dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows",
            "Columns", "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning",
            "ViewCodeSequence_CodeMeaning", "PatientOrientationCodeSequence_CodeMeaning"]
SPLIT = ["dicom_id", "study_id", "subject_id", "split"]
LABELS = ["subject_id", "study_id", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
          "Enlarged Cardiomediastinum", "Fracture", "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion",
          "Pleural Other", "Pneumonia", "Pneumothorax", "Support Devices"]
IMAGE_RE = re.compile(r"^files/p(1\d)/p(1\d{7})/s(5\d{7})/([0-9a-f]{8}(?:-[0-9a-f]{8}){4})\.jpg$")


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _table(path: Path) -> tuple[list, list]:
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b", f"{path.name} is not gzipped"
    assert raw[4:8] == b"\0\0\0\0", "gzip header carries a timestamp"
    rows = list(csv.reader(io.StringIO(gzip.decompress(raw).decode("utf-8"))))
    return rows[0], rows[1:]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("mimic") / "mimic_cxr"
    result = mimic_cxr.emulate(root, "tiny", seed=3, image_px=PX, counts=COUNTS)
    return root, result


@pytest.fixture(scope="module")
def latents(tree):
    root, _ = tree
    lines = [json.loads(x) for x in (root / "latent.jsonl").read_text().splitlines()]
    return {rec["ids"]["study_id"]: rec for rec in lines}


def test_tables_have_the_native_names_and_columns(tree):
    root, result = tree
    for name in ("metadata", "split", "chexpert", "negbio"):
        assert (root / f"mimic-cxr-2.0.0-{name}.csv.gz").is_file()
    assert _table(root / "mimic-cxr-2.0.0-metadata.csv.gz")[0] == METADATA
    assert _table(root / "mimic-cxr-2.0.0-split.csv.gz")[0] == SPLIT
    assert _table(root / "mimic-cxr-2.0.0-chexpert.csv.gz")[0] == LABELS
    assert _table(root / "mimic-cxr-2.0.0-negbio.csv.gz")[0] == LABELS
    assert set(result.paths) == {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_ids_paths_and_image_filenames(tree):
    root, _ = tree
    _, meta = _table(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    listed = (root / "IMAGE_FILENAMES").read_text().splitlines()
    assert len(listed) == len(meta) == len(set(listed))
    by_id = {r[0]: r for r in meta}
    for path in listed:
        m = IMAGE_RE.match(path)
        assert m, path
        pxx, subject, study, dicom = m.groups()
        assert subject[:2] == pxx and len(dicom) == 44
        row = by_id[dicom]
        assert (row[1], row[2]) == (subject, study)
        assert row[4] in ("PA", "AP", "LATERAL", "LL")
        assert (row[5], row[6]) == (str(PX), str(PX))
        assert re.fullmatch(r"2\d{7}", row[7]) and re.fullmatch(r"\d{6}\.\d{3}", row[8])
    # one image is listed everywhere but absent on disk (planted)
    absent = [p for p in listed if not (root / p).is_file()]
    assert len(absent) == 1
    quirks = json.loads((root / "manifest_of_quirks.json").read_text())
    assert quirks["quirks"]["missing_image_on_disk"]["dicom_ids"] == [IMAGE_RE.match(absent[0]).group(4)]
    assert quirks["expected_prepare"]["warnings"]["missing_image"] == 1
    on_disk = sorted(p.relative_to(root).as_posix() for p in (root / "files").rglob("*.jpg"))
    assert on_disk == sorted(set(listed) - set(absent))


def test_splits_are_official_names_and_patient_disjoint(tree):
    root, result = tree
    _, rows = _table(root / "mimic-cxr-2.0.0-split.csv.gz")
    _, meta = _table(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    assert [r[0] for r in rows] == [r[0] for r in meta]
    split_of_subject: dict = {}
    for dicom, study, subject, split in rows:
        assert split in ("train", "validate", "test")
        assert split_of_subject.setdefault(subject, split) == split
    n = {s: sum(r[3] == s for r in rows) for s in ("train", "validate", "test")}
    assert n == {s: result.counts[s]["images"] for s in n}
    assert len({r[1] for r in rows if r[3] == "test"}) == COUNTS["test"] + 5 * COUNTS["5xn"]


def test_reports_sit_beside_study_folders_and_match_the_latent_state(tree, latents):
    root, result = tree
    states = {"text": 0, "empty": 0, "missing": 0}
    for study_id, rec in latents.items():
        path = root / rec["ids"]["report_path"]
        assert re.fullmatch(r"files/p1\d/p1\d{7}/s5\d{7}\.txt", rec["ids"]["report_path"])
        assert path.with_suffix("").is_dir() or all(not im["written"] for im in rec["ids"]["images"])
        state = rec["report_state"]
        states[state] += 1
        if state == "missing":
            assert not path.exists()
        elif state == "empty":
            assert path.read_bytes() == b""
        else:
            text = path.read_text()
            assert "FINAL REPORT" in text
            assert all(line.startswith(" ") for line in text.splitlines() if line)
            assert max(len(line) for line in text.splitlines()) <= 79
    assert states["empty"] >= 1 and states["missing"] >= 1  # planted
    w = result.expected["warnings"]
    assert (w["empty_report"], w["missing_report"]) == (states["empty"], states["missing"])


def test_label_rows_equal_the_labeler_run_on_the_report_files(tree, latents):
    root, _ = tree
    _, rows = _table(root / "mimic-cxr-2.0.0-chexpert.csv.gz")
    _, negbio = _table(root / "mimic-cxr-2.0.0-negbio.csv.gz")
    assert rows == negbio
    by_study = {int(r[1]): r for r in rows}
    assert len(by_study) == len(rows)
    for study_id, rec in latents.items():
        if rec["report_state"] == "missing":
            assert study_id not in by_study
            continue
        row = by_study[study_id]
        assert row[0] == str(rec["ids"]["subject_id"])
        assert set(row[2:]) <= {"", "1.0", "0.0", "-1.0"}
        parsed = parse_mimic_report((root / rec["ids"]["report_path"]).read_text())
        # the rule labeler reads sentences; undo the 79-column wrapping first
        labels = label_sections({"findings": " ".join(parsed.findings.split()),
                                 "impression": " ".join(parsed.impression.split())})
        want = ["" if labels[o] is None else f"{float(labels[o]):.1f}" for o in LABELS[2:]]
        assert row[2:] == want, f"s{study_id}"


def test_planted_second_frontal_and_laterals(tree, latents):
    root, result = tree
    _, meta = _table(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    frontal_per_study: dict = {}
    for r in meta:
        if r[4] in ("PA", "AP"):
            frontal_per_study[r[2]] = frontal_per_study.get(r[2], 0) + 1
    two = sorted(f"s{s}" for s, k in frontal_per_study.items() if k == 2)
    assert two and two == sorted(result.quirks["two_frontal_images"]["studies"])
    assert {r[4] for r in meta} >= {"LATERAL"}
    n_lat = sum(r[4] in ("LATERAL", "LL") for r in meta)
    assert n_lat == sum(rec["latent"]["has_lateral"] for rec in latents.values())


def test_images_are_the_rendered_views_never_flipped(tree, latents):
    root, _ = tree
    checked = 0
    for rec in list(latents.values())[:12]:
        latent = StudyLatent.from_dict(rec["latent"])
        for im in rec["ids"]["images"]:
            if not im["written"]:
                continue
            got = read_image(root / im["path"])
            want = render_lateral(latent, PX) if im["kind"] == "lateral" else render_frontal(latent, PX)
            other = render_frontal(latent, PX) if im["kind"] == "lateral" else render_lateral(latent, PX)
            err = np.abs(got - want).mean()
            assert err < 0.02, (im["path"], err)
            assert err < 0.5 * np.abs(got - want[:, ::-1]).mean()  # not mirrored
            assert err < 0.5 * np.abs(got - other).mean()           # the right view
            checked += 1
    assert checked >= 12


def test_expected_counts_match_the_tables(tree):
    root, result = tree
    _, meta = _table(root / "mimic-cxr-2.0.0-metadata.csv.gz")
    exp = result.expected
    assert exp["metadata_rows"] == len(meta)
    assert exp["frontal_images"] == sum(r[4] in ("PA", "AP") for r in meta)
    assert exp["studies"] == len({r[2] for r in meta})
    assert exp["subjects"] == exp["patients"] == len({r[1] for r in meta})
    assert exp["rows"]["all_images"] == len(meta) - 1  # the planted missing image
    assert 0 < exp["rows"]["mgca_pairs"] <= exp["frontal_images_with_text_on_disk"]
    manifest = json.loads((root / "manifest_of_quirks.json").read_text())
    assert manifest["expected_prepare"] == json.loads(json.dumps(exp))


def test_plain_csv_variant(tmp_path):
    mimic_cxr.emulate(tmp_path / "m", "tiny", seed=1, counts={"pretrain": 3, "valid": 1, "test": 1, "5xn": 0},
                      gzip_csv=False)
    header = (tmp_path / "m" / "mimic-cxr-2.0.0-metadata.csv").read_text().splitlines()[0]
    assert header.split(",") == METADATA


def test_deterministic(tree, tmp_path):
    root, _ = tree
    again = tmp_path / "mimic_cxr"
    mimic_cxr.emulate(again, "tiny", seed=3, image_px=PX, counts=COUNTS)
    assert _digest(again) == _digest(root)


def test_refuses_to_overwrite_foreign_folders(tmp_path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "mine.txt").write_text("x")
    with pytest.raises(FileExistsError):
        mimic_cxr.emulate(tmp_path / "keep", "tiny", counts={"pretrain": 1, "valid": 0, "test": 0, "5xn": 0})
    assert (tmp_path / "keep" / "mine.txt").read_text() == "x"
