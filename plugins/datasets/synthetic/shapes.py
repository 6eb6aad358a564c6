"""Continuous shapes of every pathology, device and foreign object (§4.3).

Functions take the study's :class:`.geometry.Thorax`, a latent record (finding,
device or object, duck-typed) and arrays ``a, b`` of anatomical coordinates, and
return boolean regions or float fields of the same shape. The renderer paints
with them and :mod:`.targets` rasterizes masks with them, so both agree exactly.
Lengths quoted "px at 256" are converted with ``1 px = 1 / 256``.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .geometry import CARINA_V, Lung, Thorax

PX256 = 1.0 / 256.0


# --------------------------------------------------------------------------- blobs
def gaussian_sum(gaussians: Sequence[Sequence[float]], a, b):
    """Sum of anisotropic Gaussians ``w * exp(-q / 2)``; each entry is
    ``(cx, cy, sx, sy, theta_rad, w)``."""
    f = np.zeros(np.shape(a), dtype=np.float64)
    for cx, cy, sx, sy, th, w in gaussians:
        q = blob_q((cx, cy, sx, sy, th), a, b)
        f += w * np.exp(-0.5 * q)
    return f


def blob_q(g: Sequence[float], a, b):
    """Squared normalized radius of a point w.r.t. a rotated ellipse (cx, cy, sx, sy, theta)."""
    cx, cy, sx, sy, th = g[:5]
    c, s = math.cos(th), math.sin(th)
    da, db = a - cx, b - cy
    x = (da * c + db * s) / sx
    y = (-da * s + db * c) / sy
    return x * x + y * y


def solve_blob_threshold(lung: Lung, gaussians, area_fraction: float, n: int = 96) -> float:
    """Field level whose super-level set covers ``area_fraction`` of the lung
    (measured on an ``n x n`` grid over the lung's bounding box)."""
    a0, b0, a1, b1 = lung.bbox
    aa, bb = np.meshgrid(np.linspace(a0, a1, n), np.linspace(b0, b1, n))
    inside = lung.contains(aa, bb)
    vals = np.sort(gaussian_sum(gaussians, aa, bb)[inside])[::-1]
    k = int(np.clip(round(area_fraction * vals.size), 1, vals.size))
    return float(vals[k - 1])


def consolidation_field(finding, a, b):
    return gaussian_sum(finding.params["gaussians"], a, b)


def consolidation_mask(thorax: Thorax, finding, a, b):
    """Thresholded blob clipped to the lung (retrocardiac blobs may overlap the heart)."""
    lung = thorax.lung(finding.params["lung"])
    return (consolidation_field(finding, a, b) >= finding.params["threshold"]) & lung.contains(a, b)


def consolidation_coverage(thorax: Thorax, finding, a, b):
    """Soft version of :func:`consolidation_mask` (0.5 exactly at the threshold)."""
    t = finding.params["threshold"]
    lung = thorax.lung(finding.params["lung"])
    soft = np.clip((consolidation_field(finding, a, b) - t) / (0.5 * t) + 0.5, 0.0, 1.0)
    return soft * lung.contains(a, b)


def ground_glass_mask(thorax: Thorax, finding, a, b):
    """Union of the blobs' 1-sigma ellipses, each clipped to its own lung."""
    m = np.zeros(np.shape(a), dtype=bool)
    for blob in finding.params["blobs"]:
        m |= (blob_q(blob, a, b) <= 1.0) & thorax.lung(blob[6]).contains(a, b)
    return m


def ground_glass_field(thorax: Thorax, finding, a, b):
    f = np.zeros(np.shape(a), dtype=np.float64)
    for blob in finding.params["blobs"]:
        f += blob[5] * np.exp(-0.5 * blob_q(blob, a, b)) * thorax.lung(blob[6]).contains(a, b)
    return f


# ------------------------------------------------------------------ atelectasis
def plate_q(plate: dict, a, b):
    """Squared normalized radius w.r.t. an atelectatic plate (rotated ellipse)."""
    g = (plate["cx"], plate["cy"], plate["half_len"], plate["half_thick"], math.radians(plate["angle"]))
    return blob_q(g, a, b)


def atelectasis_mask(thorax: Thorax, plate: dict, a, b):
    return (plate_q(plate, a, b) <= 1.0) & thorax.lung(plate["side"]).contains(a, b)


def atelectasis_coverage(thorax: Thorax, plate: dict, a, b, pix: float):
    r = np.sqrt(plate_q(plate, a, b))
    cov = np.clip((1.0 - r) * plate["half_thick"] / pix + 0.5, 0.0, 1.0)
    return cov * thorax.lung(plate["side"]).contains(a, b)


# ------------------------------------------------------------------- effusion
def effusion_top(lung: Lung, side_params: dict, a):
    """Upper fluid boundary. Free fluid: a meniscus ``h`` above the dome base,
    curving up laterally by ``0.25 h`` (quadratic in lateralness); subpulmonic:
    a layer of ``0.5 h`` above the dome."""
    h = side_params["h"] * lung.height
    if side_params.get("subpulmonic"):
        return lung.dome(a) - 0.5 * h
    return lung.dome_base - h * (1.0 + 0.25 * lung.lateralness(a) ** 2)


def effusion_mask(thorax: Thorax, side: str, side_params: dict, a, b):
    lung = thorax.lung(side)
    return lung.contains(a, b) & (b >= effusion_top(lung, side_params, a))


def effusion_density(thorax: Thorax, side: str, side_params: dict, a, b, pix: float):
    """(coverage, depth fraction) of the fluid: soft meniscus of ~2 px at 256;
    depth 0 at the meniscus, 1 at ``h`` below it (denser downward)."""
    lung = thorax.lung(side)
    top = effusion_top(lung, side_params, a)
    h = max(side_params["h"] * lung.height, 1e-6)
    soft = max(pix, 2 * PX256)
    cov = np.clip((b - top) / soft + 0.5, 0.0, 1.0) * lung.contains(a, b)
    return cov, np.clip((b - top) / h, 0.0, 1.0)


# ---------------------------------------------------------------- pneumothorax
def pneumothorax_gap(lung: Lung, params: dict, b):
    """Crescent width at height ``b``: ``w`` at the apex tapering linearly to 0 at
    ``extent`` of the lung height."""
    rel = lung.relative_height(b)
    return params["w"] * np.clip(1.0 - rel / params["extent"], 0.0, 1.0)


def pneumothorax_depth(lung: Lung, a, b):
    """Horizontal distance inward from the lung's lateral boundary."""
    return (a - lung.lateral_edge(b)) * (-lung.lateral_sign)


def pneumothorax_mask(thorax: Thorax, finding, a, b):
    """Apical-lateral crescent between the chest wall and the visceral pleural line."""
    lung = thorax.lung(finding.side)
    gap = pneumothorax_gap(lung, finding.params, b)
    return lung.contains(a, b) & (gap > 0) & (pneumothorax_depth(lung, a, b) <= gap)


def pleural_line_coverage(thorax: Thorax, finding, a, b, pix: float):
    """The bright visceral pleural line just inside the crescent (1 px at 256)."""
    lung = thorax.lung(finding.side)
    gap = pneumothorax_gap(lung, finding.params, b)
    d = pneumothorax_depth(lung, a, b) - gap - 0.5 * PX256
    cov = np.clip((0.5 * max(PX256, pix) - np.abs(d)) / pix + 0.5, 0.0, 1.0)
    return cov * lung.contains(a, b) * (gap > 0)


# ----------------------------------------------------------------------- edema
def edema_field(thorax: Thorax, finding, a, b):
    """Perihilar haze ``exp(-d^2 / 2 sigma^2)`` around both hila, inside the lungs
    (unit amplitude; the renderer multiplies by ``amplitude``)."""
    s = finding.params["sigma"]
    f = np.zeros(np.shape(a), dtype=np.float64)
    for side in ("right", "left"):
        hx, hy = thorax.hilum(side)
        d2 = (a - hx) ** 2 + (b - hy) ** 2
        f += np.exp(-d2 / (2 * s * s)) * thorax.lung(side).contains(a, b)
    return f


def edema_mask(thorax: Thorax, finding, a, b):
    """Haze thresholded at one sigma from a hilum (``exp(-1/2)``), clipped to the lungs."""
    s = finding.params["sigma"]
    m = np.zeros(np.shape(a), dtype=bool)
    for side in ("right", "left"):
        hx, hy = thorax.hilum(side)
        m |= (np.hypot(a - hx, b - hy) <= s) & thorax.lung(side).contains(a, b)
    return m


# ---------------------------------------------------------------------- nodules
def nodule_mask(inst: dict, a, b):
    """Disk of radius ``r`` (spicules are texture, not part of the mask)."""
    return np.hypot(a - inst["cx"], b - inst["cy"]) <= inst["r"]


# ---------------------------------------------------------- pleural thickening
def thickening_mask(thorax: Thorax, finding, a, b):
    lung = thorax.lung(finding.side)
    p = finding.params
    depth = pneumothorax_depth(lung, a, b)
    return (b >= p["v0"]) & (b <= p["v1"]) & (depth >= 0) & (depth <= p["width"]) & lung.in_ellipse(a, b)


def thickening_box(thorax: Thorax, finding) -> tuple[float, float, float, float]:
    """Anatomical bounding box of the thickened band."""
    lung = thorax.lung(finding.side)
    p = finding.params
    bs = np.linspace(p["v0"], p["v1"], 64)
    edge = lung.lateral_edge(bs)
    inner = edge - lung.lateral_sign * p["width"]
    return float(min(edge.min(), inner.min())), p["v0"], float(max(edge.max(), inner.max())), p["v1"]


# ----------------------------------------------------------------------- ribs
RIB_COUNT = 10


def rib_lateral_u(side: str) -> float:
    return 0.5 + (-0.37 if side == "right" else 0.37)


def rib_point(side: str, k: int, t):
    """Posterior rib ``k`` at parameter ``t`` (0 = spine, 1 = lateral end):
    ``v = 0.16 + 0.055 k + 0.04 t^2``."""
    t = np.asarray(t, dtype=np.float64)
    u = 0.5 + (rib_lateral_u(side) - 0.5) * t
    v = 0.16 + 0.055 * k + 0.04 * t * t
    return u, v


def fracture_site(finding) -> tuple[float, float]:
    u, v = rib_point(finding.side, finding.params["rib"], finding.params["t"])
    return float(u), float(v)


def fracture_box(finding) -> tuple[float, float, float, float]:
    """Anatomical box of a rib fracture: the site +-0.025 (a) and +-0.02 (b)."""
    u, v = fracture_site(finding)
    return u - 0.025, v - 0.02, u + 0.025, v + 0.02


def mediastinum_box(thorax: Thorax) -> tuple[float, float, float, float]:
    """Anatomical box of the (widened) upper mediastinal band."""
    hw = thorax.mediastinum_half_w * thorax.upper_mediastinum_factor
    return thorax.mediastinum_u - hw, 0.08, thorax.mediastinum_u + hw, 0.45


# --------------------------------------------------------------- foreign objects
def object_mask(obj, a, b):
    """Pixels covered by a foreign object (disk, rectangle, beads or ring)."""
    p = obj.params
    if obj.kind in ("button", "coin"):
        return np.hypot(a - p["cx"], b - p["cy"]) <= p["r"]
    if obj.kind == "hair_tie":
        d = np.hypot(a - p["cx"], b - p["cy"])
        return (d <= p["r"]) & (d >= p["r"] - p["thickness"])
    if obj.kind == "clip":
        g = (p["cx"], p["cy"], p["half_w"], p["half_h"], math.radians(p["angle"]))
        c, s = math.cos(g[4]), math.sin(g[4])
        da, db = a - g[0], b - g[1]
        return (np.abs(da * c + db * s) <= g[2]) & (np.abs(-da * s + db * c) <= g[3])
    if obj.kind == "necklace":
        m = np.zeros(np.shape(a), dtype=bool)
        for bx, by in p["beads"]:
            m |= np.hypot(a - bx, b - by) <= p["bead_r"]
        return m
    raise ValueError(f"unknown foreign object {obj.kind!r}")


def object_outline(obj, n: int = 16) -> np.ndarray:
    """(N, 2) anatomical points on the object's outer outline (for boxes / hulls)."""
    p = obj.params
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    if obj.kind in ("button", "coin", "hair_tie"):
        return np.stack([p["cx"] + p["r"] * np.cos(ang), p["cy"] + p["r"] * np.sin(ang)], 1)
    if obj.kind == "clip":
        c, s = math.cos(math.radians(p["angle"])), math.sin(math.radians(p["angle"]))
        pts = []
        for x, y in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            x, y = x * p["half_w"], y * p["half_h"]
            pts.append((p["cx"] + x * c - y * s, p["cy"] + x * s + y * c))
        return np.array(pts)
    if obj.kind == "necklace":
        ang8 = np.linspace(0, 2 * np.pi, 8, endpoint=False)
        return np.concatenate([
            np.stack([bx + p["bead_r"] * np.cos(ang8), by + p["bead_r"] * np.sin(ang8)], 1)
            for bx, by in p["beads"]])
    raise ValueError(f"unknown foreign object {obj.kind!r}")


# Object-CXR annotation type per object kind: 0 rectangle, 1 ellipse, 2 polygon.
OBJECT_ANNOTATION_TYPE = {"button": 1, "coin": 1, "hair_tie": 1, "clip": 0, "necklace": 2}


# ----------------------------------------------------------------------- devices
def device_strokes(thorax: Thorax, device) -> list[tuple[np.ndarray, float, float]]:
    """Stroked polylines ``(points (N, 2), half_width, attenuation)`` of a support device."""
    p = device.params
    m = thorax.mediastinum_u
    metal = p.get("metal", 0.97)
    k = device.kind
    if k == "ett":
        tip = CARINA_V - 0.025 * p["tip_cm"]
        return [(np.array([[m, -0.05], [m, tip]]), 1.2 * PX256, metal)]
    if k == "enteric_tube":
        if p.get("malpositioned"):
            pts = [[m + 0.004, -0.05], [m, CARINA_V], [m - 0.05, 0.40], [m - 0.09, 0.50]]
        else:
            left = thorax.left
            d1 = float(left.dome(m + 0.04))
            pts = [[m + 0.004, -0.05], [m + 0.008, 0.45], [m + 0.04, d1 + 0.01],
                   [0.63, float(left.dome(0.63)) + 0.06]]
        return [(np.array(pts), 1.0 * PX256, metal)]
    if k == "cvc":
        tip = [m - 0.02 + p["tip_du"], 0.35 + p["tip_dv"]]
        if p["route"] == "right_ij":
            pts = [[0.40, -0.02], [0.43, 0.12], [0.46, 0.22], tip]
        else:
            pts = [[0.86, 0.16], [0.70, 0.19], [0.56, 0.22], tip]
        return [(np.array(pts), 0.9 * PX256, metal)]
    if k == "pacemaker":
        gx, gy = 0.72 + p["dx"], 0.22 + p["dy"]
        strokes = [(np.array([[gx - 0.01, gy], [gx + 0.01, gy]]), 0.02, 0.99)]
        hx, hy = thorax.heart.cx, thorax.heart.cy
        rv = [[gx - 0.02, gy + 0.01], [0.62, 0.26], [m + 0.03, 0.33], [m + 0.01, 0.46],
              [hx + 0.02, hy + 0.03], [hx + 0.05, hy + 0.07]]
        strokes.append((np.array(rv), 0.8 * PX256, metal))
        if p["leads"] == 2:
            ra = [[gx - 0.02, gy + 0.01], [0.62, 0.25], [m + 0.02, 0.32], [m - 0.01, 0.44],
                  [hx - 0.05, hy - 0.05]]
            strokes.append((np.array(ra), 0.8 * PX256, metal))
        return strokes
    if k == "sternotomy":
        ang = np.linspace(0, 2 * np.pi, 13)
        out = []
        for v in p["wires"]:
            ring = np.stack([m + 0.008 * np.cos(ang), v + 0.006 * np.sin(ang)], 1)
            out.append((ring, 0.6 * PX256, metal))
            out.append((np.array([[m, v + 0.006], [m + 0.004, v + 0.014]]), 0.6 * PX256, metal))
        return out
    if k == "chest_tube":
        lung = thorax.lung(device.side)
        ls = lung.lateral_sign
        v0 = p["entry_v"]
        e0 = float(lung.lateral_edge(v0))
        mid_v = 0.5 * (v0 + lung.top)
        e1 = float(lung.lateral_edge(mid_v))
        pts = [[e0 + ls * 0.05, v0 + 0.03], [e0 - ls * 0.01, v0], [e1 - ls * 0.03, mid_v],
               [lung.cx + ls * 0.3 * lung.ax, lung.top + 0.05]]
        return [(np.array(pts), 2.0 * PX256, 0.9)]
    raise ValueError(f"unknown device {k!r}")
