"""Synthetic probe manifests (datasets.md 4.8): classes, latent truth, splits, sidecar, loading."""

import hashlib
import json
from collections import Counter

import pytest

from place_bench.data.loaders import ClassificationDataset
from place_bench.data.manifest import iter_manifest, read_sidecar
from place_bench.plugins.datasets.synthetic.probes_manifest import (
    PROBES,
    SyntheticProbes,
    is_probe_entry,
    parse_probe_entry,
    place_bench_register,
    write_probe_manifest,
    write_probe_manifests,
)

N = 2


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("probes")
    return out, write_probe_manifests(out, n=N, n_train=3, image_px=64, seed=0)


def _rows(manifest):
    return list(iter_manifest(manifest))


@pytest.mark.parametrize("probe", list(PROBES))
def test_classes_balanced_and_match_the_latent(written, probe):
    _, manifests = written
    rows = _rows(manifests[probe])
    p = PROBES[probe]
    counts = Counter((r["split"], r["class_name"]) for r in rows)
    assert counts == {("test", c): N for c in p.class_names} | {("train", c): 3 for c in p.class_names}
    for r in rows:
        assert r["dataset"] == f"synthetic_probe_{probe}"
        assert p.class_names[r["class_index"]] == r["class_name"]
        assert r["labels"] == [float(k == r["class_index"]) for k in range(2)]
        assert r["report"] is None or r["report"].strip()  # the generator leaves some reports empty
        finding = json.loads(r["source_row"])["finding"]
        if p.kind == "negation":
            assert (finding is not None) == (r["class_name"] == "present")
        else:
            assert finding["kind"] == p.finding and finding["certainty"] == "definite"
            if p.kind == "laterality":
                assert finding["side"] == r["class_name"]
            else:
                assert finding["severity"] == {"small": "mild", "large": "severe"}[r["class_name"]]
    assert {r["frac_rank"] for r in rows if r["split"] == "train"} == set(range(6))
    assert all(r["frac_rank"] is None for r in rows if r["split"] == "test")


def test_train_and_test_studies_are_disjoint(written):
    out, manifests = written
    for probe, manifest in manifests.items():
        rows = _rows(manifest)
        digest = {r["split"]: set() for r in rows}
        for r in rows:
            digest[r["split"]].add(hashlib.sha256((out / probe / r["image_path"]).read_bytes()).hexdigest())
        assert not digest["train"] & digest["test"], probe
        assert len(digest["train"]) == 6 and len(digest["test"]) == 2 * N


def test_sidecar_records_prompts_and_settings(written):
    _, manifests = written
    sidecar = read_sidecar(manifests["laterality_effusion"])
    assert sidecar["prompts"] == {"left": ["left pleural effusion"], "right": ["right pleural effusion"]}
    assert sidecar["class_names"] == sidecar["label_names"] == ["left", "right"]
    assert sidecar["probe"] == "laterality_effusion"
    assert sidecar["generator"]["seed"] == 0 and sidecar["generator"]["image_px"] == 64
    assert read_sidecar(manifests["negation_effusion"])["prompts"] == {
        "present": ["pleural effusion"], "absent": ["no pleural effusion"]}


def test_classification_dataset_loads_multiclass_items(written):
    _, manifests = written
    test = ClassificationDataset(manifests["severity_pneumothorax"], split="test")
    assert test.target_kind == "multiclass" and test.class_names == ["small", "large"]
    item = test[0]
    assert tuple(item["image"].shape) == (3, 224, 224) and int(item["target"]) in (0, 1)
    half = ClassificationDataset(manifests["severity_pneumothorax"], split="train", fraction=0.5)
    assert len(half) == 3 and set(half.targets.tolist()) == {0, 1}


def test_second_write_is_a_no_op_and_new_settings_rewrite(written):
    out, manifests = written
    manifest = manifests["laterality_effusion"]
    sidecar = manifest.with_suffix(".json")
    before = (manifest.stat().st_mtime_ns, sidecar.stat().st_mtime_ns)
    assert write_probe_manifest(out, "laterality_effusion", n=N, n_train=3, image_px=64, seed=0) == manifest
    assert (manifest.stat().st_mtime_ns, sidecar.stat().st_mtime_ns) == before
    write_probe_manifest(out, "laterality_effusion", n=1, n_train=1, image_px=64, seed=0)
    assert len(_rows(manifest)) == 4 and len(list((out / "laterality_effusion" / "images").iterdir())) == 4
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no staging left behind


