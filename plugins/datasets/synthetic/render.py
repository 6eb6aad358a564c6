"""Frontal and lateral image rendering (§4.3).

Output contract: :func:`render_frontal` / :func:`render_lateral` return the
*display* image as ``float32`` array of shape ``(H, W)`` with values in [0, 1]
(1 = white = high attenuation); :func:`to_uint8` gives the 8-bit image
``round(255 * I)`` and :func:`to_uint12` the 12-bit one (``uint16``, 0–4095) used
for DICOM emulation. Frontal images use radiological display: the patient's right
is on the image left, where the optional lead "R" marker sits. Nothing is ever
flipped.

Pipeline: attenuation image ``A`` (anatomy, vessel texture, pathologies,
devices, foreign objects, marker) -> Gaussian blur -> additive noise -> exposure
``I = clip(c * A + b) ** gamma`` -> collimation frame -> burned-in AP text.
Random texture (vessels, noise) comes from ``latent.render_seed`` only, and its
draws do not depend on the findings, so two latents that differ only in their
findings get identical texture and noise.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np

from .geometry import (
    HILA,
    Grid,
    Pose,
    build_thorax,
    edge_coverage,
    polyline_bbox,
    polyline_coverage,
)
from .glyphs import text_strokes, text_width
from .shapes import (
    PX256,
    RIB_COUNT,
    atelectasis_coverage,
    consolidation_coverage,
    device_strokes,
    edema_field,
    effusion_density,
    ground_glass_field,
    pleural_line_coverage,
    pneumothorax_mask,
    rib_lateral_u,
    thickening_mask,
)

Size = Union[int, tuple]


def image_size(size: Size) -> tuple[int, int]:
    """``int`` -> square; ``(H, W)`` tuple -> as given."""
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def pose_of(latent) -> Pose:
    nu = latent.nuisance
    return Pose(nu.scale, nu.rotation_deg, nu.shift_u, nu.shift_v)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Display image in [0, 1] -> ``uint8`` (``round(255 * clip(I))``)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_uint12(image: np.ndarray) -> np.ndarray:
    """Display image in [0, 1] -> 12-bit values (0–4095) in a ``uint16`` array."""
    return np.round(np.clip(image, 0.0, 1.0) * 4095.0).astype(np.uint16)


def gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur with edge padding (sigma in pixels)."""
    if sigma < 0.05:
        return img
    r = max(1, int(math.ceil(3 * sigma)))
    x = np.arange(-r, r + 1, dtype=np.float64)
    k = np.exp(-0.5 * (x / sigma) ** 2)
    k /= k.sum()
    h, w = img.shape
    p = np.pad(img, ((r, r), (0, 0)), mode="edge")
    tmp = sum(k[i] * p[i:i + h] for i in range(2 * r + 1))
    p = np.pad(tmp, ((0, 0), (r, r)), mode="edge")
    return sum(k[i] * p[:, i:i + w] for i in range(2 * r + 1))


# ----------------------------------------------------------------- primitives
def _stroke(layer: np.ndarray, g: Grid, pts: np.ndarray, half_widths, values, mode: str = "max",
            image_space: bool = False) -> None:
    """Paint a polyline with per-segment half-widths and values.

    mode ``"max"``: ``layer = max(layer, value * coverage)``; ``"add"``: add the
    per-pixel max over segments of ``value * coverage`` once (no double counting
    at joints).
    """
    pts = np.asarray(pts, dtype=np.float64)
    n = len(pts) - 1
    hw = np.broadcast_to(np.asarray(half_widths, dtype=np.float64), (n,))
    val = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))
    window = g.image_window if image_space else g.window
    pix = 1.0 / math.sqrt(g.height * g.width) if image_space else g.pix
    win = window(*polyline_bbox(pts, float(hw.max()) + 2 * g.pix))
    if win is None:
        return
    ys, xs = win
    a, b = (g.u[ys, xs], g.v[ys, xs]) if image_space else (g.a[ys, xs], g.b[ys, xs])
    acc = polyline_coverage(a, b, pts, hw, val, pix)
    if mode == "add":
        layer[ys, xs] += acc
    else:
        np.maximum(layer[ys, xs], acc, out=layer[ys, xs])


