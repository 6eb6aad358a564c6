"""Frontal / lateral rendering (§4.3): determinism, conventions, laterality."""

import copy
import dataclasses

import numpy as np
import pytest

from place_bench.plugins.datasets.synthetic import generate_study
from place_bench.plugins.datasets.synthetic.latent import (
    Constraints,
    FindingRequest,
    Nuisance,
    sample_latent,
)
from place_bench.plugins.datasets.synthetic.render import (
    frontal_attenuation,
    render_frontal,
    render_lateral,
    to_uint8,
    to_uint12,
)
from place_bench.plugins.datasets.synthetic.targets import compute_targets

IDENTITY = Nuisance()  # no pose change, no blur, no noise, linear exposure


def without_findings(lat):
    out = copy.deepcopy(lat)
    out.findings = []
    return out


def test_same_inputs_byte_identical():
    a = generate_study(7, "train", 3, 64)
    b = generate_study(7, "train", 3, 64)
    assert a.frontal.tobytes() == b.frontal.tobytes()
    assert (a.lateral is None and b.lateral is None) or a.lateral.tobytes() == b.lateral.tobytes()
    assert {k: r.text for k, r in a.reports.items()} == {k: r.text for k, r in b.reports.items()}
    for ra, rb in zip(a.targets.regions, b.targets.regions):
        assert ra.box == rb.box
        assert (ra.mask is None and rb.mask is None) or np.array_equal(ra.mask, rb.mask)
    np.random.seed(99)
    assert generate_study(7, "train", 3, 64).frontal.tobytes() == a.frontal.tobytes()


def test_output_contract():
    lat = sample_latent(0, "train", 1)
    img = render_frontal(lat, 64)
    assert img.dtype == np.float32 and img.shape == (64, 64)
    assert 0.0 <= img.min() and img.max() <= 1.0 and img.std() > 0.05
    rect = render_frontal(lat, (48, 80))
    assert rect.shape == (48, 80)
    lateral = render_lateral(lat, (40, 56))
    assert lateral.dtype == np.float32 and lateral.shape == (40, 56)
    assert not np.array_equal(render_lateral(lat, 64), img)


def test_display_conversions_by_hand():
    x = np.array([0.0, 0.25, 0.5, 1.0, 1.2, -0.1], dtype=np.float32)
    assert to_uint8(x).tolist() == [0, 64, 128, 255, 255, 0]        # round(255 x), clipped
    assert to_uint12(x).dtype == np.uint16
    assert to_uint12(x).tolist() == [0, 1024, 2048, 4095, 4095, 0]  # round(4095 x), clipped


def _forced(kind, seed=0, index=0, **req):
    c = Constraints(force=(FindingRequest(kind, **req),), exclusive=True, clean_text=True)
    lat = sample_latent(seed, "render", index, constraints=c)
    lat.foreign_objects = []
    return lat


@pytest.mark.parametrize("side", ["right", "left"])
def test_effusion_laterality_in_pixels(side):
    # Natural pose (rotation, shift, scale) kept: the change must stay on the patient's side.
    lat = _forced("effusion", side=side, severity="moderate", certainty="definite")
    diff = render_frontal(lat, 64).astype(float) - render_frontal(without_findings(lat), 64)
    left_half, right_half = np.abs(diff[:, :32]).sum(), np.abs(diff[:, 32:]).sum()
    if side == "right":  # patient right = image left
        assert left_half > 20 * right_half
    else:
        assert right_half > 20 * left_half


def test_marker_and_ap_text_positions():
    lat = sample_latent(0, "train", 0)
    lat.nuisance = dataclasses.replace(IDENTITY, marker=True)
    img = render_frontal(lat, 128)
    # "R" occupies u in [0.05, 0.09], v in [0.04, 0.08]: bright, top-left.
    assert img[5:11, 6:12].max() > 0.85
    lat.nuisance = dataclasses.replace(IDENTITY, marker=False)
    assert render_frontal(lat, 128)[5:11, 6:12].max() < 0.5
    lat.nuisance = dataclasses.replace(IDENTITY, ap_text="PORTABLE")
    img = render_frontal(lat, 128)
    assert img[5:10, 80:122].max() > 0.9 and img[5:10, 0:40].max() < 0.5


