"""CheXpert-v1.0-small emulator: columns, Path values, views, label values, 5xN source, pixels."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from place_bench.data.images import read_image
from place_bench.plugins.datasets.synthetic import render_frontal, render_lateral
from place_bench.plugins.datasets.synthetic.emulators import chexpert
from place_bench.plugins.datasets.synthetic.latent import StudyLatent

COUNTS = {"train": 10, "valid": 2, "test": 5, "5xn": 2}
COLUMNS = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", "Enlarged Cardiomediastinum",
           "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema", "Consolidation", "Pneumonia", "Atelectasis",
           "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture", "Support Devices"]
PATH_RE = re.compile(r"^CheXpert-v1\.0-small/(train|valid)/patient(\d{5})/study(\d+)/view(\d+)_(frontal|lateral)\.jpg$")
COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
MUST_BE_ZERO = ["Enlarged Cardiomediastinum", "Lung Lesion", "Lung Opacity", "Pneumonia", "Pneumothorax",
                "Pleural Other", "Fracture", "Support Devices"]


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _rows(path: Path) -> tuple[list, list[dict]]:
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        return header, [dict(zip(header, r)) for r in reader]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("chexpert") / "chexpert"
    return root, chexpert.emulate(root, "tiny", seed=5, counts=COUNTS)


def test_columns_paths_and_views(tree):
    root, result = tree
    for name in ("train.csv", "valid.csv"):
        header, rows = _rows(root / name)
        assert header == COLUMNS
        for r in rows:
            m = PATH_RE.match(r["Path"])
            assert m and m.group(1) == name[:-4], r["Path"]
            assert (root / r["Path"].split("/", 1)[1]).is_file()  # loaders strip the first component
            kind = m.group(5)
            assert r["Frontal/Lateral"] == ("Frontal" if kind == "frontal" else "Lateral")
            if kind == "lateral":
                assert r["AP/PA"] == ""
            else:
                assert r["AP/PA"] in ("AP", "PA", "LL")
            assert r["Sex"] in ("Male", "Female", "Unknown")
            assert 18 <= int(r["Age"]) <= 90
        assert [r["Path"] for r in rows] == sorted(r["Path"] for r in rows)
    _, train = _rows(root / "train.csv")
    assert sum(r["AP/PA"] == "LL" for r in train) == 1 == result.expected["warnings"]["view_ambiguous"]
    sexes: dict = {}
    for r in train:
        if r["Sex"] != "Unknown":  # one planted row
            sexes.setdefault(PATH_RE.match(r["Path"]).group(2), set()).add(r["Sex"])
    assert all(len(v) == 1 for v in sexes.values())  # sex is a patient attribute
    _, valid = _rows(root / "valid.csv")
    assert min(int(PATH_RE.match(r["Path"]).group(2)) for r in valid) == 64541
    assert not {PATH_RE.match(r["Path"]).group(2) for r in valid} & {PATH_RE.match(r["Path"]).group(2) for r in train}


def test_label_values(tree):
    root, _ = tree
    _, train = _rows(root / "train.csv")
    _, valid = _rows(root / "valid.csv")
    train_values = {r[c] for r in train for c in COLUMNS[5:]}
    assert train_values <= {"", "1.0", "0.0", "-1.0"} and {"", "1.0", "0.0"} <= train_values
    assert {r[c] for r in valid for c in COLUMNS[5:]} <= {"1.0", "0.0"}  # consensus labels: no blanks, no -1


def test_labels_come_from_reports_and_image_truth(tree):
    root, _ = tree
    rows = {}
    for name in ("train.csv", "valid.csv"):
        rows.update({r["Path"]: r for r in _rows(root / name)[1]})
    for line in (root / "latent.jsonl").read_text().splitlines():
        rec = json.loads(line)
        source = rec["csv_labels"]
        if rec["ids"]["csv"] == "valid.csv":
            assert source == rec["image_truth"]
        for rel in rec["ids"]["paths"]:
            r = rows["CheXpert-v1.0-small/" + rel]
            want = ["" if source[o] is None else f"{float(source[o]):.1f}" for o in COLUMNS[5:]]
            assert [r[o] for o in COLUMNS[5:]] == want


def test_enough_exclusive_frontal_images_for_5xn(tree):
    root, result = tree
    _, train = _rows(root / "train.csv")
    found = {c: 0 for c in COMPETITION}
    for r in train:
        if r["Frontal/Lateral"] != "Frontal":
            continue
        v = {c: float(r[c]) if r[c] else 0.0 for c in COLUMNS[5:]}  # blanks -> 0, as GLoRIA / MGCA do
        if any(x == -1.0 for k, x in v.items() if k != "No Finding"):
            continue
        pos = [c for c in COMPETITION if v[c] == 1.0]
        if len(pos) == 1 and all(v[c] == 0.0 for c in MUST_BE_ZERO):
            found[pos[0]] += 1
    assert all(n >= COUNTS["5xn"] for n in found.values()), found
    assert found == result.expected["five_by_n_candidates"]


def test_images_match_the_latent(tree):
    root, _ = tree
    for line in (root / "latent.jsonl").read_text().splitlines()[:8]:
        rec = json.loads(line)
        latent = StudyLatent.from_dict(rec["latent"])
        for rel in rec["ids"]["paths"]:
            got = read_image(root / rel)
            want = render_frontal(latent, 64) if "frontal" in rel else render_lateral(latent, 64)
            err = np.abs(got - want).mean()
            assert err < 0.02 and err < 0.5 * np.abs(got - want[:, ::-1]).mean(), rel


def test_expected_counts(tree):
    root, result = tree
    _, train = _rows(root / "train.csv")
    _, valid = _rows(root / "valid.csv")
    exp = result.expected
    assert exp["train_csv_rows"] == len(train) and exp["valid_csv_rows"] == len(valid)
    assert exp["test_rows"] == sum(r["Frontal/Lateral"] == "Frontal" for r in valid) == COUNTS["test"]
    n_front = sum(r["Frontal/Lateral"] == "Frontal" for r in train)
    assert exp["rows"] == n_front - 5 * COUNTS["5xn"] + COUNTS["test"]
    assert exp["train_patients"] == len({PATH_RE.match(r["Path"]).group(2) for r in train})


def test_deterministic(tree, tmp_path):
    root, _ = tree
    chexpert.emulate(tmp_path / "c", "tiny", seed=5, counts=COUNTS)
    assert _digest(tmp_path / "c") == _digest(root)