def _disk(g: Grid, cx: float, cy: float, r: float, pad: float = 0.0):
    """(window, coverage) of an anti-aliased disk; None if off-image."""
    win = g.window(cx - r - pad, cy - r - pad, cx + r + pad, cy + r + pad)
    if win is None:
        return None
    ys, xs = win
    d = np.hypot(g.a[ys, xs] - cx, g.b[ys, xs] - cy)
    return win, edge_coverage(r - d, g.pix), d


def _vessel_branches(rng: np.random.Generator, thorax) -> list[tuple[np.ndarray, str]]:
    """Random-walk vessel branches from both hila (fixed number of draws per branch)."""
    out = []
    for side, (hx, hy) in zip(("right", "left"), HILA):
        lung = thorax.lung(side)
        base = math.pi if side == "right" else 0.0
        for _ in range(int(rng.integers(10, 15))):
            phi = base + float(rng.uniform(-1.25, 1.25)) * (-1 if side == "right" else 1)
            steps = rng.uniform(0.02, 0.03, 12)
            turns = rng.normal(0.0, 0.25, 12)
            n_keep = int(rng.integers(6, 13))
            jit = rng.uniform(-0.01, 0.01, 2)
            pts = [(hx + jit[0], hy + jit[1])]
            for i in range(n_keep):
                phi += turns[i]
                p = (pts[-1][0] + steps[i] * math.cos(phi), pts[-1][1] + steps[i] * math.sin(phi))
                if not lung.contains(np.array(p[0]), np.array(p[1])):
                    break
                pts.append(p)
            if len(pts) >= 2:
                out.append((np.array(pts), side))
    return out


def _draw_vessels(V: np.ndarray, g: Grid, thorax, branches, cephalization: bool) -> None:
    for pts, side in branches:
        n = len(pts) - 1
        t = np.linspace(0.0, 1.0, n)
        hw = (3.0 - 2.0 * t) * 0.5 * PX256
        val = 0.05 - 0.03 * t
        if cephalization:
            lung = thorax.lung(side)
            upper = lung.relative_height(0.5 * (pts[:-1, 1] + pts[1:, 1])) < 1 / 3
            hw = np.where(upper, hw * 1.7, hw)
            val = np.where(upper, val * 1.5, val)
        _stroke(V, g, pts, hw, val, mode="max")


def _draw_ribs(A: np.ndarray, g: Grid, fracture, gain: float) -> None:
    """Posterior rib arcs (+0.06) and fainter anterior arcs (+0.03), as analytic
    bands around ``v(t)`` (vertical distance; the arcs are shallow). A fracture
    cuts a gap around ``t_f`` and offsets the lateral fragment."""
    for side in ("right", "left"):
        u_lat = rib_lateral_u(side)
        span = u_lat - 0.5
        for k in range(RIB_COUNT):
            v_k = 0.16 + 0.055 * k
            a0, a1 = sorted((0.5 + 0.1 * span, u_lat))
            win = g.window(a0, v_k - 0.02, a1, v_k + 0.06)
            if win is not None:
                ys, xs = win
                a, b = g.a[ys, xs], g.b[ys, xs]
                t = (a - 0.5) / span
                vc = v_k + 0.04 * t * t
                cov = edge_coverage(0.006 - np.abs(b - vc), g.pix)
                if fracture is not None and fracture.side == side and fracture.params["rib"] == k:
                    p = fracture.params
                    lateral = t > p["t"]
                    cov = np.where(lateral, edge_coverage(0.006 - np.abs(b - vc - p["offset"]), g.pix), cov)
                    cov = cov * edge_coverage(np.abs(t - p["t"]) * abs(span) - p["gap"] / 2, g.pix)
                cov = cov * edge_coverage((t - 0.1) * abs(span), g.pix) * edge_coverage((1 - t) * abs(span), g.pix)
                A[ys, xs] += 0.06 * gain * cov
            if k < 8:
                win = g.window(min(u_lat, 0.5 + 0.14 * np.sign(span)), v_k + 0.03,
                               max(u_lat, 0.5 + 0.14 * np.sign(span)), v_k + 0.15)
                if win is None:
                    continue
                ys, xs = win
                a, b = g.a[ys, xs], g.b[ys, xs]
                t = (u_lat - a) / (span * (0.23 / 0.37))
                vc = v_k + 0.05 + 0.08 * np.clip(t, 0, 1) ** 1.3
                cov = edge_coverage(0.005 - np.abs(b - vc), g.pix)
                cov = cov * edge_coverage(t * 0.23, g.pix) * edge_coverage((1 - t) * 0.23, g.pix)
                A[ys, xs] += 0.03 * gain * cov


