"""COVIDx emulator: header-less label files, field order and class strings, images, workers."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from place_bench.data.images import read_image
from place_bench.plugins.datasets.synthetic import render_frontal
from place_bench.plugins.datasets.synthetic.emulators import covidx
from place_bench.plugins.datasets.synthetic.latent import StudyLatent

SOURCES = {"cohen", "rsna", "bimcv", "sirm", "ricord"}


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _lines(path: Path) -> list[list[str]]:
    text = path.read_text()
    assert text.endswith("\n") and "\r" not in text
    return [line.split(" ") for line in text.splitlines()]


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("covidx") / "covidx"
    return root, covidx.emulate(root, "tiny", seed=6)


def test_label_files_have_four_fields_and_no_header(tree):
    root, _ = tree
    vocab = {"train_COVIDx9A.txt": {"normal", "pneumonia", "COVID-19"},
             "test_COVIDx9A.txt": {"normal", "pneumonia", "COVID-19"},
             "train.txt": {"positive", "negative"}, "val.txt": {"positive", "negative"},
             "test.txt": {"positive", "negative"}}
    folder = {"train_COVIDx9A.txt": "train", "test_COVIDx9A.txt": "test", "train.txt": "train", "val.txt": "val",
              "test.txt": "test"}
    sizes = {"train": 40, "val": 10, "test": 20}
    for name, classes in vocab.items():
        rows = _lines(root / name)
        assert len(rows) == sizes[folder[name]]
        assert rows[0][0] != "patient_id"  # no header line
        for patient, filename, cls, source in rows:
            assert cls in classes and source in SOURCES
            assert (root / folder[name] / filename).is_file()
            assert filename.endswith((".png", ".jpg"))
        assert len({r[1] for r in rows}) == len(rows)
    assert {r[1] for r in _lines(root / "train_COVIDx9A.txt")} == {r[1] for r in _lines(root / "train.txt")}
    assert {r[2] for r in _lines(root / "train_COVIDx9A.txt")} == {"normal", "pneumonia", "COVID-19"}


def test_classes_follow_the_latent(tree):
    root, _ = tree
    nine = {r[1]: r[2] for n in ("train_COVIDx9A.txt", "test_COVIDx9A.txt") for r in _lines(root / n)}
    four = {r[1]: r for n in ("train.txt", "val.txt", "test.txt") for r in _lines(root / n)}
    for line in (root / "latent.jsonl").read_text().splitlines():
        rec = json.loads(line)
        kinds = {f["kind"] for f in rec["latent"]["findings"]}
        want9 = "COVID-19" if "ground_glass" in kinds else "pneumonia" if "consolidation" in kinds else "normal"
        name = rec["ids"]["filename"]
        assert four[name][0] == rec["ids"]["patient_id"]
        assert four[name][2] == ("positive" if "ground_glass" in kinds else "negative")
        if name in nine:
            assert nine[name] == want9


def test_several_images_per_patient_and_disjoint_patients(tree):
    root, _ = tree
    per_split = {n: [r[0] for r in _lines(root / f"{n}.txt")] for n in ("train", "val", "test")}
    assert any(per_split["train"].count(p) > 1 for p in per_split["train"])
    assert not set(per_split["train"]) & set(per_split["test"])


def test_images_match_the_latent(tree):
    root, _ = tree
    for line in (root / "latent.jsonl").read_text().splitlines()[:8]:
        rec = json.loads(line)
        got = read_image(root / rec["ids"]["path"])
        assert got.shape == (rec["ids"]["height"], rec["ids"]["width"])
        want = render_frontal(StudyLatent.from_dict(rec["latent"]), got.shape)
        tol = 0.5 / 255 + 1e-6 if rec["ids"]["path"].endswith(".png") else 0.02
        err = np.abs(got - want).max() if tol < 0.01 else np.abs(got - want).mean()
        assert err <= tol


def test_deterministic_with_and_without_workers(tmp_path):
    counts = {"train": 6, "valid": 2, "test": 3}
    covidx.emulate(tmp_path / "a", "tiny", seed=6, counts=counts)
    covidx.emulate(tmp_path / "b", "tiny", seed=6, counts=counts, workers=2)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
