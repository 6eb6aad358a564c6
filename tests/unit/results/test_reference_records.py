"""Reference records: every cell of the spec tables, transcribed reproducibly."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest

from place_bench.results.reference import load_reference_records

REPO = Path(__file__).resolve().parents[3]
SPEC_CANDIDATES = [REPO / "shared" / "spec" / "reference_numbers.md", REPO.parent / "shared" / "spec" / "reference_numbers.md"]
CLS_METHODS = {"Random init", "ImageNet init", "ConVIRT", "GLoRIA", "GLoRIA-MIMIC", "MGCA", "MRM", "MedKLIP", "G2D"}
DENSE_METHODS = CLS_METHODS - {"MRM"} | {"M-FLAG"}


def _tool():
    spec = importlib.util.spec_from_file_location("make_reference_records", REPO / "tools" / "make_reference_records.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def refs():
    return load_reference_records()


def _value(refs, method, task, dataset, fraction):
    (hit,) = [r for r in refs if (r["method"]["label"], r["task"], r["dataset"], r["fraction"]) ==
              (method, task, dataset, fraction)]
    return hit


def test_every_cell_of_the_spec_tables(refs):
    cls = [r for r in refs if r["task"] == "cls_linear"]
    dense = [r for r in refs if r["task"] in ("seg", "det")]
    assert len(cls) == 9 * 9 and len(dense) == 9 * 12 and len(refs) == len(cls) + len(dense)
    assert {r["method"]["label"] for r in cls} == CLS_METHODS
    assert {r["method"]["label"] for r in dense} == DENSE_METHODS
    cells = Counter((r["method"]["label"], r["task"], r["dataset"], r["metric"], r["fraction"]) for r in refs)
    assert max(cells.values()) == 1
    per_column = Counter((r["task"], r["dataset"], r["metric"]) for r in refs)
    assert per_column == {
        ("cls_linear", "chexpert", "auroc_macro"): 27, ("cls_linear", "rsna", "auroc"): 27,
        ("cls_linear", "covidx", "accuracy"): 27, ("seg", "siim", "dice"): 27, ("seg", "rsna", "dice"): 27,
        ("det", "rsna", "map"): 27, ("det", "object_cxr", "map"): 27,
    }
    assert {r["fraction"] for r in refs} == {0.01, 0.1, 1.0}
    assert {(r["kind"], r["protocol"], r["backbone"]) for r in refs} == {("reference", "mgca", "ResNet-50")}
    assert all("G2D" in r["source"] and "NeurIPS 2024" in r["source"] for r in refs)


def test_spot_checks(refs):
    assert _value(refs, "MGCA", "cls_linear", "chexpert", 0.01)["value"] == 0.876
    assert _value(refs, "G2D", "cls_linear", "covidx", 1.0)["value"] == 0.934
    assert _value(refs, "ImageNet init", "cls_linear", "rsna", 0.1)["value"] == 0.745
    assert _value(refs, "Random init", "seg", "rsna", 1.0)["value"] == 0.185
    assert _value(refs, "M-FLAG", "seg", "siim", 0.1)["value"] == 0.612
    assert _value(refs, "GLoRIA-MIMIC", "det", "rsna", 1.0)["value"] == 0.248
    assert _value(refs, "G2D", "det", "object_cxr", 0.01)["value"] == 0.038
    below = _value(refs, "ConVIRT", "det", "object_cxr", 0.01)
    assert below["value"] is None and below["note"] == "below 1 %"
    assert sum(r["value"] is None for r in refs) == 8
    assert _value(refs, "MedKLIP", "cls_linear", "rsna", 1.0)["method"]["note"] == "uses disease annotations"
    assert _value(refs, "MedKLIP", "seg", "siim", 1.0)["method"]["note"] == "frozen encoder, re-implemented"


def test_committed_files_match_the_spec():
    spec = next((p for p in SPEC_CANDIDATES if p.is_file()), None)
    if spec is None:
        pytest.skip("shared/spec/reference_numbers.md is not beside this checkout")
    assert _tool().main([str(spec), "--out", str(REPO / "registry" / "reference"), "--check"]) == 0


def test_tool_parses_a_table(tmp_path):
    text = """intro
| method | SIIM 1 | 10 | 100 | Obj-CXR 1 | 10 | 100 |
|---|---|---|---|---|---|---|
| Foo (bar) | 9.0 | 28.6 | 54.3 | - | 0.5 | 4.4 |
"""
    records = _tool().parse(text)
    assert [(r["task"], r["dataset"], r["fraction"], r["value"]) for r in records] == [
        ("seg", "siim", 0.01, 0.09), ("seg", "siim", 0.1, 0.286), ("seg", "siim", 1.0, 0.543),
        ("det", "object_cxr", 0.01, None), ("det", "object_cxr", 0.1, 0.005), ("det", "object_cxr", 1.0, 0.044)]
    assert {r["method"]["label"] for r in records} == {"Foo"}
    spec = tmp_path / "ref.md"
    spec.write_text(text)
    assert _tool().main([str(spec), "--out", str(tmp_path / "out")]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["g2d_neurips2024_foo.json"]


def test_fallback_to_the_repository_folder(monkeypatch):
    from place_bench.results import reference

    monkeypatch.setattr(reference, "PACKAGE", "place_bench.no_such_registry_data")
    assert len(reference.load_reference_records()) == 9 * 9 + 9 * 12
