"""Evaluation subsets (§4.8)."""

from collections import Counter

import numpy as np
import pytest

from place_bench.plugins.datasets.synthetic.latent import sample_latent
from place_bench.plugins.datasets.synthetic.study import generate_from_spec, latent_from_spec, study_text
from place_bench.plugins.datasets.synthetic.subsets import (
    PROBE_PROMPTS,
    balanced_presence_specs,
    five_by_n_class,
    five_by_n_specs,
    laterality_probe_specs,
    negation_probe_specs,
    natural_specs,
    severity_probe_specs,
)
from place_bench.plugins.datasets.synthetic.targets import compute_targets

COMPETITION = ["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"]
OTHERS = ["Enlarged Cardiomediastinum", "Lung Lesion", "Lung Opacity", "Pneumonia", "Pneumothorax",
          "Pleural Other", "Fracture", "Support Devices"]


def chexpert_5x200_rule(labels, cls):
    """§1.2, written out: blanks -> 0; class = 1; other four competition = 0;
    the eight other observations = 0 (any -1 excludes)."""
    v = {k: 0 if labels.get(k) is None else labels[k] for k in COMPETITION + OTHERS}
    return v[cls] == 1 and all(v[c] == 0 for c in COMPETITION if c != cls) and all(v[o] == 0 for o in OTHERS)


def test_five_by_n_class_rule_by_hand():
    assert five_by_n_class({"Edema": 1, "Pleural Effusion": 0, "No Finding": None}) == "Edema"
    assert five_by_n_class({"Edema": 1, "Support Devices": 1}) is None
    assert five_by_n_class({"Edema": 1, "Cardiomegaly": -1}) is None
    assert five_by_n_class({"Edema": 1, "Atelectasis": 1}) is None
    assert five_by_n_class({"Pneumothorax": 1}) is None
    assert five_by_n_class({}) is None


def test_five_by_n():
    specs = five_by_n_specs(3, 4)
    assert len(specs) == 20
    assert len({(s.split, s.index) for s in specs}) == 20
    per = Counter((s.tag("class"), s.tag("view")) for s in specs)
    assert per == {(c, v): 2 for c in COMPETITION for v in ("PA", "AP")}
    for s in specs:
        lat, reps = study_text(s, styles=("mimic",))
        assert chexpert_5x200_rule(reps["mimic"].labels, s.tag("class"))
        assert lat.view == s.tag("view")
    again = five_by_n_specs(3, 4)
    assert again == specs
    st = generate_from_spec(specs[0], 32)
    assert st.frontal.shape == (32, 32) and st.reports["mimic"].labels == study_text(specs[0])[1]["mimic"].labels


@pytest.mark.parametrize("finding", ["effusion", "consolidation"])
def test_laterality_probe(finding):
    specs = laterality_probe_specs(0, 3, finding=finding)
    assert Counter(s.tag("side") for s in specs) == {"left": 3, "right": 3}
    assert PROBE_PROMPTS[("laterality", finding)][0].startswith("left")
    for s in specs:
        lat = latent_from_spec(s)
        assert [f.kind for f in lat.findings] == [finding]
        f = lat.findings[0]
        assert (f.side, f.severity, f.certainty) == (s.tag("side"), "moderate", "definite")
        mask = compute_targets(lat, 64).mask(finding)
        cols = np.flatnonzero(mask.any(axis=0))
        # Patient left is on the image right.
        if f.side == "left":
            assert cols.min() >= 28
        else:
            assert cols.max() < 36


def test_negation_probe():
    specs = negation_probe_specs(0, 6)
    assert Counter(s.tag("label") for s in specs) == {"1": 6, "0": 6}
    for s in specs:
        lat = latent_from_spec(s)
        assert lat.has("effusion") == (s.tag("label") == "1")
    assert Counter((s.tag("label"), s.tag("view")) for s in specs)[("0", "AP")] == 3


def test_severity_probe():
    specs = severity_probe_specs(0, 4, finding="pneumothorax")
    areas = {"mild": [], "severe": []}
    for s in specs:
        lat = latent_from_spec(s)
        f = lat.finding("pneumothorax")
        assert f.severity == s.tag("severity") and f.side == s.tag("side")
        areas[f.severity].append(compute_targets(lat, 64).siim_mask.sum())
    assert min(areas["severe"]) > max(areas["mild"])


def test_balanced_presence_and_natural():
    specs = balanced_presence_specs(0, "train", "pneumothorax", 5, 5)
    assert Counter(s.tag("label") for s in specs) == {"1": 5, "0": 5}
    assert [s.index for s in specs] == sorted(s.index for s in specs)
    for s in specs:
        assert sample_latent(s.seed, s.split, s.index, profile="siim").has("pneumothorax") == (s.tag("label") == "1")
    nat = natural_specs(1, "test", 3, profile="rsna", start=10)
    assert [s.index for s in nat] == [10, 11, 12] and all(s.profile == "rsna" for s in nat)