# ------------------------------------------------------------------- frontal
def frontal_attenuation(latent, size: Size = 256) -> tuple[np.ndarray, Grid, np.random.Generator]:
    """Attenuation image ``A`` (float64, before blur/noise/exposure), its grid and
    the render generator positioned after the texture draws."""
    h, w = image_size(size)
    g = Grid(h, w, pose_of(latent))
    th = build_thorax(latent)
    an = latent.anatomy
    rng = np.random.Generator(np.random.PCG64(latent.render_seed))
    branches = _vessel_branches(rng, th)
    a, b = g.a, g.b
    gain = latent.contrast_gain

    A = np.full((h, w), 0.02, dtype=np.float64)
    body = th.in_body(a, b)
    A[body] = an.att_soft
    below = body & (b > th.diaphragm(a))
    A[below] = an.att_abdomen
    lungs = th.any_lung(a, b)
    A[lungs] = an.att_lung
    heart_top = th.heart.cy - th.heart.by
    half = np.where(b < heart_top, th.mediastinum_half_w * th.upper_mediastinum_factor, th.mediastinum_half_w)
    med = body & (np.abs(a - th.mediastinum_u) <= half) & (b >= 0.08) & (b <= 0.62)
    A[med] = an.att_mediastinum
    kx, ky, kr = th.knob
    A[np.hypot(a - kx, b - ky) <= kr] = an.att_mediastinum
    heart = th.heart.contains(a, b)
    A[heart] = an.att_heart
    A[heart & lungs] = an.att_heart - 0.04
    if th.gastric_bubble:
        A[below & (np.hypot(a - 0.68, b - (th.left.dome_base + 0.05)) <= 0.035)] = 0.25
    trachea = body & (np.abs(a - th.mediastinum_u) <= 0.01) & (b >= 0.02) & (b <= 0.31)
    A[trachea] = 0.35
    bron = np.zeros_like(A)
    cx, cy = th.carina
    _stroke(bron, g, np.array([[cx, cy], [0.45, 0.38]]), 0.008, 1.0)
    _stroke(bron, g, np.array([[cx, cy], [0.555, 0.39]]), 0.008, 1.0)
    A += (0.30 - A) * bron * 0.7

    bones = np.zeros_like(A)
    _draw_ribs(bones, g, latent.finding("rib_fracture"), an.bone_gain)
    _stroke(bones, g, np.array([[0.42, 0.16], [0.18, 0.12]]), 0.01, 0.10 * an.bone_gain)
    _stroke(bones, g, np.array([[0.58, 0.16], [0.82, 0.12]]), 0.01, 0.10 * an.bone_gain)
    spine = (np.abs(a - 0.5) <= 0.03) & body
    bones += spine * 0.06 * an.bone_gain * (0.75 + 0.25 * np.cos(2 * np.pi * b / 0.045))
    A += bones * body

    ptx = latent.finding("pneumothorax")
    ptx_mask = pneumothorax_mask(th, ptx, a, b) if ptx is not None else np.zeros_like(lungs)
    edema = latent.finding("edema")
    V = np.zeros_like(A)
    _draw_vessels(V, g, th, branches, cephalization=bool(edema is not None and edema.params.get("cephalization")))
    A += V * (lungs & ~heart & ~ptx_mask)

    for f in latent.findings:
        _paint_finding(A, g, th, f, gain, an)
    for dev in latent.devices:
        for pts, hw, val in device_strokes(th, dev):
            _stroke(A, g, pts, hw, val, mode="max")
    for obj in latent.foreign_objects:
        _paint_object(A, g, obj)
    if latent.nuisance.marker:
        layer = np.zeros_like(A)
        for pts in text_strokes("R", 0.05, 0.04, 0.04, aspect=h / w):
            _stroke(layer, g, pts, max(0.004, 0.6 / min(h, w)), 1.0, image_space=True)
        A = np.maximum(A, 0.95 * layer)
    return A, g, rng


def _cert(f) -> float:
    return 0.5 if f.certainty == "uncertain" else 1.0


