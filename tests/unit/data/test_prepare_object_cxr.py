"""``prepare`` for Object-CXR on hand-made annotation tables."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError, PrepareWarnings  # noqa: E402
from place_bench.plugins.datasets.object_cxr import ObjectCXRDataset, parse_annotation  # noqa: E402

TRAIN = [
    ("00001.jpg", "0 10 20 30 40"),
    ("00002.jpg", ""),
    ("00003.jpg", "1 5 6 15 26;2 1 1 9 1 9 7 1 7;0 3 4 8 9"),  # all three types
    ("00004.jpg", "0 30 40 10 20;"),  # corners swapped, trailing ';'
    ("00005.jpg", ""),
    ("00006.jpg", ""),
    ("00007.jpg", "2 0 0 12 0 6 10"),
    ("00008.jpg", ""),
    ("00009.jpg", "1 2 2 4 4"),
    ("00010.jpg", ""),
]
DEV = [("08001.jpg", "0 1 1 2 2"), ("08002.jpg", "")]
TEST = [("test/09001.jpg", ""), ("test/09002.jpg", "1 0 0 3 3")]


def write_csv(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def make_tree(root: Path, train=TRAIN, header=("image_name", "annotation")) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "train.csv", header, train)
    write_csv(root / "dev.csv", ("image_name", "annotation"), DEV)
    write_csv(root / "test.csv", ("image_path", "annotation"), TEST)
    return root


def write_jpeg(path: Path, w: int, h: int) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h), 90).save(path, format="JPEG")


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


def xyxy(row):
    return [(b["x1"], b["y1"], b["x2"], b["y2"], b["shape"]) for b in row["boxes"]]


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "object_cxr")


def test_parse_annotation_by_hand():
    warnings = PrepareWarnings()
    boxes, polygons = parse_annotation("1 5 6 15 26;2 1 1 9 1 9 7 1 7;0 3 4 8 9", "here", warnings)
    assert [(b["x1"], b["y1"], b["x2"], b["y2"], b["shape"]) for b in boxes] == [
        (5, 6, 15, 26, "ellipse"), (1, 1, 9, 7, "polygon_bbox"), (3, 4, 8, 9, "rect"),
    ]
    assert polygons == [{"label": "Foreign Object", "points": [1, 1, 9, 1, 9, 7, 1, 7]}]
    assert parse_annotation("", "here") == ([], [])
    boxes, _ = parse_annotation("0 30 40 10 20;", "here", warnings)
    assert (boxes[0]["x1"], boxes[0]["y1"], boxes[0]["x2"], boxes[0]["y2"]) == (10, 20, 30, 40)
    assert warnings.count("box_corners_swapped") == 1 and warnings.count("empty_object") == 1


def test_mgca_rows_by_hand(tree, tmp_path):
    result = ObjectCXRDataset().prepare(tree, "mgca", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    # valid = ceil(0.1 * 10) = 1 row: RandomState(0).permutation(10)[0] = 2 -> 00003.jpg
    assert {k for k, r in rows.items() if r["split"] == "valid"} == {"00003.jpg"}
    assert {k for k, r in rows.items() if r["split"] == "test"} == {"08001.jpg", "08002.jpg"}
    assert result.split_rows("train") == 9
    assert xyxy(rows["00001.jpg"]) == [(10, 20, 30, 40, "rect")]
    assert xyxy(rows["00004.jpg"]) == [(10, 20, 30, 40, "rect")]
    assert xyxy(rows["00007.jpg"]) == [(0, 0, 12, 10, "polygon_bbox")]
    assert rows["00007.jpg"]["polygons"][0]["points"] == [0, 0, 12, 0, 6, 10]
    assert xyxy(rows["00003.jpg"])[0] == (5, 6, 15, 26, "ellipse") and len(rows["00003.jpg"]["polygons"]) == 1
    assert rows["00002.jpg"]["boxes"] == [] and rows["00002.jpg"]["labels"] == [0.0]
    r = rows["00009.jpg"]
    assert (r["image_path"], r["labels"], r["mask_source"], r["view"]) == ("train/00009.jpg", [1.0], "shapes", "FRONTAL")
    assert rows["08001.jpg"]["image_path"] == "dev/08001.jpg"
    positives = sum(result.counts[s]["labels"]["Foreign Object"]["1"] for s in ("train", "valid", "test"))
    assert positives == 6 and sum(result.counts[s]["boxes"] for s in ("train", "valid", "test")) == 8
    assert result.warning_count("box_corners_swapped") == 1 and result.warning_count("empty_object") == 1
    assert sorted(r["frac_rank"] for r in rows.values() if r["split"] == "train") == list(range(9))
    assert read_sidecar(result.sidecar_path)["frac_base"] == 9


def test_benchx_reads_the_test_table(tree, tmp_path):
    result = ObjectCXRDataset().prepare(tree, "benchx", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert [result.split_rows(s) for s in ("train", "valid", "test")] == [10, 2, 2]
    assert rows["09002.jpg"]["image_path"] == "test/09002.jpg" and rows["09002.jpg"]["split"] == "test"
    assert rows["08001.jpg"]["split"] == "valid"
    # stratified by has_object: ranks 0 and 1 hold one positive and one negative image
    first = sorted(r["labels"][0] for r in rows.values() if r["split"] == "train" and r["frac_rank"] < 2)
    assert first == [0.0, 1.0]


def test_suite_split(tree, tmp_path):
    result = ObjectCXRDataset().prepare(tree, "suite", tmp_path / "out", check_images=False)
    # round(0.1 * 10) = 1 name; sorted names permuted with RandomState(0): [2, ...] -> 00003.jpg
    assert {k for k, r in rows_of(result).items() if r["split"] == "valid"} == {"00003.jpg"}
    assert result.split_rows("test") == 2


@pytest.mark.parametrize(
    "annotation, message",
    [
        ("0 10 20 30", r"object 1: type 0 needs 4 coordinates \(x1 y1 x2 y2\), got 3 in '0 10 20 30'"),
        ("0 10 2x 30 40", r"object 1: '2x' is not a number"),
        ("3 1 2 3 4", r"object 1: unknown shape type '3' \(expected 0, 1 or 2\)"),
        ("0 1 2 3 4;2 1 1 5 5 9", r"object 2: a polygon needs an even number \(>= 6\) of coordinates, got 5"),
    ],
)
def test_malformed_annotation_names_file_line_and_token(tmp_path, annotation, message):
    train = list(TRAIN)
    train[4] = ("00005.jpg", annotation)  # line 6 of the file
    root = make_tree(tmp_path / "object_cxr", train=train)
    with pytest.raises(PrepareError, match=r"^train\.csv line 6 column 'annotation' \(image 00005\.jpg\): " + message):
        ObjectCXRDataset().prepare(root, "mgca", tmp_path / "out", check_images=False)


def test_missing_column_is_one_line_error(tmp_path):
    root = make_tree(tmp_path / "object_cxr", train=[(name,) for name, _ in TRAIN], header=("image_name",))
    with pytest.raises(PrepareError) as err:
        ObjectCXRDataset().prepare(root, "mgca", tmp_path / "out", check_images=False)
    assert str(err.value).startswith("train.csv: missing column 'annotation'")
    assert "\n" not in str(err.value)


def test_image_path_column_accepted(tmp_path):
    root = make_tree(tmp_path / "object_cxr", header=("image_path", "annotation"))
    result = ObjectCXRDataset().prepare(root, "suite", tmp_path / "out", check_images=False)
    assert result.rows == 12 and rows_of(result)["00001.jpg"]["image_path"] == "train/00001.jpg"


def test_images_checked_and_missing_one_counted(tree, tmp_path):
    for name, _ in TRAIN:
        if name != "00006.jpg":
            w, h = (3, 3) if name == "00009.jpg" else (40, 50)
            write_jpeg(tree / "train" / name, w, h)
    for name, _ in DEV:
        write_jpeg(tree / "dev" / name, 20, 10)
    result = ObjectCXRDataset().prepare(tree, "mgca", tmp_path / "out", check_images=True)
    rows = rows_of(result)
    assert "00006.jpg" not in rows and result.rows == 11
    assert result.warning_count("missing_image") == 1
    assert (rows["00001.jpg"]["width"], rows["00001.jpg"]["height"]) == (40, 50)
    assert result.warning_count("box_outside_image") == 1  # 00009.jpg: box to (4, 4) on a 3 x 3 image


def test_rerun_is_byte_identical(tree, tmp_path):
    a = ObjectCXRDataset().prepare(tree, "mgca", tmp_path / "a", check_images=False)
    b = ObjectCXRDataset().prepare(tree, "mgca", tmp_path / "b", check_images=False, force=True)
    assert a.manifest_path.read_bytes() == b.manifest_path.read_bytes()
    assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()
    assert ObjectCXRDataset().prepare(tree, "mgca", tmp_path / "a", check_images=False).reused


def test_emulated_object_cxr_prepares(tmp_path):
    emulator = pytest.importorskip("place_bench.plugins.datasets.synthetic.emulators.object_cxr")
    emulated = emulator.emulate(tmp_path / "object_cxr", "tiny", 0)
    expected = emulated.expected
    result = ObjectCXRDataset().prepare(emulated.root, "benchx", tmp_path / "out", check_images=True)
    splits = {"train": "train", "valid": "dev", "test": "test"}
    assert {s: result.split_rows(s) for s in splits} == {s: expected["rows"][n] for s, n in splits.items()}
    assert {s: result.counts[s]["labels"]["Foreign Object"]["1"] for s in splits} == {
        s: expected["positives"][n] for s, n in splits.items()}
    assert {s: result.counts[s]["boxes"] for s in splits} == {s: expected["objects"][n] for s, n in splits.items()}
    assert {w["code"] for w in result.warnings} <= {"unexpected_row_count"} | set(expected["warnings"])
    shapes = {b["shape"] for r in iter_manifest(result.manifest_path) for b in r["boxes"]}
    assert shapes == {"rect", "ellipse", "polygon_bbox"}
