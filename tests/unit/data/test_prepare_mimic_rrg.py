"""``prepare`` for MIMIC-CXR report generation on a hand-made R2Gen annotation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.plugins.datasets.mimic_rrg import MimicRRGDataset  # noqa: E402


def did(n: int) -> str:
    return f"{n:08x}-aaaabbbb-ccccdddd-eeeeffff-00001111"


def entry(n, subject, study, report, split):
    return {"id": did(n), "study_id": study, "subject_id": subject, "report": report,
            "image_path": [f"p{str(subject)[:2]}/p{subject}/s{study}/{did(n)}.jpg"], "split": split}


ANNOTATION = {
    "train": [
        entry(1, 10000001, 50000001, "The lungs are clear.", "train"),
        entry(2, 10000001, 50000001, "The lungs are clear.", "train"),  # the lateral of the same study
        entry(3, 10000002, 50000002, "", "train"),  # empty report
        entry(7, 10000002, 50000003, "Mild cardiomegaly.\n", "train"),
    ],
    "val": [entry(4, 10000003, 50000004, "Small effusion.", "val")],
    "test": [entry(5, "10000004", "50000005", "No pneumothorax.", "test"),  # ids given as strings
             entry(6, 10000004, 50000006, "Stable.", "test")],
}
VIEWS = {1: "PA", 2: "LATERAL", 4: "AP", 5: "AP LLD", 6: "PA"}  # d7 absent from the metadata


def make_tree(root: Path, annotation=ANNOTATION, metadata: bool = True, image_dir: str | None = "images") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "annotation.json").write_text(json.dumps(annotation))
    if metadata:
        with open(root / "mimic-cxr-2.0.0-metadata.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["dicom_id", "subject_id", "study_id", "ViewPosition"])
            w.writerows([did(n), "1", "5", view] for n, view in VIEWS.items())
    if image_dir:
        (root / image_dir).mkdir(parents=True, exist_ok=True)
    return root


def write_jpeg(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (7, 5), 30).save(path, format="JPEG")


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "mimic_rrg")


def test_rows_by_hand(tree, tmp_path):
    result = MimicRRGDataset().prepare(tree, "r2gen", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert {k: r["split"] for k, r in rows.items()} == {
        did(1): "train", did(2): "train", did(7): "train", did(4): "valid", did(5): "test", did(6): "test",
    }
    r = rows[did(1)]
    assert r["image_path"] == f"images/p10/p10000001/s50000001/{did(1)}.jpg" and r["aux_image_paths"] == []
    assert (r["subject_id"], r["study_id"], r["image_format"]) == ("10000001", "50000001", "jpg")
    assert r["report"] == r["findings"] == "The lungs are clear." and r["impression"] is None
    assert rows[did(7)]["report"] == "Mild cardiomegaly.\n" and rows[did(7)]["findings"] == "Mild cardiomegaly."
    assert (rows[did(5)]["subject_id"], rows[did(5)]["study_id"]) == ("10000004", "50000005")
    # views from the metadata table; unknown values and absent images give UNKNOWN
    assert [rows[did(n)]["view"] for n in (1, 2, 4, 5, 6, 7)] == ["PA", "LATERAL", "AP", "UNKNOWN", "PA", "UNKNOWN"]
    assert json.loads(r["source_row"])["study_id"] == 50000001
    assert result.warning_count("empty_report") == 1 and result.warning_count("unexpected_row_count") == 1
    # train ids sorted d1, d2, d7: RandomState(42).permutation(3) = [0, 1, 2]
    assert [rows[did(n)]["frac_rank"] for n in (1, 2, 7)] == [0, 1, 2]
    side = read_sidecar(result.sidecar_path)
    assert side["image_dir"] == "images" and side["view_source"] == "metadata table"
    assert side["annotation_sizes"] == {"train": 4, "val": 1, "test": 2}


def test_image_folder_choice(tmp_path):
    files = make_tree(tmp_path / "jpg_root", metadata=False, image_dir="files")
    rows = rows_of(MimicRRGDataset().prepare(files, "r2gen", tmp_path / "out", check_images=False))
    assert rows[did(4)]["image_path"] == f"files/p10/p10000003/s50000004/{did(4)}.jpg"
    assert rows[did(4)]["view"] == "UNKNOWN"
    other = make_tree(tmp_path / "ann_only", metadata=False, image_dir=None)
    result = MimicRRGDataset(image_dir="../jpg_root/files").prepare(other, "r2gen", tmp_path / "out2",
                                                                    check_images=False)
    assert rows_of(result)[did(4)]["image_path"] == f"../jpg_root/files/p10/p10000003/s50000004/{did(4)}.jpg"


def test_missing_key_names_the_entry(tmp_path):
    annotation = json.loads(json.dumps(ANNOTATION))
    del annotation["val"][0]["study_id"]
    root = make_tree(tmp_path / "mimic_rrg", annotation=annotation)
    with pytest.raises(PrepareError, match=rf"^annotation\.json: val\[0\] \(id '{did(4)}'\): missing key 'study_id'$"):
        MimicRRGDataset().prepare(root, "r2gen", tmp_path / "out", check_images=False)


def test_missing_annotation(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrepareError, match=r"required native file not found \(annotation\.json\)"):
        MimicRRGDataset().prepare(tmp_path / "empty", "r2gen", tmp_path / "out", check_images=False)


def test_images_checked_and_missing_one_counted(tree, tmp_path):
    for split in ANNOTATION.values():
        for e in split:
            if e["id"] != did(6):
                write_jpeg(tree / "images" / e["image_path"][0])
    result = MimicRRGDataset().prepare(tree, "r2gen", tmp_path / "out", check_images=True)
    rows = rows_of(result)
    assert did(6) not in rows and result.rows == 5
    assert result.warning_count("missing_image") == 1
    assert (rows[did(1)]["width"], rows[did(1)]["height"]) == (7, 5)


def test_rerun_is_byte_identical(tree, tmp_path):
    a = MimicRRGDataset().prepare(tree, "r2gen", tmp_path / "a", check_images=False)
    b = MimicRRGDataset().prepare(tree, "r2gen", tmp_path / "b", check_images=False, force=True)
    assert a.manifest_path.read_bytes() == b.manifest_path.read_bytes()
    assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()
    assert MimicRRGDataset().prepare(tree, "r2gen", tmp_path / "a", check_images=False).reused


def test_emulated_mimic_rrg_prepares(tmp_path):
    emulator = pytest.importorskip("place_bench.plugins.datasets.synthetic.emulators.mimic_rrg")
    emulated = emulator.emulate(tmp_path / "mimic_rrg", "tiny", 0)
    expected = emulated.expected
    result = MimicRRGDataset().prepare(emulated.root, "r2gen", tmp_path / "out", check_images=True)
    splits = {"train": "train", "valid": "val", "test": "test"}
    assert {s: result.split_rows(s) for s in splits} == {s: expected["rows"][n] for s, n in splits.items()}
    assert sum(result.counts[s]["subjects"] for s in splits) == expected["patients"]
    assert {w["code"] for w in result.warnings} <= {"unexpected_row_count"} | set(expected["warnings"])