def _paint_finding(A, g: Grid, th, f, gain: float, an) -> None:
    """Add one finding to the attenuation image (contrast x0.5 when uncertain, x gain)."""
    a, b = g.a, g.b
    k = gain * _cert(f)
    p = f.params
    if f.kind == "edema":
        A += k * p["amplitude"] * edema_field(th, f, a, b)
        for x, y, dx in p.get("kerley", []):
            _stroke(A, g, np.array([[x, y], [x + dx, y]]), 0.4 * PX256, 0.05 * k, mode="add")
    elif f.kind == "consolidation":
        cov = consolidation_coverage(th, f, a, b)
        A += k * p["delta"] * cov
        if p.get("bronchograms"):
            br = np.zeros_like(A)
            for pts in p["bronchograms"]:
                _stroke(br, g, np.array(pts), 0.75 * PX256, 1.0)
            A -= 0.06 * k * br * cov
        if p.get("silhouette"):
            q = np.sqrt(((a - th.heart.cx) / th.heart.ax) ** 2 + ((b - th.heart.cy) / th.heart.by) ** 2)
            near = np.exp(-(((q - 1.0) * th.heart.ax) / 0.02) ** 2)
            A += (an.att_heart - A) * np.clip(cov * near * 0.8 * k, 0, 1)
    elif f.kind == "ground_glass":
        A += k * ground_glass_field(th, f, a, b)
    elif f.kind == "atelectasis":
        for plate in p["plates"]:
            A += k * p["delta"] * atelectasis_coverage(th, plate, a, b, g.pix)
    elif f.kind == "nodule":
        for inst in p["instances"]:
            reach = inst["r"] * (2.0 if inst["spikes"] else 1.0)
            res = _disk(g, inst["cx"], inst["cy"], reach)
            if res is None:
                continue
            (ys, xs), _, d = res
            A[ys, xs] += k * inst["delta"] * edge_coverage(inst["r"] - d, g.pix)
            for ang, ln in inst["spikes"]:
                end = (inst["cx"] + math.cos(ang) * inst["r"] * (1 + ln), inst["cy"] + math.sin(ang) * inst["r"] * (1 + ln))
                _stroke(A, g, np.array([[inst["cx"], inst["cy"]], end]), 0.6 * PX256, 0.6 * k * inst["delta"], mode="add")
    elif f.kind == "effusion":
        for side, sp in p["sides"].items():
            cov, depth = effusion_density(th, side, sp, a, b, g.pix)
            # Raise towards the fluid level (never above it: no saturation where
            # the fluid projects over the heart or bones).
            A += k * np.clip(0.58 + 0.04 * depth - A, 0.0, None) * cov
    elif f.kind == "pneumothorax":
        m = pneumothorax_mask(th, f, a, b)
        A += k * (0.10 - an.att_lung) * m
        A += k * 0.15 * pleural_line_coverage(th, f, a, b, g.pix) * ~m
    elif f.kind == "pleural_thickening":
        A += k * p["delta"] * thickening_mask(th, f, a, b)
    # cardiomegaly, widened mediastinum: geometry (build_thorax); fracture: ribs.


def _paint_object(A, g: Grid, obj) -> None:
    p = obj.params
    if obj.kind in ("button", "coin"):
        res = _disk(g, p["cx"], p["cy"], p["r"])
        if res is None:
            return
        (ys, xs), cov, _ = res
        A[ys, xs] += p["delta"] * cov
        if obj.kind == "button":
            n = p["holes"]
            for i in range(n):
                ang = 2 * math.pi * i / n + math.pi / 4
                hx, hy = p["cx"] + 0.35 * p["r"] * math.cos(ang), p["cy"] + 0.35 * p["r"] * math.sin(ang)
                hres = _disk(g, hx, hy, 0.15 * p["r"])
                if hres is not None:
                    (hy_, hx_), hcov, _ = hres
                    A[hy_, hx_] -= 0.3 * hcov
    elif obj.kind == "hair_tie":
        res = _disk(g, p["cx"], p["cy"], p["r"])
        if res is None:
            return
        (ys, xs), outer, d = res
        inner = edge_coverage(d - (p["r"] - p["thickness"]), g.pix)
        A[ys, xs] += p["delta"] * np.minimum(outer, inner)
    elif obj.kind == "clip":
        c, s = math.cos(math.radians(p["angle"])), math.sin(math.radians(p["angle"]))
        ext = math.hypot(p["half_w"], p["half_h"])
        win = g.window(p["cx"] - ext, p["cy"] - ext, p["cx"] + ext, p["cy"] + ext)
        if win is None:
            return
        ys, xs = win
        da, db = g.a[ys, xs] - p["cx"], g.b[ys, xs] - p["cy"]
        x, y = da * c + db * s, -da * s + db * c
        cov = np.minimum(edge_coverage(p["half_w"] - np.abs(x), g.pix), edge_coverage(p["half_h"] - np.abs(y), g.pix))
        A[ys, xs] += p["delta"] * cov
    elif obj.kind == "necklace":
        for bx, by in p["beads"]:
            res = _disk(g, bx, by, p["bead_r"])
            if res is not None:
                (ys, xs), cov, _ = res
                A[ys, xs] += p["delta"] * cov


