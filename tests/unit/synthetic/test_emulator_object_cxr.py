"""Object-CXR emulator: CSV headers, annotation grammar, shapes parsed back against the latent."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from place_bench.data.images import read_image
from place_bench.plugins.datasets.synthetic import compute_targets, render_frontal
from place_bench.plugins.datasets.synthetic.emulators import object_cxr
from place_bench.plugins.datasets.synthetic.latent import StudyLatent

OBJECT = re.compile(r"^[012]( \d+)+$")
KIND_TYPE = {"button": 1, "coin": 1, "hair_tie": 1, "clip": 0, "necklace": 2}


def _digest(root: Path) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _csv(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def parse(annotation: str) -> list[tuple[int, list[int]]]:
    """Parse an Object-CXR annotation string into (type, coordinates) per object."""
    if annotation == "":
        return []
    out = []
    for part in annotation.split(";"):
        assert OBJECT.match(part), part
        t, *coords = (int(v) for v in part.split(" "))
        if t in (0, 1):
            assert len(coords) == 4 and coords[0] < coords[2] and coords[1] < coords[3], part
        else:
            assert len(coords) >= 6 and len(coords) % 2 == 0, part
        out.append((t, coords))
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("object") / "object_cxr"
    return root, object_cxr.emulate(root, "tiny", seed=8)


def test_tables_names_and_numbering(tree):
    root, _ = tree
    train, dev, test = (_csv(root / n) for n in ("train.csv", "dev.csv", "test.csv"))
    assert train[0] == dev[0] == ["image_name", "annotation"]
    assert test[0] == ["image_path", "annotation"]
    names = [r[0] for r in train[1:]] + [r[0] for r in dev[1:]] + [r[0].split("/", 1)[1] for r in test[1:]]
    assert names == [f"{i:05d}.jpg" for i in range(1, 71)]
    assert all(r[0].startswith("test/") for r in test[1:])
    for folder, rows in (("train", train), ("dev", dev)):
        assert all((root / folder / r[0]).is_file() for r in rows[1:])
    assert all((root / r[0]).is_file() for r in test[1:])
    anns = [r[1] for t in (train, dev, test) for r in t[1:]]
    assert 0.25 < sum(a == "" for a in anns) / len(anns) < 0.75  # about half are empty


def test_annotations_parse_back_to_the_latent_objects(tree):
    root, result = tree
    rows = {}
    for name, folder in (("train.csv", "train/"), ("dev.csv", "dev/"), ("test.csv", "")):
        rows.update({folder + r[0]: r[1] for r in _csv(root / name)[1:]})
    n_objects = 0
    for line in (root / "latent.jsonl").read_text().splitlines():
        rec = json.loads(line)
        h, w = rec["ids"]["height"], rec["ids"]["width"]
        objects = parse(rows[rec["ids"]["image"]])
        latent = StudyLatent.from_dict(rec["latent"])
        regions = [r for r in compute_targets(latent, (h, w)).regions if r.annotation_type is not None]
        assert [t for t, _ in objects] == [KIND_TYPE[r.kind] for r in regions]
        for (t, coords), r in zip(objects, regions):
            x0, y0, x1, y1 = r.box
            if t in (0, 1):  # integer box containing the object's box, at most 1 px larger per side
                a, b, c, d = coords
                assert a <= x0 < a + 1 and b <= y0 < b + 1 and c - 1 < x1 <= c and d - 1 < y1 <= d
            else:
                pts = np.array(coords, dtype=float).reshape(-1, 2)
                hull = np.asarray(r.polygon, dtype=float)
                # every written vertex is a hull vertex rounded to the nearest pixel
                dist = np.linalg.norm(pts[:, None, :] - hull[None, :, :], axis=2).min(axis=1)
                assert (dist <= math.sqrt(0.5) + 1e-9).all()
                assert len(pts) >= 3
            assert 0 <= min(coords) and max(coords[0::2]) <= w and max(coords[1::2]) <= h
        n_objects += len(objects)
    assert n_objects == sum(result.expected["objects"].values()) > 0


def test_all_three_shape_types_in_one_string_and_sizes(tree):
    root, result = tree
    rows = _csv(root / "train.csv")[1:]
    assert any({t for t, _ in parse(a)} == {0, 1, 2} for _, a in rows)
    sizes = set()
    for name, _ in rows[:10]:
        with Image.open(root / "train" / name) as im:
            sizes.add(im.size)
            assert im.mode == "L" and im.size[0] != im.size[1]
    assert len(sizes) > 1


def test_images_match_the_latent(tree):
    root, _ = tree
    for line in (root / "latent.jsonl").read_text().splitlines()[:6]:
        rec = json.loads(line)
        got = read_image(root / rec["ids"]["image"])
        want = render_frontal(StudyLatent.from_dict(rec["latent"]), (rec["ids"]["height"], rec["ids"]["width"]))
        err = np.abs(got - want).mean()
        assert err < 0.02 and err < 0.5 * np.abs(got - want[:, ::-1]).mean()


def test_deterministic(tmp_path):
    counts = {"train": 5, "valid": 2, "test": 2}
    object_cxr.emulate(tmp_path / "a", "tiny", seed=8, counts=counts)
    object_cxr.emulate(tmp_path / "b", "tiny", seed=8, counts=counts)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
