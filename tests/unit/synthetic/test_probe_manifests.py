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
