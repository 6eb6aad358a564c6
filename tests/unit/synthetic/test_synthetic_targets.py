"""Masks, boxes and labels derived from the latent (§4.4), checked by hand.

Hand-built latents use the template anatomy (right lung ellipse centre (0.33,
0.46), half-axes (0.135, 0.30), dome base 0.74, dome rise 0.05), PA view,
inspiration 1 and an identity pose unless a test sets a pose.
"""

import math

import numpy as np
import pytest

from place_bench.plugins.datasets.synthetic.latent import Device, ForeignObject, Nuisance, sample_latent
from place_bench.plugins.datasets.synthetic.targets import (
    component_boxes,
    compute_targets,
    connected_components,
    covidx_binary,
    covidx_class,
    image_truth_labels,
    mask_bbox,
    rsna_detailed_class,
    rsna_target,
)


def pixel_centres(n):
    return (np.arange(n) + 0.5) / n


def test_nodule_mask_and_box_by_hand(make_latent):
    inst = dict(cx=0.30, cy=0.40, r=0.05, delta=0.2, spikes=[], lat_u=0.5)
    lat = make_latent([dict(kind="nodule", side="right", zone="middle",
                            params=dict(subtype="nodule", instances=[inst]))])
    t = compute_targets(lat, 100)
    (region,) = t.of("nodule")
    # Pixel centres (x + 0.5) / 100 within 0.05 of (0.30, 0.40): x in 25..34, y in 35..44.
    assert region.box == (25.0, 35.0, 35.0, 45.0)
    assert region.box_source == "mask"
    expected = np.zeros((100, 100), bool)
    for y in range(100):
        for x in range(100):
            expected[y, x] = ((x + 0.5) / 100 - 0.30) ** 2 + ((y + 0.5) / 100 - 0.40) ** 2 <= 0.05 ** 2
    assert np.array_equal(region.mask, expected)


def test_coin_box_follows_the_pose(make_latent):
    coin = ForeignObject("coin", dict(cx=0.3, cy=0.4, r=0.02, delta=0.45, side="right"))
    # 90 degrees: (a, b) - c = (-0.2, -0.1) -> R (-0.2, -0.1) = (0.1, -0.2) -> (0.6, 0.3).
    lat = make_latent(objects=[coin], nuisance=Nuisance(rotation_deg=90.0))
    (r,) = compute_targets(lat, 200).of("coin")
    assert r.box == pytest.approx((116.0, 56.0, 124.0, 64.0))
    assert r.annotation_type == 1
    assert r.mask[60, 120] and not r.mask[80, 60]
    # Scale 1.1 and shift (0.02, -0.01): centre (0.30, 0.38), radius 0.022.
    lat = make_latent(objects=[coin], nuisance=Nuisance(scale=1.1, shift_u=0.02, shift_v=-0.01))
    (r,) = compute_targets(lat, 200).of("coin")
    assert r.box == pytest.approx((0.278 * 200, 0.358 * 200, 0.322 * 200, 0.402 * 200))
    mb = mask_bbox(r.mask)
    assert r.box[0] <= mb[0] and mb[2] <= r.box[2] and r.box[1] <= mb[1] and mb[3] <= r.box[3]


def test_clip_and_necklace_annotations(make_latent):
    clip = ForeignObject("clip", dict(cx=0.5, cy=0.5, half_w=0.01, half_h=0.03, angle=0.0, delta=0.5))
    beads = [[0.2 + 0.02 * i, 0.3] for i in range(5)]
    neck = ForeignObject("necklace", dict(beads=beads, bead_r=0.005, delta=0.4))
    t = compute_targets(make_latent(objects=[clip, neck]), 100)
    (c,) = t.of("clip")
    assert c.annotation_type == 0 and c.box == pytest.approx((49.0, 47.0, 51.0, 53.0))
    (n,) = t.of("necklace")
    assert n.annotation_type == 2
    assert n.box == pytest.approx((19.5, 29.5, 28.5, 30.5))
    poly = n.polygon
    assert poly[:, 0].min() == pytest.approx(19.5) and poly[:, 0].max() == pytest.approx(28.5)


def test_right_effusion_is_on_the_image_left(make_latent):
    eff = dict(kind="effusion", side="right", zone="lower",
               params=dict(sides={"right": {"h": 0.25, "subpulmonic": False}}, shift=0.0))
    t = compute_targets(make_latent([eff]), 200)
    m = t.mask("effusion")
    assert m.any()
    assert not m[:, 100:].any()  # patient right = image left
    # Pixel (x=51, y=135): centre (0.2575, 0.6775). Inside the right lung:
    # ((0.2575-0.33)/0.135)^2 + ((0.6775-0.46)/0.30)^2 = 0.814 <= 1, dome there 0.7044.
    # Lateralness 0.5 + 0.0725/0.27 = 0.7685; meniscus 0.74 - 0.25*0.58*(1 + 0.25*0.7685^2) = 0.5736.
    assert m[135, 51]
    # Mid-lung pixel (0.3325, 0.4025): meniscus there is ~0.586 -> dry.
    assert not m[80, 66]
    # Costophrenic region below the dome (outside the lung) is never fluid.
    assert not m[160, 51]
    # The meniscus curves up quadratically in lateralness: at x=65 (u=0.3275,
    # lateralness 0.50926) it lies at 0.74 - 0.145 * (1 + 0.25 * 0.50926^2) = 0.5856,
    # so y=116 (v=0.5825) is dry and y=118 (v=0.5925) is fluid.
    assert not m[116, 65]
    assert m[118, 65]


