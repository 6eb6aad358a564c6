"""``prepare`` for COVIDx on hand-made header-less label files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.plugins.datasets.covidx import COVIDxDataset  # noqa: E402

TRAIN_9A = [
    "p1 a1.png COVID-19 cohen",
    "p1 a2.png COVID-19 cohen",
    "p2 b1.jpg normal rsna",
    "p3 c1.jpeg pneumonia rsna",
    "p4 SIRM(1).png COVID-19 sirm",
    "p5 d1.png normal rsna",
    "",  # blank line: skipped
    "p6 e1.png pneumonia rsna",
    "p7 f 1.png normal bimcv",  # a space in the file name
    "p8 g1.png normal",  # three fields (early releases)
    "p9 h1.png Normal ricord",  # class matched case-insensitively
]
TEST_9A = [
    "p10 t1.png COVID-19 cohen",
    "p11 t2.png normal rsna",
    "p9 t3.png pneumonia ricord",  # p9 is also in the train file
]
TRAIN_CXR4 = ["q1 x1.png positive bimcv", "q1 x2.png positive bimcv", "q2 x3.png negative rsna",
              "q3 x4.png negative rsna", "q4 x5.png positive ricord"]
VAL_CXR4 = ["q5 v1.png negative rsna", "q1 v2.png positive bimcv"]  # q1 also in train
TEST_CXR4 = ["q6 z1.png positive ricord", "q7 z2.png negative rsna"]


def fname(line: str) -> str:
    fields = line.split()
    three = fields[-1].lower() in ("normal", "pneumonia", "covid-19", "positive", "negative")
    return " ".join(fields[1:-1] if three else fields[1:-2])


def write_lines(path: Path, lines) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))


def make_tree(root: Path, nine_a: bool = True, cxr4: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    if nine_a:
        write_lines(root / "train_COVIDx9A.txt", TRAIN_9A)
        write_lines(root / "test_COVIDx9A.txt", TEST_9A)
    if cxr4:
        write_lines(root / "train.txt", TRAIN_CXR4)
        write_lines(root / "val.txt", VAL_CXR4)
        write_lines(root / "test.txt", TEST_CXR4)
    return root


def write_png(path: Path, w: int = 5, h: int = 7) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (w, h), 50).save(path, format="PNG")


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


def split_sets(rows):
    out = {"train": set(), "valid": set(), "test": set()}
    for k, r in rows.items():
        out[r["split"]].add(k)
    return out


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "covidx")


def test_mgca_rows_by_hand(tree, tmp_path):
    result = COVIDxDataset().prepare(tree, "mgca", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    # 10 train-file rows: valid = 10 - floor(0.8 * 10) = 2 rows, the first two of
    # RandomState(0).permutation(10) = [2, 8, ...] -> b1.jpg, g1.png
    assert split_sets(rows) == {
        "train": {"a1.png", "a2.png", "c1.jpeg", "SIRM(1).png", "d1.png", "e1.png", "f 1.png", "h1.png"},
        "valid": {"b1.jpg", "g1.png"},
        "test": {"t1.png", "t2.png", "t3.png"},
    }
    r = rows["f 1.png"]
    assert (r["image_path"], r["subject_id"], r["class_name"], r["class_index"]) == ("train/f 1.png", "p7", "normal", 0)
    assert r["labels"] == [1.0, 0.0, 0.0] and r["image_format"] == "png"
    assert rows["c1.jpeg"]["image_format"] == "jpg" and rows["c1.jpeg"]["class_index"] == 1
    assert rows["SIRM(1).png"]["class_index"] == 2 and rows["h1.png"]["class_name"] == "normal"
    assert rows["t3.png"]["image_path"] == "test/t3.png"
    assert json.loads(rows["g1.png"]["source_row"]) == {"file": "train_COVIDx9A.txt", "line": 10, "text": "p8 g1.png normal"}
    side = read_sidecar(result.sidecar_path)
    assert side["class_names"] == ["normal", "pneumonia", "COVID-19"]
    assert side["label_files"] == {"train": "train_COVIDx9A.txt", "test": "test_COVIDx9A.txt"}
    assert result.counts["test"]["classes"] == {"COVID-19": 1, "normal": 1, "pneumonia": 1}
    assert result.warning_count("unexpected_row_count") == 1


def test_mgca_membership_equals_sklearn(tree, tmp_path):
    model_selection = pytest.importorskip("sklearn.model_selection")
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"filename": [fname(line) for line in TRAIN_9A if line]})
    train, valid = model_selection.train_test_split(df, train_size=0.8, random_state=0)
    rows = rows_of(COVIDxDataset().prepare(tree, "mgca", tmp_path / "out", check_images=False))
    assert {k for k, r in rows.items() if r["split"] == "valid"} == set(valid["filename"])
    picked = set(train.sample(frac=0.25, random_state=42)["filename"])  # round(0.25 * 8) = 2 rows
    assert picked == {k for k, r in rows.items() if r["split"] == "train" and r["frac_rank"] < 2}


def test_suite_is_patient_disjoint(tree, tmp_path):
    result = COVIDxDataset().prepare(tree, "suite", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    # p9 (in test) leaves train; of the 9 remaining rows, whole patients are drawn until >= 2 rows:
    # sorted patients p1..p8, RandomState(0).permutation(8) = [6, 2, ...] -> p7, p3
    assert split_sets(rows) == {
        "train": {"a1.png", "a2.png", "b1.jpg", "SIRM(1).png", "d1.png", "e1.png", "g1.png"},
        "valid": {"f 1.png", "c1.jpeg"},
        "test": {"t1.png", "t2.png", "t3.png"},
    }
    assert result.warning_count("patient_in_two_splits") == 1
    assert sorted(r["frac_rank"] for r in rows.values() if r["split"] == "train") == list(range(7))
    # stratified by class: the first three ranks cover the three classes present in train
    first = {r["class_name"] for r in rows.values() if r["split"] == "train" and r["frac_rank"] < 3}
    assert first == {"normal", "pneumonia", "COVID-19"}


def test_benchx_and_binary_suite_use_the_cxr4_files(tmp_path):
    root = make_tree(tmp_path / "covidx")
    result = COVIDxDataset().prepare(root, "benchx", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert [result.split_rows(s) for s in ("train", "valid", "test")] == [5, 2, 2]  # nothing dropped
    assert rows["x1.png"]["labels"] == [0.0, 1.0] and rows["x3.png"]["class_name"] == "negative"
    assert rows["v1.png"]["image_path"] == "val/v1.png"
    assert read_sidecar(result.sidecar_path)["class_names"] == ["negative", "positive"]
    only = make_tree(tmp_path / "cxr4", nine_a=False)
    suite = COVIDxDataset().prepare(only, "suite", tmp_path / "out", check_images=False)
    # q1 is in val: its two train rows leave train
    assert split_sets(rows_of(suite))["train"] == {"x3.png", "x4.png", "x5.png"}
    assert suite.warning_count("patient_in_two_splits") == 2
    with pytest.raises(PrepareError, match=r"^train\.txt: protocol mgca needs the 3-way classes"):
        COVIDxDataset().prepare(only, "mgca", tmp_path / "out", check_images=False)


@pytest.mark.parametrize(
    "line, message",
    [
        ("p3 c1.jpeg", r"^train_COVIDx9A\.txt line 4: expected 'patient_id filename class \[data_source\]'"),
        ("p3 c1.jpeg influenza rsna", r"^train_COVIDx9A\.txt line 4: unknown class 'influenza'"),
        ("p3 a1.png pneumonia rsna", r"^train_COVIDx9A\.txt line 4: file name 'a1\.png' also listed in "
                                     r"train_COVIDx9A\.txt line 1$"),
        ("p3 c1.jpeg positive rsna", r"^train_COVIDx9A\.txt line 4: class 'positive' is binary"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line, message):
    root = make_tree(tmp_path / "covidx", cxr4=False)
    lines = list(TRAIN_9A)
    lines[3] = line
    write_lines(root / "train_COVIDx9A.txt", lines)
    with pytest.raises(PrepareError, match=message) as err:
        COVIDxDataset().prepare(root, "mgca", tmp_path / "out", check_images=False)
    assert "\n" not in str(err.value)


def test_missing_label_files(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(PrepareError, match="COVIDx label files not found"):
        COVIDxDataset().prepare(root, "benchx", tmp_path / "out", check_images=False)


def test_images_checked_and_missing_one_counted(tree, tmp_path):
    for line in TRAIN_9A + TEST_9A:
        if line and "e1.png" not in line:
            write_png(tree / ("test" if line in TEST_9A else "train") / fname(line))
    result = COVIDxDataset().prepare(tree, "mgca", tmp_path / "out", check_images=True)
    rows = rows_of(result)
    assert "e1.png" not in rows and result.rows == 12
    assert result.warning_count("missing_image") == 1
    assert (rows["f 1.png"]["width"], rows["f 1.png"]["height"]) == (5, 7)
    assert result.warning_count("image_format_mismatch") == 2  # b1.jpg and c1.jpeg hold PNG bytes


def test_rerun_is_byte_identical(tree, tmp_path):
    a = COVIDxDataset().prepare(tree, "suite", tmp_path / "a", check_images=False)
    b = COVIDxDataset().prepare(tree, "suite", tmp_path / "b", check_images=False, force=True)
    assert a.manifest_path.read_bytes() == b.manifest_path.read_bytes()
    assert a.sidecar_path.read_bytes() == b.sidecar_path.read_bytes()
    assert COVIDxDataset().prepare(tree, "suite", tmp_path / "a", check_images=False).reused


def test_emulated_covidx_prepares(tmp_path):
    emulator = pytest.importorskip("place_bench.plugins.datasets.synthetic.emulators.covidx")
    emulated = emulator.emulate(tmp_path / "covidx", "tiny", 0)
    expected = emulated.expected
    mgca = COVIDxDataset().prepare(emulated.root, "mgca", tmp_path / "out", check_images=True)
    nine_a = expected["9A"]
    assert mgca.split_rows("train") + mgca.split_rows("valid") == nine_a["train_rows"]
    assert mgca.split_rows("test") == nine_a["test_rows"]
    assert mgca.counts["test"]["classes"] == nine_a["classes"]["test"]
    benchx = COVIDxDataset().prepare(emulated.root, "benchx", tmp_path / "out", check_images=True)
    cxr4 = expected["CXR-4"]
    assert [benchx.split_rows(s) for s in ("train", "valid", "test")] == [cxr4["rows"][s] for s in ("train", "val", "test")]
    assert [benchx.counts[s]["subjects"] for s in ("train", "valid", "test")] == [
        cxr4["patients"][s] for s in ("train", "val", "test")]
    assert benchx.counts["test"]["classes"].get("positive", 0) == cxr4["positives"]["test"]
    suite = COVIDxDataset().prepare(emulated.root, "suite", tmp_path / "out", check_images=True)
    for result in (mgca, benchx, suite):
        # the emulator expects no warnings; tiny label files match no published release
        assert {w["code"] for w in result.warnings} <= {"unexpected_row_count"} | set(expected["warnings"])
