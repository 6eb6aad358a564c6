"""``prepare`` for RSNA Pneumonia on a hand-made native tree and on the real stage-2 label table."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.plugins.datasets.rsna import RSNADataset  # noqa: E402


def pid(k: int) -> str:
    return f"{k:08x}-14fd-4e49-80ba-63a80b6bddd6"


# (patientId, x, y, width, height, Target); ids 2, 4, 5 and 8 positive, id 2 with two boxes
LABELS = [
    (pid(1), "", "", "", "", "0"),
    (pid(2), "100.0", "200.0", "50.0", "80.0", "1"),
    (pid(3), "", "", "", "", "0"),
    (pid(2), "600.0", "210.0", "120.0", "90.0", "1"),
    (pid(4), "10.5", "20.0", "30.0", "40.0", "1"),
    (pid(5), "500.0", "500.0", "100.0", "100.0", "1"),
    (pid(6), "", "", "", "", "0"),
    (pid(7), "", "", "", "", "0"),
    (pid(8), "300.0", "400.0", "200.0", "100.0", "1"),
    (pid(9), "", "", "", "", "0"),
    (pid(10), "", "", "", "", "0"),
    (pid(11), "", "", "", "", "0"),
    (pid(12), "", "", "", "", "0"),
]
POSITIVE = {pid(2), pid(4), pid(5), pid(8)}
CLASSES = {pid(k): ("Lung Opacity" if pid(k) in POSITIVE else "Normal") for k in range(1, 13)}
CLASSES[pid(3)] = "Lung Opacity"  # disagrees with its Target 0: a counted warning


def write_csv(path: Path, header, rows):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def write_dicom(path: Path, view: str, size: int = 1024) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.ViewPosition = view
    ds.PatientSex = "F"
    ds.PatientAge = "051Y"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.zeros((size, size), dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def make_tree(root: Path, labels=LABELS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height", "Target"], labels)
    write_csv(root / "stage_2_detailed_class_info.csv", ["patientId", "class"],
              [(p, CLASSES[p]) for p, *_ in labels])
    return root


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "rsna")


@pytest.mark.parametrize("protocol", ["gloria", "suite"])
def test_counts_and_boxes_by_hand(tree, tmp_path, protocol):
    result = RSNADataset().prepare(tree, protocol, tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert set(rows) == {pid(k) for k in range(1, 13)}
    # gloria: ceil(0.3 * 12) = 4 held out, halved 2 / 2; suite: round(0.15 * 12) = 2 test, 2 valid
    assert {s: result.split_rows(s) for s in ("train", "valid", "test")} == {"train": 8, "valid": 2, "test": 2}
    assert sum(result.counts[s]["labels"]["Pneumonia"]["1"] for s in ("train", "valid", "test")) == 4
    assert sum(result.counts[s]["boxes"] for s in ("train", "valid", "test")) == 5
    two = rows[pid(2)]
    assert two["labels"] == [1.0] and two["mask_source"] == "boxes"
    assert [(b["x1"], b["y1"], b["x2"], b["y2"]) for b in two["boxes"]] == [(100, 200, 150, 280), (600, 210, 720, 300)]
    assert {b["shape"] for b in two["boxes"]} == {"rect"} and two["boxes"][0]["label"] == "Lung Opacity"
    assert rows[pid(4)]["boxes"][0]["x1"] == 10.5
    assert rows[pid(1)]["boxes"] == [] and rows[pid(1)]["labels"] == [0.0]
    assert two["image_path"] == f"stage_2_train_images/{pid(2)}.dcm" and two["subject_id"] == pid(2)
    assert json.loads(two["source_row"])["labels"][1]["x"] == "600.0"
    assert two["view"] == "UNKNOWN" and result.warning_count("view_unknown") == 12
    assert result.warning_count("class_target_mismatch") == 1
    assert sorted(r["frac_rank"] for r in rows.values() if r["split"] == "train") == list(range(8))
    assert read_sidecar(result.sidecar_path)["frac_base"] == 8


def test_gloria_membership_equals_sklearn_split(tree, tmp_path):
    pd = pytest.importorskip("pandas")
    model_selection = pytest.importorskip("sklearn.model_selection")
    df = pd.read_csv(tree / "stage_2_train_labels.csv")[["patientId", "Target"]].groupby("patientId").agg(list).reset_index()
    train, rest = model_selection.train_test_split(df, test_size=0.3, random_state=0)
    test, valid = model_selection.train_test_split(rest, test_size=0.5, random_state=0)
    rows = rows_of(RSNADataset().prepare(tree, "gloria", tmp_path / "out", check_images=False))
    for frame, split in ((train, "train"), (valid, "valid"), (test, "test")):
        assert {p for p, r in rows.items() if r["split"] == split} == set(frame["patientId"])


def test_mgca_needs_the_full_table(tree, tmp_path):
    with pytest.raises(PrepareError, match="holds out 10674"):
        RSNADataset().prepare(tree, "mgca", tmp_path / "out", check_images=False)


def test_header_table_gives_view_sex_age(tree, tmp_path):
    write_csv(tree / "kaggle_stage_2_train_images_dicom_headers.csv", ["PatientID", "ViewPosition", "PatientSex", "PatientAge"],
              [(pid(k), "AP" if k % 2 else "PA", "M", str(20 + k)) for k in range(1, 12)])  # id 12 absent
    rows = rows_of(result := RSNADataset().prepare(tree, "suite", tmp_path / "out", check_images=False))
    assert (rows[pid(3)]["view"], rows[pid(3)]["sex"], rows[pid(3)]["age"]) == ("AP", "M", 23)
    assert rows[pid(4)]["view"] == "PA"
    assert rows[pid(12)]["view"] == "UNKNOWN"
    assert result.warning_count("header_missing") == 1 and result.warning_count("view_unknown") == 1


def test_positive_row_without_box_names_the_line(tmp_path):
    bad = list(LABELS)
    bad[4] = (pid(4), "10.5", "", "30.0", "40.0", "1")  # line 6 of the file
    root = make_tree(tmp_path / "rsna", bad)
    with pytest.raises(PrepareError, match=r"^stage_2_train_labels\.csv line 6 column 'y': blank on a Target 1 row$"):
        RSNADataset().prepare(root, "suite", tmp_path / "out", check_images=False)


def test_conflicting_targets_are_an_error(tmp_path):
    root = make_tree(tmp_path / "rsna", LABELS + [(pid(1), "1.0", "1.0", "5.0", "5.0", "1")])
    with pytest.raises(PrepareError, match=f"patientId {pid(1)} has both Target 0 and 1 rows"):
        RSNADataset().prepare(root, "suite", tmp_path / "out", check_images=False)


def test_missing_column_is_one_line_error(tmp_path):
    root = tmp_path / "rsna"
    root.mkdir()
    write_csv(root / "stage_2_train_labels.csv", ["patientId", "x", "y", "width", "height"], [r[:5] for r in LABELS])
    with pytest.raises(PrepareError) as err:
        RSNADataset().prepare(root, "suite", tmp_path / "out", check_images=False)
    assert str(err.value).startswith("stage_2_train_labels.csv: missing column 'Target'")
    assert "\n" not in str(err.value)


def test_images_checked_and_missing_one_counted(tree, tmp_path):
    for k in range(1, 13):
        if k != 7:
            write_dicom(tree / "stage_2_train_images" / f"{pid(k)}.dcm", "PA" if k % 2 else "AP")
    result = RSNADataset().prepare(tree, "suite", tmp_path / "out", check_images=True)
    rows = rows_of(result)
    assert pid(7) not in rows and len(rows) == 11
    assert result.warning_count("missing_image") == 1
    r = rows[pid(2)]
    assert (r["width"], r["height"], r["photometric"]) == (1024, 1024, "MONOCHROME2")
    assert (r["view"], r["sex"], r["age"]) == ("AP", "F", 51)
    assert result.warning_count("box_outside_image") == 0


def test_rerun_is_byte_identical(tree, tmp_path):
    a = RSNADataset().prepare(tree, "suite", tmp_path / "a", check_images=False)
    b = RSNADataset().prepare(tree, "suite", tmp_path / "b", check_images=False, force=True)
    assert a.manifest_path.read_bytes() == b.manifest_path.read_bytes()
    assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()
    assert RSNADataset().prepare(tree, "suite", tmp_path / "a", check_images=False).reused


# --------------------------------------------------------------------------------------------
# The real stage-2 label table bundled with torchxrayvision (labels only; no images)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_root(tmp_path_factory):
    txv = pytest.importorskip("torchxrayvision")
    data = Path(txv.__file__).parent / "data"
    labels = data / "kaggle_stage_2_train_labels.csv.zip"
    header = data / "kaggle_stage_2_train_images_dicom_headers.csv.gz"
    if not labels.is_file():
        pytest.skip(f"{labels} not shipped by this torchxrayvision")
    root = tmp_path_factory.mktemp("rsna_real")
    shutil.copyfile(labels, root / "stage_2_train_labels.csv.zip")
    if header.is_file():
        shutil.copyfile(header, root / "kaggle_stage_2_train_images_dicom_headers.csv.gz")
    return root


def test_real_rsna_counts(real_root, tmp_path):
    mgca = RSNADataset().prepare(real_root, "mgca", tmp_path, check_images=False)
    total = lambda key: sum(mgca.counts[s][key] for s in ("train", "valid", "test"))  # noqa: E731
    # Kaggle stage 2: 30,227 label rows over 26,684 images; 6,012 positive images with 9,555 boxes
    # (datasets.md section 1.3, from third-party EDA of the challenge data)
    assert mgca.rows == 26_684
    assert sum(mgca.counts[s]["labels"]["Pneumonia"]["1"] for s in ("train", "valid", "test")) == 6012
    assert total("boxes") == 9555
    assert mgca.warning_count("unexpected_row_count") == 0  # 30,227 rows as published
    # MGCA (NeurIPS 2022) detection split: 16,010 / 5,337 / 5,337
    assert [mgca.split_rows(s) for s in ("train", "valid", "test")] == [16_010, 5337, 5337]
    assert mgca.warning_count("view_unknown") == 0  # header table gives AP / PA for every image
    # GLoRIA classification split (70 / 15 / 15 of 26,684): 18,678 / 4,003 / 4,003
    gloria = RSNADataset().prepare(real_root, "gloria", tmp_path, check_images=False)
    assert [gloria.split_rows(s) for s in ("train", "valid", "test")] == [18_678, 4003, 4003]


def test_real_rsna_mgca_membership_equals_mgca_code(real_root, tmp_path):
    pd = pytest.importorskip("pandas")
    model_selection = pytest.importorskip("sklearn.model_selection")
    df = pd.read_csv(real_root / "stage_2_train_labels.csv.zip")[["patientId", "Target"]]
    df = df.groupby("patientId").agg(list).reset_index()
    train, rest = model_selection.train_test_split(df, test_size=5337 * 2, random_state=0)
    test, valid = model_selection.train_test_split(rest, test_size=0.5, random_state=0)
    result = RSNADataset().prepare(real_root, "mgca", tmp_path, check_images=False)
    rows = {r["sample_id"]: r for r in iter_manifest(result.manifest_path, ["sample_id", "split", "frac_rank"])}
    for frame, split in ((train, "train"), (valid, "valid"), (test, "test")):
        assert {p for p, r in rows.items() if r["split"] == split} == set(frame["patientId"])
    # MGCA's classification fractions: pandas sample(frac=0.01, random_state=42) of its train table
    picked = set(train.sample(frac=0.01, random_state=42)["patientId"])
    assert picked == {p for p, r in rows.items() if r["split"] == "train" and r["frac_rank"] < round(0.01 * len(train))}