def test_component_materializes_under_a_settings_key(tmp_path):
    class Registrar:
        def add(self, kind, name, obj):
            self.entry = (kind, name, obj)

    registrar = Registrar()
    place_bench_register(registrar)
    kind, name, cls = registrar.entry
    assert (kind, name) == ("dataset", "synthetic_probes")
    component = cls(probe="negation_effusion", n=1, image_px=64, root=str(tmp_path))
    manifest = component.materialize()
    assert manifest.is_file() and manifest.parent == component.native_root
    assert read_sidecar(manifest)["native_root"] == str(component.native_root.resolve())
    with pytest.raises(ValueError, match="unknown synthetic probe 'left_right'"):
        cls(probe="left_right")


def test_probe_entries_name_a_probe_and_its_settings():
    assert parse_probe_entry("synthetic_probes") == (list(PROBES), {})
    assert parse_probe_entry("synthetic_probes:negation_effusion") == (["negation_effusion"], {})
    assert parse_probe_entry("synthetic_probes:laterality_effusion?contrast_gain=3&n=16") == (
        ["laterality_effusion"], {"contrast_gain": 3.0, "n": 16})
    assert parse_probe_entry("synthetic_probes?seed=2") == (list(PROBES), {"seed": 2})
    assert is_probe_entry("synthetic_probes?seed=2") and not is_probe_entry("work/manifests/covidx")
    with pytest.raises(ValueError, match="unknown probe setting 'gain=3'; known: n=<int>"):
        parse_probe_entry("synthetic_probes:negation_effusion?gain=3")
    with pytest.raises(ValueError, match="n='many' is not an integer"):
        parse_probe_entry("synthetic_probes:negation_effusion?n=many")
    with pytest.raises(ValueError, match="unknown synthetic probe 'left_right'"):
        parse_probe_entry("synthetic_probes:left_right?n=2")


def test_a_contrast_gain_gives_its_own_probe_set_under_its_own_dataset_name(tmp_path):
    import numpy as np
    from PIL import Image

    plain = SyntheticProbes("laterality_effusion", n=2, n_train=1, root=str(tmp_path))
    strong = SyntheticProbes("laterality_effusion", n=2, n_train=1, root=str(tmp_path), contrast_gain=3.0)
    assert "contrast_gain" not in plain.settings and strong.settings["contrast_gain"] == 3.0
    assert strong.out_dir != plain.out_dir and strong.out_dir.name.endswith("_gain3.0")
    one, three = plain.materialize(), strong.materialize()
    assert read_sidecar(one)["dataset"] == "synthetic_probe_laterality_effusion"
    assert read_sidecar(three)["dataset"] == "synthetic_probe_laterality_effusion_gain3.0"
    assert read_sidecar(three)["generator"]["contrast_gain"] == 3.0
    rows_one, rows_three = _rows(one), _rows(three)
    # the same studies (ids, reports, classes), painted with stronger effusions
    assert [(r["sample_id"], r["report"], r["class_index"]) for r in rows_one] == \
        [(r["sample_id"], r["report"], r["class_index"]) for r in rows_three]
    assert {r["dataset"] for r in rows_three} == {"synthetic_probe_laterality_effusion_gain3.0"}
    pixels = [(np.asarray(Image.open(one.parent / a["image_path"])), np.asarray(Image.open(three.parent / b["image_path"])))
              for a, b in zip(rows_one, rows_three)]
    assert all(not np.array_equal(a, b) for a, b in pixels)


def test_a_gain_variant_uses_its_probes_prompts():
    from place_bench.plugins.datasets.synthetic.probes_manifest import probe_base_dataset
    from place_bench.plugins.tasks.prompts import prompts_for

    assert probe_base_dataset("synthetic_probe_negation_effusion_gain3.0") == "synthetic_probe_negation_effusion"
    assert probe_base_dataset("synthetic_probe_negation_effusion") == "synthetic_probe_negation_effusion"
    assert probe_base_dataset("synthetic_probe_unknown_gain3.0") == "synthetic_probe_unknown_gain3.0"
    assert probe_base_dataset("chexpert_gainx") == "chexpert_gainx"
    assert prompts_for("synthetic_probe_negation_effusion_gain3.0") == prompts_for("synthetic_probe_negation_effusion")