def _finish(A: np.ndarray, g: Grid, latent, rng: np.random.Generator, ap_text: bool) -> np.ndarray:
    nu = latent.nuisance
    h, w = A.shape
    noise = rng.standard_normal((h, w))
    A = gaussian_blur(A, nu.blur_sigma * h / 256.0)
    A = A + nu.noise_sigma * noise
    c = nu.contrast * (0.9 if latent.view == "AP" else 1.0)
    I = np.clip(c * A + nu.brightness, 0.0, 1.0) ** nu.gamma
    if nu.collimation:
        l, t, r, bm = nu.collimation
        frame = (g.u < l) | (g.u > 1 - r) | (g.v < t) | (g.v > 1 - bm)
        I[frame] = 0.92
    if ap_text and nu.ap_text:
        height = 0.035
        tw = text_width(nu.ap_text, height, aspect=h / w)
        layer = np.zeros_like(I)
        for pts in text_strokes(nu.ap_text, 0.96 - tw, 0.04, height, aspect=h / w):
            _stroke(layer, g, pts, max(0.0035, 0.6 / min(h, w)), 1.0, image_space=True)
        I = np.maximum(I, 0.98 * layer)
    return I.astype(np.float32)


def render_frontal(latent, size: Size = 256) -> np.ndarray:
    """Frontal (PA/AP) display image, ``float32 (H, W)`` in [0, 1]."""
    A, g, rng = frontal_attenuation(latent, size)
    return _finish(A, g, latent, rng, ap_text=True)


