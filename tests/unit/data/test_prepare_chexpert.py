"""``prepare`` for CheXpert and CheXpert 5xN on a hand-made native tree and on the real train.csv."""

from __future__ import annotations

import csv
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("datasets")

from place_bench.data.manifest import iter_manifest, read_sidecar  # noqa: E402
from place_bench.data.prepare import PrepareError  # noqa: E402
from place_bench.plugins.datasets.chexpert import (  # noqa: E402
    CHEXPERT_LABELS,
    CheXpert5x200Dataset,
    CheXpertDataset,
)

HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", *CHEXPERT_LABELS]
T = "CheXpert-v1.0-small/train/"
V = "CheXpert-v1.0-small/valid/"

# (path, sex, age, frontal/lateral, AP/PA, {label: value}); blanks elsewhere
TRAIN = [
    (T + "patient00001/study1/view1_frontal.jpg", "Female", 68, "Frontal", "AP", {"Atelectasis": "1.0"}),  # 5x: Atelectasis
    (T + "patient00001/study1/view2_lateral.jpg", "Female", 68, "Lateral", "", {"Atelectasis": "1.0"}),
    (T + "patient00002/study1/view1_frontal.jpg", "Male", 50, "Frontal", "PA", {"Cardiomegaly": "1.0"}),  # 5x
    (T + "patient00003/study1/view1_frontal.jpg", "Male", 40, "Frontal", "AP", {"Consolidation": "1.0"}),  # 5x
    (T + "patient00004/study1/view1_frontal.jpg", "Female", 30, "Frontal", "AP", {"Edema": "1.0", "No Finding": "0.0"}),  # 5x
    (T + "patient00005/study1/view1_frontal.jpg", "Female", 20, "Frontal", "PA", {"Pleural Effusion": "1.0"}),  # 5x
    (T + "patient00005/study2/view1_frontal.jpg", "Female", 21, "Frontal", "AP",
     {"Pleural Effusion": "1.0", "Support Devices": "1.0"}),  # not 5x: a device
    (T + "patient00006/study1/view1_frontal.jpg", "Male", 60, "Frontal", "AP", {"Atelectasis": "-1.0"}),  # uncertain
    (T + "patient00006/study1/view2_lateral.jpg", "Male", 60, "Lateral", "", {}),
    (T + "patient00007/study1/view1_frontal.jpg", "Male", 70, "Frontal", "LL", {"No Finding": "1.0"}),  # odd AP/PA
    (T + "patient00008/study1/view1_frontal.jpg", "Female", 80, "Frontal", "AP", {"Edema": "1.0", "Cardiomegaly": "1.0"}),
    (T + "patient00009/study1/view1_frontal.jpg", "Male", 55, "Frontal", "PA", {"Atelectasis": "1.0", "Lung Opacity": "1.0"}),
    (T + "patient00010/study1/view1_frontal.jpg", "Male", 45, "Frontal", "AP", {"Pneumonia": "1.0", "Consolidation": "0.0"}),
    (T + "patient00010/study1/view2_lateral.jpg", "Male", 45, "Lateral", "", {}),
]
ALL_ZERO = {name: "0.0" for name in CHEXPERT_LABELS}
VALID = [
    (V + "patient64541/study1/view1_frontal.jpg", "Male", 73, "Frontal", "AP", {**ALL_ZERO, "Cardiomegaly": "1.0", "Edema": "1.0"}),
    (V + "patient64541/study1/view2_lateral.jpg", "Male", 73, "Lateral", "", ALL_ZERO),
    (V + "patient64542/study1/view1_frontal.jpg", "Female", 65, "Frontal", "PA", {**ALL_ZERO, "No Finding": "1.0"}),
]
FIVE = {  # the only qualifying image of each class, so the 5x1 draw is forced
    "train/patient00001/study1/view1_frontal.jpg": "Atelectasis",
    "train/patient00002/study1/view1_frontal.jpg": "Cardiomegaly",
    "train/patient00003/study1/view1_frontal.jpg": "Consolidation",
    "train/patient00004/study1/view1_frontal.jpg": "Edema",
    "train/patient00005/study1/view1_frontal.jpg": "Pleural Effusion",
}
# frontal train.csv rows outside the 5x1 set: these make up train + valid of every protocol
FRONTAL_REST = {
    "train/patient00005/study2/view1_frontal.jpg",
    "train/patient00006/study1/view1_frontal.jpg",
    "train/patient00007/study1/view1_frontal.jpg",
    "train/patient00008/study1/view1_frontal.jpg",
    "train/patient00009/study1/view1_frontal.jpg",
    "train/patient00010/study1/view1_frontal.jpg",
}
TEST = {"valid/patient64541/study1/view1_frontal.jpg", "valid/patient64542/study1/view1_frontal.jpg"}


