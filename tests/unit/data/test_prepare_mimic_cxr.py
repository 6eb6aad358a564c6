"""``prepare`` for MIMIC-CXR pretraining pairs and MIMIC-5x200 on a hand-made native tree."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.plugins.datasets.mimic_cxr import (  # noqa: E402
    MIMIC_LABELS,
    Mimic5x200Dataset,
    MimicCXRDataset,
    mgca_caption_sentences,
    mgca_caption_tokens,
)


def did(n: int) -> str:
    return f"{n:08x}-1a2b3c4d-5e6f7a8b-9c0d1e2f-3a4b5c6d"


FULL = (
    "                                 FINAL REPORT\n"
    " EXAMINATION:  CHEST (PA AND LAT)\n \n"
    " INDICATION:  ___ year old man with cough\n \n"
    " FINDINGS:\n \n"
    " Heart size is mildly enlarged. No pleural effusion.\n \n"
    " IMPRESSION:\n \n"
    " 1. Mild cardiomegaly. 2. No acute process.\n"
)
# impression + " " + findings -> "mild cardiomegaly" (2) "no acute process" (3)
# "heart size is mildly enlarged" (5) "no pleural effusion" (3)
FULL_TOKENS = 13
IMPRESSION_ONLY = " FINAL REPORT\n IMPRESSION:  No acute process.\n"  # 3 tokens: kept
TOO_SHORT = " FINAL REPORT\n IMPRESSION:  Clear.\n"  # one-token sentence dropped: 0 tokens
NO_SECTIONS = " The lungs are clear and there is no effusion.\n"  # no FINDINGS / IMPRESSION header
FINDINGS_ONLY = " FINDINGS:  Lungs are clear. Heart size normal.\n"  # 3 + 3 tokens

# (subject, study, official split, [(dicom n, ViewPosition)], report or None (no file), labels or None)
STUDIES = [
    ("10000001", "50000001", "train", [(1, "PA"), (2, "LATERAL")], FULL, {"Cardiomegaly": "1.0", "Edema": "-1.0"}),
    ("10000001", "50000002", "train", [(3, "AP"), (4, "AP")], IMPRESSION_ONLY, None),  # two frontal, no labels
    ("10000002", "50000003", "train", [(5, "PA")], "", {"No Finding": "1.0"}),  # empty report
    ("10000002", "50000004", "train", [(6, "PA")], None, {"No Finding": "1.0"}),  # missing report
    ("10000002", "50000005", "train", [(7, "PA")], TOO_SHORT, {"No Finding": "1.0"}),
    ("10000002", "50000006", "train", [(8, "LL")], FULL, {}),  # lateral only: no row
    ("10000003", "50000007", "validate", [(9, "PA"), (14, "XTABLE LATERAL")], FINDINGS_ONLY, {"Edema": "1.0"}),
    ("10000004", "50000008", "test", [(10, "AP")], FULL, {"Cardiomegaly": "1.0", "No Finding": "0.0"}),
    ("10000004", "50000009", "test", [(11, "PA")], NO_SECTIONS, {"Atelectasis": "1.0"}),
    # 5x1 candidates and distractors (test split)
    ("10000005", "50000010", "test", [(20, "LATERAL"), (21, "PA"), (22, "AP")], FINDINGS_ONLY, {"Atelectasis": "1.0"}),
    ("10000005", "50000011", "test", [(23, "PA")], FINDINGS_ONLY, {"Consolidation": "1.0", "Atelectasis": "0.0"}),
    ("10000006", "50000012", "test", [(24, "AP")], FINDINGS_ONLY, {"Edema": "1.0"}),
    ("10000006", "50000013", "test", [(25, "PA")], FINDINGS_ONLY, {"Pleural Effusion": "1.0"}),
    ("10000006", "50000014", "test", [(26, "PA")], FINDINGS_ONLY, {"Pleural Effusion": "1.0"}),
    ("10000007", "50000015", "test", [(27, "PA")], FINDINGS_ONLY, {"Edema": "1.0", "Support Devices": "1.0"}),
    ("10000007", "50000016", "test", [(28, "PA")], FINDINGS_ONLY, {"Atelectasis": "1.0", "Edema": "-1.0"}),
    ("10000007", "50000017", "test", [(29, "PA")], TOO_SHORT, {"Cardiomegaly": "1.0"}),  # no text: not 5x
]
NOT_IN_SPLIT = (12, "10000001", "50000001", "PA")  # metadata row without a split row
SPLIT_ONLY = (13, "10000001", "50000001")  # split row without a metadata row

META_HEADER = [
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows", "Columns",
    "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
]


def csv_bytes(header, rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue().encode()


def write_jpeg(path: Path, w: int = 6, h: int = 4) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h), 128).save(path, format="JPEG")


def make_tree(root: Path, images: bool = False, skip_image: int | None = None, drop_column: str | None = None,
              reports_zip: bool = False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    meta, split, labels = [], [], []
    zipped = {}
    for subject, study, official, imgs, report, lab in STUDIES:
        for n, view in imgs:
            meta.append([did(n), subject, study, "CHEST", view, 4, 6, 21800101, "120000.000", "", "", ""])
            split.append([did(n), study, subject, official])
            if images and n != skip_image:
                write_jpeg(root / f"files/p{subject[:2]}/p{subject}/s{study}/{did(n)}.jpg")
        if report is not None:
            rel = f"files/p{subject[:2]}/p{subject}/s{study}.txt"
            if reports_zip:
                zipped[rel] = report
            else:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(report)
        if lab is not None:
            labels.append([subject, study, *(lab.get(name, "") for name in MIMIC_LABELS)])
    n, subject, study, view = NOT_IN_SPLIT
    meta.append([did(n), subject, study, "CHEST", view, 4, 6, 21800101, "120000.000", "", "", ""])
    split.append([did(SPLIT_ONLY[0]), SPLIT_ONLY[2], SPLIT_ONLY[1], "train"])
    (root / "mimic-cxr-2.0.0-metadata.csv.gz").write_bytes(gzip.compress(csv_bytes(META_HEADER, meta)))
    split_header = ["dicom_id", "study_id", "subject_id", "split"]
    if drop_column == "split":
        split = [r[:3] for r in split]
        split_header = split_header[:3]
    (root / "mimic-cxr-2.0.0-split.csv").write_bytes(csv_bytes(split_header, split))
    (root / "mimic-cxr-2.0.0-chexpert.csv.gz").write_bytes(
        gzip.compress(csv_bytes(["subject_id", "study_id", *MIMIC_LABELS], labels))
    )
    if zipped:
        with zipfile.ZipFile(root / "mimic-cxr-reports.zip", "w") as zf:
            for rel, text in sorted(zipped.items()):
                zf.writestr(rel, text)
    return root


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "mimic")


def test_mgca_caption_rule():
    # "2.5" is cut as an enumeration (MGCA's regex), "Nodule" alone is one token (dropped),
    # non-ASCII characters leave their token ("café" -> "caf")
    assert mgca_caption_sentences("Nodule 2.5 cm. Café noted", None) == ["5 cm", "caf noted"]
    assert mgca_caption_tokens("1. Mild cardiomegaly. 2. No acute process.",
                               "Heart size is mildly enlarged. No pleural effusion.") == FULL_TOKENS
    assert mgca_caption_tokens(None, "Clear.") == 0
    assert mgca_caption_sentences("No acute process.", None) == ["no acute process"]


def test_mgca_rows_by_hand(tree, tmp_path):
    result = MimicCXRDataset().prepare(tree, "mgca", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    # frontal images of studies with >= 3 caption tokens; validate + test merged into valid
    train = {did(1), did(3), did(4)}
    valid = {did(9), did(10)} | {did(n) for n in (21, 22, 23, 24, 25, 26, 27, 28)}
    assert {k for k, r in rows.items() if r["split"] == "train"} == train
    assert {k for k, r in rows.items() if r["split"] == "valid"} == valid
    assert result.split_rows("test") == 0
    r = rows[did(1)]
    assert r["image_path"] == f"files/p10/p10000001/s50000001/{did(1)}.jpg"
    assert r["aux_image_paths"] == [f"files/p10/p10000001/s50000001/{did(2)}.jpg"]
    assert (r["subject_id"], r["study_id"], r["view"], r["image_format"]) == ("10000001", "50000001", "PA", "jpg")
    assert r["report"] == FULL
    assert r["findings"] == "Heart size is mildly enlarged. No pleural effusion."
    assert r["impression"] == "1. Mild cardiomegaly. 2. No acute process."
    assert r["text_tokens"] == FULL_TOKENS
    lab = dict(zip(MIMIC_LABELS, r["labels"]))
    assert lab["Cardiomegaly"] == 1.0 and lab["Edema"] == -1.0 and math.isnan(lab["Atelectasis"])
    assert json.loads(r["source_row"])["split"]["split"] == "train"
    # two frontal images of one study share the report; a study without a label row gets NaNs
    assert rows[did(3)]["report"] == rows[did(4)]["report"] == IMPRESSION_ONLY
    assert rows[did(3)]["findings"] is None and rows[did(3)]["text_tokens"] == 3
    assert all(math.isnan(v) for v in rows[did(3)]["labels"]) and len(rows[did(3)]["labels"]) == 14
    # "XTABLE LATERAL" is neither frontal nor a lateral companion
    assert rows[did(9)]["aux_image_paths"] == []
    # train frac_rank: RandomState(42).permutation(3) = [0, 1, 2] over d1, d3, d4 (metadata order)
    assert [rows[did(n)]["frac_rank"] for n in (1, 3, 4)] == [0, 1, 2]
    # warnings, counted per study
    assert result.warning_count("empty_report") == 1
    assert result.warning_count("missing_report") == 1
    assert result.warning_count("few_caption_tokens") == 2  # 50000005 and 50000017
    assert result.warning_count("no_findings_or_impression") == 1
    assert result.warning_count("labels_missing") == 1
    assert result.warning_count("split_missing") == 1
    assert result.warning_count("split_without_metadata") == 1
    side = read_sidecar(result.sidecar_path)
    assert side["pair_counts"]["train"] == {"images": 8, "frontal": 6, "frontal_with_text": 4, "frontal_pairs": 3}
    assert side["pair_counts"]["test"]["frontal"] == 11 and side["pair_counts"]["test"]["frontal_pairs"] == 9
    assert side["frac_base"] == 3 and side["label_names"] == list(MIMIC_LABELS)
    assert side["options"]["report_files"]["count"] == 16


def test_suite_keeps_the_official_test_split(tree, tmp_path):
    result = MimicCXRDataset().prepare(tree, "suite", tmp_path / "out", check_images=False)
    assert [result.split_rows(s) for s in ("train", "valid", "test")] == [3, 1, 9]
    assert result.counts["test"]["subjects"] == 4
    mgca = MimicCXRDataset().prepare(tree, "mgca", tmp_path / "out", check_images=False)
    strip = ("split", "frac_rank")
    a = {k: json.dumps({c: v for c, v in r.items() if c not in strip}) for k, r in rows_of(result).items()}
    b = {k: json.dumps({c: v for c, v in r.items() if c not in strip}) for k, r in rows_of(mgca).items()}
    assert a == b  # row content is the same under both protocols (NaN labels compared as text)


def test_five_by_one_from_the_test_split(tree, tmp_path):
    result = Mimic5x200Dataset(n_per_class=1).prepare(tree, "suite", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    by_class = {r["class_name"]: k for k, r in rows.items()}
    # Atelectasis: study 50000010's first frontal image in table order is d21 (d20 is lateral)
    # Pleural Effusion: two candidates (d25, d26); RandomState(0).permutation(2) = [1, 0] -> d26
    assert by_class == {
        "Atelectasis": did(21),
        "Cardiomegaly": did(10),
        "Consolidation": did(23),
        "Edema": did(24),
        "Pleural Effusion": did(26),
    }
    assert {r["split"] for r in rows.values()} == {"test"}
    # raw values of the five competition labels (blank stays NaN)
    assert [None if math.isnan(v) else v for v in rows[did(23)]["labels"]] == [0.0, None, 1.0, None, None]
    assert rows[did(24)]["class_index"] == 3 and rows[did(24)]["findings"] == FINDINGS_ONLY.split(":  ")[1].strip()
    side = read_sidecar(result.sidecar_path)
    assert side["candidates_per_class"] == {
        "Atelectasis": 1, "Cardiomegaly": 1, "Consolidation": 1, "Edema": 1, "Pleural Effusion": 2,
    }
    assert side["class_names"][4] == "Pleural Effusion"
    with pytest.raises(PrepareError, match="only 1 test-split studies qualify for the 5x2 class 'Atelectasis'"):
        Mimic5x200Dataset(n_per_class=2).prepare(tree, "suite", tmp_path / "out2", check_images=False)


def test_reports_read_from_the_zip(tmp_path):
    root = make_tree(tmp_path / "mimic", reports_zip=True)
    result = MimicCXRDataset().prepare(root, "suite", tmp_path / "out", check_images=False)
    assert result.rows == 13
    assert rows_of(result)[did(1)]["report"] == FULL
    assert "mimic-cxr-reports.zip" in read_sidecar(result.sidecar_path)["files"]
    assert result.warning_count("missing_report") == 1


def test_missing_column_is_one_line_error(tmp_path):
    root = make_tree(tmp_path / "mimic", drop_column="split")
    with pytest.raises(PrepareError) as err:
        MimicCXRDataset().prepare(root, "mgca", tmp_path / "out", check_images=False)
    assert str(err.value).startswith("mimic-cxr-2.0.0-split.csv: missing column 'split'")
    assert "\n" not in str(err.value)


def test_bad_split_value_names_the_line(tree, tmp_path):
    path = tree / "mimic-cxr-2.0.0-split.csv"
    path.write_text(path.read_text().replace(f"{did(9)},50000007,10000003,validate", f"{did(9)},50000007,10000003,val"))
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if t.startswith(did(9)))
    with pytest.raises(PrepareError, match=rf"^mimic-cxr-2\.0\.0-split\.csv line {line} column 'split': 'val' is not one"):
        MimicCXRDataset().prepare(tree, "mgca", tmp_path / "out", check_images=False)


def test_images_checked_and_missing_one_counted(tmp_path):
    root = make_tree(tmp_path / "mimic", images=True, skip_image=4)
    result = MimicCXRDataset().prepare(root, "mgca", tmp_path / "out", check_images=True)
    rows = rows_of(result)
    assert did(4) not in rows and result.rows == 12
    assert result.warning_count("missing_image") == 1
    assert (rows[did(1)]["width"], rows[did(1)]["height"]) == (6, 4)


def test_rerun_is_byte_identical(tree, tmp_path):
    a = MimicCXRDataset().prepare(tree, "suite", tmp_path / "a", check_images=False)
    b = MimicCXRDataset().prepare(tree, "suite", tmp_path / "b", check_images=False, force=True)
    assert a.manifest_path.read_bytes() == b.manifest_path.read_bytes()
    assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()
    assert MimicCXRDataset().prepare(tree, "suite", tmp_path / "a", check_images=False).reused
    # a changed report invalidates the manifest
    (tree / "files/p10/p10000001/s50000002.txt").write_text(" IMPRESSION:  No acute cardiopulmonary process.\n")
    c = MimicCXRDataset().prepare(tree, "suite", tmp_path / "a", check_images=False)
    assert not c.reused and rows_of(c)[did(3)]["text_tokens"] == 4


# --------------------------------------------------------------------------------------------
# The synthetic MIMIC-CXR emulator (datasets.md section 4.7), when it is there
# --------------------------------------------------------------------------------------------


def test_emulated_mimic_cxr_prepares(tmp_path):
    emulator = pytest.importorskip("place_bench.plugins.datasets.synthetic.emulators.mimic_cxr")
    emulated = emulator.emulate(tmp_path / "mimic", "tiny", 0)
    expected = emulated.expected
    result = MimicCXRDataset().prepare(emulated.root, "mgca", tmp_path / "out", check_images=True)
    pairs = read_sidecar(result.sidecar_path)["pair_counts"]
    total = lambda key: sum(c[key] for c in pairs.values())  # noqa: E731
    assert total("images") == expected["metadata_rows"]
    assert total("frontal") == expected["frontal_images"]
    assert total("frontal_with_text") == expected["frontal_images_with_text"]
    for code, count in expected["warnings"].items():
        assert result.warning_count(code) == count, code
    # every pair on disk is a row; the emulator's one missing image belongs to a pair study
    assert result.rows == total("frontal_pairs") - expected["warnings"]["missing_image"]
    allowed = {"missing_image", "missing_report", "empty_report", "few_caption_tokens", "no_findings_or_impression",
               "unexpected_row_count"}
    assert {w["code"] for w in result.warnings} <= allowed
    n = expected["five_by_n_per_class"]
    five = Mimic5x200Dataset(n_per_class=n).prepare(emulated.root, "suite", tmp_path / "out", check_images=True)
    assert five.counts["test"]["classes"] == {name: n for name in
                                             ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")}
