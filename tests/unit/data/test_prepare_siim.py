"""``prepare`` for SIIM-ACR on a hand-made native tree and on the real RLE table."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.data.rle import plausible_siim_modes, rle_to_mask, siim_to_canonical  # noqa: E402
from place_bench.plugins.datasets.siim import SIIMDataset, merge_runs, runs_to_boxes, runs_to_rle  # noqa: E402

N = 1024 * 1024


def iid(k: int) -> str:
    return f"1.2.276.0.7230010.3.1.4.8323329.{1000 + k}.1517875162.{300000 + k}"


# (ImageId, value) in file order, written with the stage-1 leading spaces
RLE = [
    (iid(1), "-1"),
    (iid(2), "5 3"),  # rows 5-7 of column 0
    (iid(3), "1020 8"),  # rows 1020-1023 of column 0, rows 0-3 of column 1: not connected
    (iid(4), "10 1 1024 1"),  # (row 10, col 0) and (row 11, col 1): diagonal neighbours
    (iid(5), "100 10"),
    (iid(4), "3000 2"),  # second region of image 4: rows 952-953 of column 2
    (iid(5), "105 10 3 2"),  # overlaps the first region; its offsets decrease, so it is not absolute
    (iid(6), "1048570 6"),  # the last 6 pixels: rows 1018-1023 of column 1023
    *[(iid(k), "-1") for k in range(7, 13)],
]
# canonical RLE and boxes, worked out by hand (counts: background, foreground, ...; sum 1048576)
EXPECTED = {
    iid(1): ("1024 1024 1048576", []),
    iid(2): ("1024 1024 5 3 1048568", [(0, 5, 1, 8)]),
    iid(3): ("1024 1024 1020 8 1047548", [(0, 1020, 1, 1024), (1, 0, 2, 4)]),
    iid(4): ("1024 1024 10 1 1024 1 1964 2 1045574", [(0, 10, 2, 12), (2, 952, 3, 954)]),
    iid(5): ("1024 1024 100 15 3 2 1048456", [(0, 100, 1, 115), (0, 118, 1, 120)]),
    iid(6): ("1024 1024 1048570 6", [(1023, 1018, 1024, 1024)]),
}


def write_table(path: Path, rows, header="ImageId, EncodedPixels", space=" "):
    path.write_text(header + "\n" + "".join(f"{i},{space}{v}\n" for i, v in rows))


def write_dicom(path: Path, size: int = 1024) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.ViewPosition, ds.PatientSex, ds.PatientAge = "CR", "PA", "M", "038Y"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.zeros((size, size), dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "siim"
    root.mkdir()
    write_table(root / "train-rle.csv", RLE)
    return root


def test_masks_boxes_and_counts_by_hand(tree, tmp_path):
    result = SIIMDataset().prepare(tree, "suite", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert set(rows) == {iid(k) for k in range(1, 13)}
    for image_id, (rle, boxes) in EXPECTED.items():
        r = rows[image_id]
        assert r["mask_rle"] == rle, image_id
        assert [(b["x1"], b["y1"], b["x2"], b["y2"]) for b in r["boxes"]] == boxes, image_id
        assert r["labels"] == [1.0 if boxes else 0.0]
    assert {b["shape"] for r in rows.values() for b in r["boxes"]} == {"mask_bbox"}
    assert all(r["mask_source"] == "rle" and r["image_path"] is None for r in rows.values())
    # round(0.15 * 12) = 2 test and 2 valid images
    assert [result.split_rows(s) for s in ("train", "valid", "test")] == [8, 2, 2]
    assert sum(result.counts[s]["labels"]["Pneumothorax"]["1"] for s in ("train", "valid", "test")) == 5
    assert result.warning_count("stripped_header") == 1
    assert result.warning_count("stripped_values") == len(RLE)
    assert result.warning_count("image_paths_unresolved") == 12
    assert read_sidecar(result.sidecar_path)["rle_mode"] == "relative"
    # seg_balanced: every positive train image plus as many negatives (there are more negatives)
    train = [r for r in rows.values() if r["split"] == "train"]
    balanced = [r for r in train if "seg_balanced" in r["subsets"]]
    n_pos = sum(r["labels"] == [1.0] for r in train)
    assert len(balanced) == 2 * n_pos and all(r in balanced for r in train if r["labels"] == [1.0])


def test_union_agrees_with_the_rle_module(tree):
    by_id = {}
    for image_id, value in RLE:
        by_id.setdefault(image_id, []).append(value)
    for image_id, (rle, _) in EXPECTED.items():
        assert siim_to_canonical(by_id[image_id]) == rle


def test_merge_runs_and_boxes_helpers_by_hand():
    s, e = merge_runs(np.array([5, 0, 3, 9]), np.array([7, 2, 5, 10]))  # [0,2) [3,5)+[5,7) touch; [9,10)
    assert (s.tolist(), e.tolist()) == ([0, 3, 9], [2, 7, 10])
    assert runs_to_rle(s, e, (4, 3)) == "4 3 0 2 1 4 2 1 2"
    # on a 4-row grid the pieces are: col 0 rows 0-1; col 0 row 3; col 1 rows 0-2; col 2 row 1.
    # Col 1 rows 0-2 overlap col 0 rows 0-1, touch col 0 row 3 diagonally (rows 2 / 3) and overlap
    # col 2 row 1, so everything is one 8-connected component spanning cols 0-2, rows 0-3
    assert runs_to_boxes(s, e, 4) == [(0, 0, 3, 4)]
    # without the diagonal link (4-connectivity would split it) the boxes differ: check a lone pixel
    s, e = merge_runs(np.array([0, 6]), np.array([1, 7]))  # col 0 row 0; col 1 row 2
    assert runs_to_boxes(s, e, 4) == [(0, 0, 1, 1), (1, 2, 2, 3)]


def test_malformed_rle_names_line_and_image(tmp_path):
    root = tmp_path / "siim"
    root.mkdir()
    write_table(root / "train-rle.csv", RLE[:3] + [(iid(4), "10 1 7")] + RLE[4:])
    with pytest.raises(PrepareError) as err:
        SIIMDataset().prepare(root, "suite", tmp_path / "out", check_images=False)
    message = str(err.value)
    assert message.startswith(f"train-rle.csv line 5 column 'EncodedPixels' (ImageId {iid(4)}): odd number of values")
    assert "\n" not in message


def test_rle_beyond_the_image_is_an_error(tmp_path):
    root = tmp_path / "siim"
    root.mkdir()
    write_table(root / "train-rle.csv", [(iid(1), "1048577 1")])  # past the end under every convention
    with pytest.raises(PrepareError, match=r"line 2 .*beyond the 1048576-pixel image"):
        SIIMDataset().prepare(root, "suite", tmp_path / "out", check_images=False)


def test_ambiguous_convention_is_refused_unless_named(tmp_path):
    root = tmp_path / "siim"
    root.mkdir()
    # "5 3 100 2": relative runs [5,8) [108,110); absolute runs [5,8) [100,102): both decode
    write_table(root / "stage_2_train.csv", [(iid(1), "5 3 100 2"), (iid(2), "-1")], header="ImageId,EncodedPixels", space="")
    with pytest.raises(PrepareError, match="cannot tell relative from absolute RLE"):
        SIIMDataset().prepare(root, "suite", tmp_path / "out", check_images=False)
    rows = rows_of(SIIMDataset(rle_mode="absolute0").prepare(root, "suite", tmp_path / "out", check_images=False))
    assert rows[iid(1)]["mask_rle"] == "1024 1024 5 3 92 2 1048474"


def test_mgca_compat_splits_rows_like_mgca(tree, tmp_path):
    pd = pytest.importorskip("pandas")
    model_selection = pytest.importorskip("sklearn.model_selection")
    df = pd.read_csv(tree / "train-rle.csv")
    train, rest = model_selection.train_test_split(df, test_size=0.3, random_state=0)
    test, valid = model_selection.train_test_split(rest, test_size=0.5, random_state=0)
    result = SIIMDataset().prepare(tree, "mgca_compat", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    for frame, split in ((train, "train"), (valid, "valid"), (test, "test")):
        assert {k.split("#")[0] for k, r in rows.items() if r["split"] == split} == set(frame["ImageId"])
    several = {i for i in df["ImageId"] if sum(i in set(f["ImageId"]) for f in (train, valid, test)) > 1}
    assert result.warning_count("compat_image_in_several_splits") == len(several)
    assert {k.split("#")[0] for k in rows if "#" in k} == several


def test_mgca_splits_images(tree, tmp_path):
    pd = pytest.importorskip("pandas")
    model_selection = pytest.importorskip("sklearn.model_selection")
    ids = pd.Series(pd.read_csv(tree / "train-rle.csv")["ImageId"].unique())
    train, rest = model_selection.train_test_split(ids, test_size=0.3, random_state=0)
    test, valid = model_selection.train_test_split(rest, test_size=0.5, random_state=0)
    rows = rows_of(SIIMDataset().prepare(tree, "mgca", tmp_path / "out", check_images=False))
    for frame, split in ((train, "train"), (valid, "valid"), (test, "test")):
        assert {k for k, r in rows.items() if r["split"] == split} == set(frame)
    assert rows[iid(4)]["mask_rle"] == EXPECTED[iid(4)][0]  # all regions, whatever the split


def test_images_found_in_the_tree_and_missing_one_counted(tree, tmp_path):
    for k in range(1, 13):
        if k != 9:
            study = f"1.2.276.0.7230010.3.1.2.8323329.{1000 + k}.1517875162.{400000 + k}"
            series = f"1.2.276.0.7230010.3.1.3.8323329.{1000 + k}.1517875162.{500000 + k}"
            write_dicom(tree / "dicom-images-train" / study / series / f"{iid(k)}.dcm")
    result = SIIMDataset().prepare(tree, "suite", tmp_path / "out", check_images=True)
    rows = rows_of(result)
    assert iid(9) not in rows and len(rows) == 11
    assert result.warning_count("missing_image") == 1
    r = rows[iid(2)]
    assert r["image_path"].startswith("dicom-images-train/1.2.276.0.7230010.3.1.2.8323329.1002.")
    assert (r["width"], r["height"], r["view"], r["sex"], r["age"]) == (1024, 1024, "PA", "M", 38)
    assert result.warning_count("mask_size_mismatch") == 0


def test_no_image_folder_with_image_checks_is_an_error(tree, tmp_path):
    with pytest.raises(PrepareError, match="no image folder"):
        SIIMDataset().prepare(tree, "suite", tmp_path / "out", check_images=True)


def test_rerun_is_byte_identical(tree, tmp_path):
    a = SIIMDataset().prepare(tree, "mgca_compat", tmp_path / "a", check_images=False)
    b = SIIMDataset().prepare(tree, "mgca_compat", tmp_path / "b", check_images=False)
    assert a.manifest_path.read_bytes() == b.manifest_path.read_bytes()
    assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()


# --------------------------------------------------------------------------------------------
# The real RLE table bundled with torchxrayvision (labels only; no images)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    txv = pytest.importorskip("torchxrayvision")
    source = Path(txv.__file__).parent / "data" / "siim-pneumothorax-train-rle.csv.gz"
    if not source.is_file():
        pytest.skip(f"{source} not shipped by this torchxrayvision")
    root = tmp_path_factory.mktemp("siim_real")
    shutil.copyfile(source, root / "train-rle.csv.gz")
    result = SIIMDataset().prepare(root, "suite", root / "out", check_images=False)
    return root, result


def test_real_siim_counts(real):
    _, result = real
    # 12,047 images = stage-1 train 10,675 + stage-1 test 1,372 (datasets.md section 1.4; BenchX's
    # 12,047-image copy); torchxrayvision documents 12,954 rows for this file
    # (SIIM_Pneumothorax_Dataset num_samples=12954)
    assert result.rows == 12_047
    assert read_sidecar(result.sidecar_path)["native_version"].startswith("SIIM-ACR stage 1 train + test")
    # 2,669 images with a mask: counted independently (csv module: ImageIds with a value other than
    # -1), the figure usually reported for this 12,047-image set
    assert sum(result.counts[s]["labels"]["Pneumothorax"]["1"] for s in ("train", "valid", "test")) == 2669
    assert sum(result.counts[s]["rows_with_mask"] for s in ("train", "valid", "test")) == 2669
    assert result.warning_count("stripped_header") == 1  # " EncodedPixels"


def test_every_real_rle_decodes_in_range(real):
    import csv
    import gzip

    root, result = real
    with gzip.open(root / "train-rle.csv.gz", "rt", newline="") as fh:
        values = [row[1].strip() for row in list(csv.reader(fh))[1:]]
    assert len(values) == 12_954
    positive = [v for v in values if v != "-1"]
    assert all("relative" in plausible_siim_modes(v) for v in positive)  # the rle module, not the plugin
    # the multi-region images: the plugin's union equals the rle module's decoder
    rows = {r["sample_id"]: r for r in iter_manifest(result.manifest_path, ["sample_id", "mask_rle", "boxes", "source_row"])}
    import json

    multi = [r for r in rows.values() if len(json.loads(r["source_row"])) > 1 and r["mask_rle"] != "1024 1024 1048576"]
    assert len(multi) > 100
    for r in multi[:120]:
        regions = [rec["EncodedPixels"] for rec in json.loads(r["source_row"])]
        assert r["mask_rle"] == siim_to_canonical(regions)


def test_real_boxes_are_the_8_connected_components(real):
    ndimage = pytest.importorskip("scipy.ndimage")
    _, result = real
    checked = 0
    for r in iter_manifest(result.manifest_path, ["mask_rle", "boxes"]):
        if not r["boxes"]:
            continue
        labels, n = ndimage.label(rle_to_mask(r["mask_rle"]), structure=np.ones((3, 3)))
        expected = sorted(
            (s[1].start, s[0].start, s[1].stop, s[0].stop) for s in ndimage.find_objects(labels)
        )
        assert [(b["x1"], b["y1"], b["x2"], b["y2"]) for b in r["boxes"]] == expected
        checked += 1
        if checked == 40:
            break
    assert checked == 40