def write_csv(path: Path, rows, header=HEADER, drop: str | None = None):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([h for h in header if h != drop])
        for p, sex, age, fl, appa, labels in rows:
            record = {"Path": p, "Sex": sex, "Age": str(age), "Frontal/Lateral": fl, "AP/PA": appa, **labels}
            w.writerow([record.get(h, "") for h in header if h != drop])


def make_tree(root: Path, images: bool = False, skip_image: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    write_csv(root / "train.csv", TRAIN)
    write_csv(root / "valid.csv", VALID)
    if images:
        from PIL import Image

        for p, *_ in TRAIN + VALID:
            rel = p.split("/", 1)[1]
            if rel == skip_image:
                continue
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((6, 8), 128, dtype=np.uint8)).save(root / rel, format="JPEG")
    return root


def rows_of(result):
    return {r["sample_id"]: r for r in iter_manifest(result.manifest_path)}


@pytest.fixture
def tree(tmp_path):
    return make_tree(tmp_path / "CheXpert-v1.0-small")


def test_mgca_counts_by_hand(tree, tmp_path):
    result = CheXpertDataset(n_valid=2, n_per_class=1).prepare(tree, "mgca", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    train = {k for k, r in rows.items() if r["split"] == "train"}
    valid = {k for k, r in rows.items() if r["split"] == "valid"}
    test = {k for k, r in rows.items() if r["split"] == "test"}
    assert train | valid == FRONTAL_REST and not train & valid  # no laterals, no 5x1 images
    assert len(valid) <= 2
    assert test == TEST
    assert result.rows == 8 and result.counts["test"]["rows"] == 2
    # test labels by hand: Cardiomegaly positive once, negative once
    assert result.counts["test"]["labels"]["Cardiomegaly"] == {"1": 1, "0": 1, "-1": 0, "nan": 0}
    r = rows["train/patient00007/study1/view1_frontal.jpg"]
    assert r["view"] == "FRONTAL" and r["subject_id"] == "patient00007" and r["study_id"] == "patient00007/study1"
    assert r["image_path"] == "train/patient00007/study1/view1_frontal.jpg" and r["image_format"] == "jpg"
    assert r["sex"] == "Male" and r["age"] == 70
    lab = dict(zip(CHEXPERT_LABELS, r["labels"]))
    assert lab["No Finding"] == 1.0 and math.isnan(lab["Edema"])
    assert rows["train/patient00006/study1/view1_frontal.jpg"]["labels"][CHEXPERT_LABELS.index("Atelectasis")] == -1.0
    assert result.warning_count("view_ambiguous") == 1
    # frac_rank: a permutation of 0..n_train-1 on train rows only
    assert sorted(rows[k]["frac_rank"] for k in train) == list(range(len(train)))
    assert all(rows[k]["frac_rank"] is None for k in valid | test)
    sidecar = read_sidecar(result.sidecar_path)
    assert sidecar["frac_base"] == len(train) and sidecar["label_names"] == list(CHEXPERT_LABELS)
    assert sidecar["native_counts"]["train.csv"] == {"rows": 14, "frontal": 11, "subjects": 10}


def test_suite_is_patient_disjoint(tree, tmp_path):
    result = CheXpertDataset(n_valid=2, n_per_class=1).prepare(tree, "suite", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    by_split = {s: {k for k, r in rows.items() if r["split"] == s} for s in ("train", "valid", "test")}
    assert by_split["train"] | by_split["valid"] == FRONTAL_REST
    # every remaining patient has one frontal image, so whole patients are drawn until 2 images
    assert len(by_split["valid"]) == 2 and len(by_split["train"]) == 4
    assert by_split["test"] == TEST
    assert result.counts["valid"]["subjects"] == 2
    assert read_sidecar(result.sidecar_path)["subject_overlap"] == {}


def test_suite_refuses_a_validation_holdout_that_leaves_no_training_image(tree, tmp_path):
    with pytest.raises(PrepareError, match="n_valid=50 for validation leaves none to train on"):
        CheXpertDataset(n_valid=50, n_per_class=1).prepare(tree, "suite", tmp_path / "out", check_images=False)


def test_mgca_compat_reproduces_mgca_membership(tree, tmp_path):
    pd = pytest.importorskip("pandas")
    result = CheXpertDataset(n_valid=3, n_per_class=1).prepare(tree, "mgca_compat", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    # MGCA's preprocessing, restated literally with pandas / numpy
    df = pd.read_csv(tree / "train.csv")
    df = df[~df["Path"].str.split("/", n=1).str[1].isin(FIVE)]
    state = np.random.get_state()
    np.random.seed(0)
    valid_ids = np.random.choice(len(df), size=3, replace=False)
    np.random.set_state(state)
    valid_df = df.iloc[valid_ids]
    train_df = df.drop(valid_ids, errors="ignore")
    strip = lambda frame: {p.split("/", 1)[1] for p in frame[frame["Frontal/Lateral"] == "Frontal"]["Path"]}  # noqa: E731
    train = {k for k, r in rows.items() if r["split"] == "train"}
    valid = {k for k, r in rows.items() if r["split"] == "valid" or "valid" in r["subsets"]}
    assert train == strip(train_df)
    assert valid == strip(valid_df)
    assert result.warning_count("compat_split_overlap") == len(train & valid)
    # MGCA's fractions: pandas sample(frac, random_state=42) of the frontal train rows in CSV order
    frontal_train = train_df[train_df["Frontal/Lateral"] == "Frontal"]
    for p in (0.2, 0.5):
        picked = strip(frontal_train.sample(frac=p, random_state=42))
        n = round(p * len(frontal_train))
        assert picked == {k for k in train if rows[k]["frac_rank"] < n}


def test_five_by_n(tree, tmp_path):
    result = CheXpert5x200Dataset(n_per_class=1).prepare(tree, "mgca", tmp_path / "out", check_images=False)
    rows = rows_of(result)
    assert {k: r["class_name"] for k, r in rows.items()} == FIVE
    assert all(r["split"] == "test" for r in rows.values())
    edema = rows["train/patient00004/study1/view1_frontal.jpg"]
    assert edema["class_index"] == 3
    assert [v if not math.isnan(v) else None for v in edema["labels"]] == [None, None, None, 1.0, None]
    with pytest.raises(PrepareError, match="only 1 frontal images qualify for the 5x2 class 'Atelectasis'"):
        CheXpert5x200Dataset(n_per_class=2).prepare(tree, "mgca", tmp_path / "out2", check_images=False)


def test_rerun_is_byte_identical_and_reused(tree, tmp_path):
    ds = CheXpertDataset(n_valid=2, n_per_class=1)
    first = ds.prepare(tree, "mgca", tmp_path / "a", check_images=False)
    second = ds.prepare(tree, "mgca", tmp_path / "b", check_images=False)
    assert first.manifest_path.read_bytes() == second.manifest_path.read_bytes()
    assert first.sidecar_path.read_bytes() == second.sidecar_path.read_bytes()
    stat = os.stat(first.manifest_path)
    again = ds.prepare(tree, "mgca", tmp_path / "a", check_images=False)
    assert again.reused and again.fingerprint == first.fingerprint
    assert os.stat(first.manifest_path).st_mtime_ns == stat.st_mtime_ns
    forced = ds.prepare(tree, "mgca", tmp_path / "a", check_images=False, force=True)
    assert not forced.reused and first.manifest_path.read_bytes() == second.manifest_path.read_bytes()
    # a changed option is a different input: not reused
    assert not CheXpertDataset(n_valid=3, n_per_class=1).prepare(tree, "mgca", tmp_path / "a", check_images=False).reused


def test_missing_column_is_one_line_error(tree, tmp_path):
    write_csv(tree / "train.csv", TRAIN, drop="Frontal/Lateral")
    with pytest.raises(PrepareError) as err:
        CheXpertDataset(n_valid=2, n_per_class=1).prepare(tree, "mgca", tmp_path / "out", check_images=False)
    message = str(err.value)
    assert message.startswith("train.csv: missing column 'Frontal/Lateral'") and "\n" not in message
    assert not (tmp_path / "out" / "chexpert" / "mgca.parquet").exists()


def test_bad_label_value_names_line_and_column(tree, tmp_path):
    bad = list(TRAIN)
    bad[4] = bad[4][:5] + ({"Edema": "2.0"},)
    write_csv(tree / "train.csv", bad)
    with pytest.raises(PrepareError, match=r"^train\.csv line 6 column 'Edema': unexpected value '2\.0'"):
        CheXpertDataset(n_valid=2, n_per_class=1).prepare(tree, "mgca", tmp_path / "out", check_images=False)


def test_missing_image_is_counted_and_left_out(tmp_path):
    root = make_tree(tmp_path / "cx", images=True, skip_image="train/patient00009/study1/view1_frontal.jpg")
    result = CheXpertDataset(n_valid=2, n_per_class=1).prepare(root, "mgca", tmp_path / "out", check_images=True)
    assert result.warning_count("missing_image") == 1
    warning = next(w for w in result.warnings if w["code"] == "missing_image")
    assert warning["examples"] == ["train/patient00009/study1/view1_frontal.jpg"]
    rows = rows_of(result)
    assert "train/patient00009/study1/view1_frontal.jpg" not in rows and len(rows) == 7
    assert {(r["width"], r["height"]) for r in rows.values()} == {(8, 6)}
    # the image arrives: a plain re-run checks again instead of reusing the manifest
    Image = pytest.importorskip("PIL.Image")
    late = root / "train/patient00009/study1/view1_frontal.jpg"
    late.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((6, 8), dtype=np.uint8)).save(late, format="JPEG")
    again = CheXpertDataset(n_valid=2, n_per_class=1).prepare(root, "mgca", tmp_path / "out", check_images=True)
    assert not again.reused and again.rows == 8 and again.warning_count("missing_image") == 0


def test_unknown_protocol(tree, tmp_path):
    with pytest.raises(PrepareError, match="has no protocol 'gloria'"):
        CheXpertDataset().prepare(tree, "gloria", tmp_path / "out")


# --------------------------------------------------------------------------------------------
# The real train.csv bundled with torchxrayvision (labels only; no images)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_chexpert(tmp_path_factory):
    txv = pytest.importorskip("torchxrayvision")
    source = Path(txv.__file__).parent / "data" / "chexpert_train.csv.gz"
    if not source.is_file():
        pytest.skip(f"{source} not shipped by this torchxrayvision")
    root = tmp_path_factory.mktemp("chexpert_real") / "CheXpert-v1.0-small"
    root.mkdir()
    shutil.copyfile(source, root / "train.csv.gz")
    write_csv(root / "valid.csv", VALID)  # valid.csv is not bundled: three hand-made rows
    return CheXpertDataset().prepare(root, "mgca", root.parent / "out", check_images=False)


def test_real_chexpert_counts(real_chexpert):
    mgca = real_chexpert
    sidecar = read_sidecar(mgca.sidecar_path)
    native = sidecar["native_counts"]["train.csv"]
    # CheXpert (Irvin et al., AAAI 2019): 224,316 radiographs of 65,240 patients, of which the
    # validation set holds 234 images of 200 patients and the test set 668 images of 500 patients;
    # so train.csv has 224,316 - 234 - 668 = 223,414 rows (also the HF card of CheXpert-small)
    # from 65,240 - 200 - 500 = 64,540 patients.
    assert native["rows"] == 223_414
    assert native["subjects"] == 64_540
    # 191,027 frontal training images: RSNA Imaging AI atlas card of the CheXpert subset used by
    # Zhang et al., Radiology: AI 2024 (atlas.rsna.org/cards/90b5b1a7-5118-40b1-9f36-ed2a26aea929).
    assert native["frontal"] == 191_027
    # CheXpert 5x200 (GLoRIA, ICCV 2021; MGCA): 1,000 images, removed from training
    assert sidecar["excluded"]["chexpert_5x200"] == 1000
    # every frontal image is in train, valid or the 5x200 set
    assert mgca.split_rows("train") + mgca.split_rows("valid") + 1000 == 191_027
    assert mgca.split_rows("test") == 2  # the hand-made valid.csv
    # frontal rows whose AP/PA is 'LL' (16) or 'RL' (1), counted separately with the csv module
    assert mgca.warning_count("view_ambiguous") == 17