# ------------------------------------------------------------------- lateral
def render_lateral(latent, size: Size = 256) -> np.ndarray:
    """Lateral companion view, ``float32 (H, W)`` in [0, 1].

    Patient facing image left (anterior = small u). Body profile, one lung field,
    heart anterior-inferior, spine posterior; pathologies are projected by height
    only (effusion fills the posterior costophrenic sulcus, consolidation /
    nodules / atelectasis appear at the matching height). Fractures, pleural
    thickening, widened mediastinum and foreign objects are not drawn.
    """
    h, w = image_size(size)
    g = Grid(h, w, pose_of(latent))
    th = build_thorax(latent)
    an = latent.anatomy
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([latent.render_seed, 1])))
    a, b = g.a, g.b
    gain = latent.contrast_gain

    lung_cx, lung_cy, lung_ax = 0.52, 0.45, 0.27
    top = th.right.top
    base = 0.5 * (th.right.dome_base + th.left.dome_base) + 0.02
    lung_by = (base + 0.03 - top) / 2
    lung_cy = top + lung_by

    def diaphragm(x):
        return base - 0.04 * np.clip(1 - ((x - 0.5) / 0.3) ** 2, 0, None) + 0.06 * (x - 0.5)

    body = ((a - 0.5) / 0.36) ** 2 + ((b - 0.52) / 0.46) ** 2 <= 1.0
    lung = (((a - lung_cx) / lung_ax) ** 2 + ((b - lung_cy) / lung_by) ** 2 <= 1.0) & (b <= diaphragm(a))
    A = np.full((h, w), 0.02)
    A[body] = an.att_soft
    A[body & (b > diaphragm(a))] = an.att_abdomen
    A[lung] = an.att_lung + 0.03
    hw = 0.12 * th.heart.ax / (0.44 * th.thoracic_width / 2)
    heart = ((a - 0.36) / hw) ** 2 + ((b - 0.60) / 0.13) ** 2 <= 1.0
    A[heart & body] = an.att_heart
    spine = body & (np.abs(a - 0.84) <= 0.04)
    A += spine * 0.15 * an.bone_gain * (0.7 + 0.3 * np.cos(2 * np.pi * b / 0.045))
    A += 0.08 * (body & (np.abs(a - 0.16) <= 0.01) & (b > 0.25) & (b < 0.62))
    trachea = np.zeros_like(A)
    _stroke(trachea, g, np.array([[0.47, 0.02], [0.50, 0.33]]), 0.012, 1.0)
    A += (0.35 - A) * trachea * body

    V = np.zeros_like(A)
    for _ in range(10):
        phi = float(rng.uniform(0, 2 * math.pi))
        pts = [(0.50, 0.42)]
        for st in rng.uniform(0.02, 0.03, 6):
            phi += float(rng.normal(0, 0.3))
            pts.append((pts[-1][0] + st * math.cos(phi), pts[-1][1] + st * math.sin(phi)))
        _stroke(V, g, np.array(pts), 0.8 * PX256, 0.03)
    A += V * lung * ~heart

    lung_h = base - top

    def height_of(finding_lung, v):  # frontal height -> lateral height
        return top + finding_lung.relative_height(v) * lung_h

    for f in latent.findings:
        k = gain * _cert(f)
        p = f.params
        if f.kind == "effusion":
            hmax = max(sp["h"] for sp in p["sides"].values())
            post = np.clip((a - 0.3) / 0.5, 0, 1)
            fluid = lung & (b >= diaphragm(a) - hmax * lung_h * (0.2 + 0.8 * post ** 2))
            A += k * np.clip(0.58 - A, 0.0, None) * fluid
        elif f.kind == "consolidation":
            l_f = th.lung(p["lung"])
            cy = float(height_of(l_f, np.mean([gg[1] for gg in p["gaussians"]])))
            s = math.sqrt(p["area_fraction"] * 0.1 / math.pi)
            A += k * p["delta"] * np.exp(-0.5 * (((a - p["lat_u"]) / s) ** 2 + ((b - cy) / s) ** 2)) * lung
        elif f.kind == "nodule":
            l_f = th.lung(f.side)
            for inst in p["instances"]:
                cy = float(height_of(l_f, inst["cy"]))
                d = np.hypot(a - inst["lat_u"], b - cy)
                A += k * inst["delta"] * edge_coverage(inst["r"] - d, g.pix)
        elif f.kind == "atelectasis":
            for plate in p["plates"]:
                cy = float(height_of(th.lung(plate["side"]), plate["cy"]))
                q = ((a - p["lat_u"]) / (plate["half_len"] * 1.5)) ** 2 + ((b - cy) / plate["half_thick"]) ** 2
                A += k * p["delta"] * (q <= 1.0) * lung
        elif f.kind == "pneumothorax":
            rel = np.sqrt(((a - lung_cx) / lung_ax) ** 2 + ((b - lung_cy) / lung_by) ** 2)
            band = lung & ((1 - rel) * lung_by < p["w"]) & (b < top + p["extent"] * 0.5 * lung_h)
            A += k * (0.10 - an.att_lung) * band
        elif f.kind == "edema":
            A += k * p["amplitude"] * np.exp(-((a - 0.50) ** 2 + (b - 0.42) ** 2) / (2 * 0.12 ** 2)) * lung
        elif f.kind == "ground_glass":
            amp = float(np.mean([bl[5] for bl in p["blobs"]]))
            A += k * amp * np.exp(-((b - (top + 0.75 * lung_h)) / 0.08) ** 2) * lung

    for dev in latent.devices:
        for pts in _lateral_device(dev, base):
            _stroke(A, g, pts, 1.2 * PX256, 0.97)
    return _finish(A, g, latent, rng, ap_text=False)


def _lateral_device(dev, base: float) -> list[np.ndarray]:
    if dev.kind == "ett":
        tip = 0.31 - 0.025 * dev.params["tip_cm"]
        return [np.array([[0.465, -0.05], [0.49, tip]])]
    if dev.kind == "enteric_tube":
        return [np.array([[0.47, -0.05], [0.55, 0.45], [0.50, base + 0.06]])]
    if dev.kind == "cvc":
        return [np.array([[0.45, -0.02], [0.46, 0.20], [0.44, 0.35]])]
    if dev.kind == "pacemaker":
        return [np.array([[0.20, 0.22], [0.24, 0.22]]), np.array([[0.22, 0.23], [0.34, 0.45], [0.36, 0.62]])]
    if dev.kind == "sternotomy":
        return [np.array([[0.155, v], [0.17, v + 0.005]]) for v in dev.params["wires"]]
    if dev.kind == "chest_tube":
        return [np.array([[0.75, 0.65], [0.70, 0.40], [0.55, 0.20]])]
    return []


__all__ = [
    "frontal_attenuation", "gaussian_blur", "image_size", "pose_of", "render_frontal",
    "render_lateral", "to_uint8", "to_uint12",
]