def test_pneumothorax_crescent_by_hand(make_latent):
    ptx = dict(kind="pneumothorax", side="right", zone="apical", severity="moderate",
               params=dict(w=0.05, extent=0.4, tension=False, shift=0.0))
    n = 200
    m = compute_targets(make_latent([ptx]), n).siim_mask
    c = pixel_centres(n)
    top, height = 0.16, 0.58
    for y in (50, 60, 70):
        v = c[y]
        gap = 0.05 * max(0.0, 1 - (v - top) / (0.4 * height))
        edge = 0.33 - 0.135 * math.sqrt(1 - ((v - 0.46) / 0.30) ** 2)
        xs = np.flatnonzero(m[y])
        expected = [x for x in range(n) if edge <= c[x] and c[x] - edge <= gap]
        assert xs.tolist() == expected
    # Nothing below 40 % of the lung height, nothing on the image right.
    assert not m[int((top + 0.4 * height) * n) + 1:].any()
    assert not m[:, n // 2:].any()


def test_rib_fracture_analytic_box(make_latent):
    fx = dict(kind="rib_fracture", side="right", params=dict(rib=4, t=0.5, gap=0.006, offset=0.005))
    (r,) = compute_targets(make_latent([fx]), 100).of("rib_fracture")
    # Rib 4 at t = 0.5: u = 0.5 - 0.37 * 0.5 = 0.315, v = 0.16 + 0.22 + 0.04 * 0.25 = 0.39;
    # box = site +- (0.025, 0.02).
    assert r.box == pytest.approx((29.0, 37.0, 34.0, 41.0))
    assert r.box_source == "analytic" and r.mask is None


def test_connected_components_by_hand():
    m = np.zeros((8, 10), bool)
    m[1:3, 1:3] = True
    m[3, 3] = True       # diagonal neighbour joins the square (8-connectivity)
    m[5:7, 6:9] = True
    m[0, 9] = True
    m[7, 0] = True
    labels, n = connected_components(m)
    assert n == 4
    assert component_boxes(m) == [(9.0, 0.0, 10.0, 1.0), (1.0, 1.0, 4.0, 4.0), (6.0, 5.0, 9.0, 7.0),
                                  (0.0, 7.0, 1.0, 8.0)]
    u = np.zeros((5, 5), bool)
    u[0, 0:5] = True
    u[1:5, 0] = True
    u[1:5, 4] = True   # a "U" whose arms only meet through the top row
    assert connected_components(u)[1] == 1
    assert mask_bbox(np.zeros((3, 3), bool)) is None


def test_every_mask_box_is_its_bbox_and_components_partition():
    for i in range(40):
        lat = sample_latent(9, "train", i)
        t = compute_targets(lat, 96)
        for r in t.regions:
            if r.box_source in ("mask", "component"):
                assert r.mask.any()
                assert r.box == mask_bbox(r.mask)
        for kind in ("consolidation", "ground_glass"):
            comps = t.of(kind)
            if comps:
                total = sum(c.mask.sum() for c in comps)
                assert total == t.mask(kind).sum()
        assert t.rsna_boxes == component_boxes(t.mask(("consolidation", "ground_glass")))


def test_mask_resolution_consistency():
    for i in range(30):
        lat = sample_latent(12, "train", i)
        if not lat.has("effusion") and not lat.has("consolidation"):
            continue
        kinds = ("effusion", "consolidation")
        small = compute_targets(lat, 64).mask(kinds).mean()
        big = compute_targets(lat, 256).mask(kinds).mean()
        assert abs(small - big) < 0.01


def test_image_truth_labels(make_latent):
    cons = dict(kind="consolidation", side="right", zone="lower")
    labels = image_truth_labels(make_latent([cons]))
    assert {k for k, v in labels.items() if v} == {"Consolidation", "Pneumonia", "Lung Opacity"}
    labels = image_truth_labels(make_latent(devices=[Device("sternotomy", None, {"wires": [0.4]})]))
    assert {k for k, v in labels.items() if v} == {"Support Devices", "No Finding"}
    card = dict(kind="cardiomegaly", params=dict(ctr=0.6, ecm=True))
    assert {k for k, v in image_truth_labels(make_latent([card])).items() if v} == {
        "Cardiomegaly", "Enlarged Cardiomediastinum"}
    assert {k for k, v in image_truth_labels(make_latent()).items() if v} == {"No Finding"}


def test_dataset_classes(make_latent):
    assert (rsna_target(make_latent()), rsna_detailed_class(make_latent())) == (0, "Normal")
    cons = make_latent([dict(kind="consolidation", side="left", zone="upper")])
    assert (rsna_target(cons), rsna_detailed_class(cons), covidx_class(cons)) == (1, "Lung Opacity", "pneumonia")
    nod = make_latent([dict(kind="nodule", side="left", zone="upper")])
    assert rsna_detailed_class(nod) == "No Lung Opacity / Not Normal"
    gg = make_latent([dict(kind="ground_glass", side="bilateral", zone="lower")])
    assert (covidx_class(gg), covidx_binary(gg), rsna_target(gg)) == ("COVID-19", "positive", 1)
    assert covidx_binary(make_latent()) == "negative"


def test_boxes_to_mask_by_hand():
    from place_bench.plugins.datasets.synthetic.targets import boxes_to_mask

    m = boxes_to_mask([(1.0, 1.0, 3.0, 2.0)], 4, 4)
    expected = np.zeros((4, 4), bool)
    expected[1, 1:3] = True  # centres x in {1.5, 2.5}, y = 1.5
    assert np.array_equal(m, expected)
    blob = np.zeros((6, 7), bool)
    blob[2:5, 1:4] = True
    assert np.array_equal(boxes_to_mask([mask_bbox(blob)], 6, 7), blob)
