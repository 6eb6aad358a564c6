"""Manifest schema, streaming writer, sidecar and memory-mapped reader."""

from __future__ import annotations

import hashlib
import math

import pytest

pytest.importorskip("datasets")
pytest.importorskip("pyarrow")

from place_bench.data import manifest as mf  # noqa: E402


def _rows():
    return [
        {
            "dataset": "toy",
            "sample_id": "a",
            "subject_id": "p1",
            "image_path": "img/a.png",
            "image_format": "png",
            "view": "PA",
            "split": "train",
            "frac_rank": 1,
            "labels": [1.0, float("nan")],
            "boxes": [{"x1": 1.0, "y1": 2.0, "x2": 5.0, "y2": 7.5, "label": "x", "shape": "rect"}],
            "mask_rle": "2 2 1 2 1",
            "mask_source": "rle",
            "age": 51,
        },
        {
            "dataset": "toy",
            "sample_id": "b",
            "subject_id": "p1",
            "split": "train",
            "frac_rank": 0,
            "labels": [0.0, -1.0],
            "subsets": ["valid"],
        },
        {
            "dataset": "toy",
            "sample_id": "c",
            "subject_id": "p2",
            "split": "test",
            "labels": [1.0, 1.0],
            "class_index": 1,
            "class_name": "B",
            "polygons": [{"label": "obj", "points": [0.0, 0.0, 3.0, 0.0, 3.0, 4.0]}],
            "mask_rle": "2 2 4",
        },
    ]


def test_schema_has_every_spec_column_with_its_type():
    f = mf.manifest_features()
    assert list(f) == list(mf.COLUMNS)
    schema = mf.arrow_schema()
    assert str(schema.field("width").type) == "int32"
    assert str(schema.field("frac_rank").type) == "int32"
    assert str(schema.field("labels").type) == "list<item: float>"
    assert str(schema.field("boxes").type) == (
        "list<item: struct<x1: float, y1: float, x2: float, y2: float, label: string, shape: string>>"
    )
    assert str(schema.field("polygons").type) == "list<item: struct<label: string, points: list<item: float>>>"
    assert b"huggingface" in schema.metadata


def test_write_read_round_trip_and_counts(tmp_path):
    path = tmp_path / "toy" / "p.parquet"
    summary = mf.write_manifest(path, _rows(), label_names=["L1", "L2"], batch_rows=2)
    assert summary.rows == 3
    # counts by hand from _rows()
    assert summary.counts["train"]["rows"] == 2 and summary.counts["train"]["subjects"] == 1
    assert summary.counts["train"]["labels"]["L1"] == {"1": 1, "0": 1, "-1": 0, "nan": 0}
    assert summary.counts["train"]["labels"]["L2"] == {"1": 0, "0": 0, "-1": 1, "nan": 1}
    assert summary.counts["train"]["boxes"] == 1 and summary.counts["train"]["rows_with_mask"] == 1
    assert summary.counts["train"]["subsets"] == {"valid": 1}
    assert summary.counts["test"]["classes"] == {"B": 1}
    assert summary.counts["test"]["rows_with_mask"] == 0  # "2 2 4" is an empty mask
    assert summary.counts["valid"]["rows"] == 0
    assert summary.subject_overlap == {}
    assert summary.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert mf.manifest_fingerprint(path) == "sha256:" + summary.sha256

    ds = mf.read_manifest(path)
    assert ds.features == mf.manifest_features()
    assert ds.cache_files and ds.cache_files[0]["filename"].endswith(".arrow")  # memory-mapped file
    assert ds["sample_id"] == ["a", "b", "c"]
    a = ds[0]
    assert a["labels"][0] == 1.0 and math.isnan(a["labels"][1])
    assert a["boxes"] == [{"x1": 1.0, "y1": 2.0, "x2": 5.0, "y2": 7.5, "label": "x", "shape": "rect"}]
    assert a["age"] == 51 and a["width"] is None and a["aux_image_paths"] == []
    assert ds[2]["polygons"][0]["points"] == [0.0, 0.0, 3.0, 0.0, 3.0, 4.0]
    assert [r["sample_id"] for r in mf.iter_manifest(path, ["sample_id"])] == ["a", "b", "c"]


def test_same_rows_give_byte_identical_files(tmp_path):
    one = mf.write_manifest(tmp_path / "one.parquet", _rows(), ["L1", "L2"], batch_rows=2)
    two = mf.write_manifest(tmp_path / "two.parquet", _rows(), ["L1", "L2"], batch_rows=2)
    assert (tmp_path / "one.parquet").read_bytes() == (tmp_path / "two.parquet").read_bytes()
    assert one.fingerprint == two.fingerprint


def test_subject_overlap_is_reported(tmp_path):
    rows = _rows()
    rows[2]["subject_id"] = "p1"
    summary = mf.write_manifest(tmp_path / "x.parquet", rows, ["L1", "L2"])
    assert summary.subject_overlap == {"train&test": 1}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda r: r[1].update(sample_id="a"), "repeats the previous one 'a'"),
        (lambda r: r.reverse(), "sorts before the previous one 'c'"),
        (lambda r: r[0].update(colour="red"), "unknown column(s) ['colour']"),
        (lambda r: r[0].update(split="val"), "split 'val' is not one of"),
        (lambda r: r[2].update(frac_rank=3), "frac_rank is set on a 'test' row"),
        (lambda r: r[0].update(labels=[1.0]), "1 labels, expected 2"),
        (lambda r: r[0]["boxes"][0].update(x2=0.0), "x1 <= x2"),
        (lambda r: r[1].pop("split"), "column 'split' is required"),
    ],
)
def test_bad_rows_are_refused_and_nothing_is_written(tmp_path, mutate, message):
    rows = _rows()
    mutate(rows)
    path = tmp_path / "bad.parquet"
    with pytest.raises(mf.ManifestError) as err:
        mf.write_manifest(path, rows, ["L1", "L2"])
    assert message in str(err.value)
    assert list(tmp_path.iterdir()) == []  # temp file removed, target never created


def test_failed_rewrite_keeps_previous_file(tmp_path):
    path = tmp_path / "m.parquet"
    mf.write_manifest(path, _rows(), ["L1", "L2"])
    before = path.read_bytes()

    def broken():
        yield _rows()[0]
        raise RuntimeError("source failed")

    with pytest.raises(RuntimeError):
        mf.write_manifest(path, broken(), ["L1", "L2"])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.parquet"]


def test_sidecar_is_canonical_json(tmp_path):
    text = mf.dump_sidecar({"b": 1, "a": {"d": [1, 2], "c": "é"}})
    assert text == '{\n  "a": {\n    "c": "é",\n    "d": [\n      1,\n      2\n    ]\n  },\n  "b": 1\n}\n'
    with pytest.raises(ValueError):
        mf.dump_sidecar({"x": float("nan")})
    mf.write_sidecar(tmp_path / "s.json", {"k": 1})
    assert mf.read_sidecar(tmp_path / "s.json") == {"k": 1}
    assert mf.read_sidecar(tmp_path / "s.parquet") == {"k": 1}  # the sidecar beside a manifest