def test_text_only_attributes_do_not_change_the_image():
    lat = sample_latent(3, "train", 0, constraints=Constraints(
        force=(FindingRequest("effusion", side="left"), FindingRequest("nodule", side="right")), exclusive=True))
    base = render_frontal(lat, 64).tobytes()
    other = copy.deepcopy(lat)
    for f in other.findings:
        f.change = "increased" if f.change != "increased" else "decreased"
    other.report_noise.omitted = [f.id for f in other.findings]
    other.report_noise.swapped = other.findings[0].id
    other.text_seed += 1
    assert render_frontal(other, 64).tobytes() == base


@pytest.mark.parametrize("kind, req, sign", [
    ("consolidation", dict(side="right", zone="lower", severity="severe"), +1),
    ("nodule", dict(side="left", severity="severe"), +1),
    ("pneumothorax", dict(side="left", severity="severe"), -1),
    ("atelectasis", dict(side="right", severity="severe"), +1),
])
def test_pathology_lies_inside_its_mask(kind, req, sign):
    lat = _forced(kind, certainty="definite", **req)
    lat.nuisance = dataclasses.replace(lat.nuisance, blur_sigma=0.0, noise_sigma=0.0)
    # Keep the anatomy still (mediastinal shift, atelectatic volume loss) so that
    # only the lesion itself differs.
    lat.findings[0].params["shift"] = 0.0
    lat.findings[0].params["dome_raise"] = {}
    a_with = frontal_attenuation(lat, 128)[0]
    a_without = frontal_attenuation(without_findings(lat), 128)[0]
    diff = a_with - a_without
    mask = compute_targets(lat, 128).mask(kind)
    assert mask.any()
    inside = diff[mask] * sign
    assert np.median(inside) > 0.04
    # Apart from anti-aliased edges and faint texture (spicules, pleural line),
    # nothing changes outside the mask.
    grown = mask.copy()
    for _ in range(3):
        grown = grown | np.roll(grown, 1, 0) | np.roll(grown, -1, 0) | np.roll(grown, 1, 1) | np.roll(grown, -1, 1)
    outside = np.abs(diff[~grown])
    assert outside.sum() < 0.1 * np.abs(diff[mask]).sum()


def test_uncertain_findings_have_half_contrast():
    lat = _forced("consolidation", side="left", zone="upper", severity="moderate", certainty="definite")
    lat.findings[0].params["bronchograms"] = []
    unc = copy.deepcopy(lat)
    unc.findings[0].certainty = "uncertain"
    base = frontal_attenuation(without_findings(lat), 96)[0]
    d_def = frontal_attenuation(lat, 96)[0] - base
    d_unc = frontal_attenuation(unc, 96)[0] - base
    m = np.abs(d_def) > 1e-6
    assert m.any()
    np.testing.assert_allclose(d_unc[m], 0.5 * d_def[m], atol=1e-9)


def test_cardiomegaly_widens_the_heart():
    small = _forced("cardiomegaly", severity="mild", certainty="definite")
    big = copy.deepcopy(small)
    big.findings[0].params["ctr"] = 0.68
    w_small = compute_targets(small, 128).mask("cardiomegaly").any(axis=0).sum()
    w_big = compute_targets(big, 128).mask("cardiomegaly").any(axis=0).sum()
    assert w_big > w_small * 1.15


def test_generate_study_lateral_only_when_present():
    st = generate_study(0, "train", 0, 48, profile="iu")
    assert st.latent.has_lateral and st.lateral is not None and st.lateral.shape == (48, 48)
    st = generate_study(0, "train", 0, 48, profile="rsna", mask_size=96)
    assert st.lateral is None
    assert st.targets.height == 96 and st.frontal.shape == (48, 48)
