"""Continuous geometry of the synthetic thorax (§4.2–§4.3).

Two coordinate systems, both normalized to [0, 1]:

* **image** coordinates ``(u, v)``: ``u = x / W``, ``v = y / H`` with pixel
  coordinates whose origin is the top-left pixel *corner* (x right, y down);
  pixel ``(row i, col j)`` has its centre at ``u = (j + 0.5) / W``,
  ``v = (i + 0.5) / H``;
* **anatomical** coordinates ``(a, b)``: the same frame before the patient pose
  (habitus scale, rotation, translation) is applied. Every anatomical structure,
  pathology, device and object is defined here; patient right is ``a < 0.5``
  (image left), since frontal views are displayed radiologically.

:class:`Pose` maps anatomical to image coordinates:
``(u, v) = c + t + s * R(theta) @ ((a, b) - c)`` with ``c = (0.5, 0.5)`` and
``R = [[cos, -sin], [sin, cos]]`` (v points down, so positive angles turn
clockwise on screen). Rendering and targets both evaluate shapes at the
anatomical position of each pixel centre, so masks match images exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np

HILA = ((0.43, 0.44), (0.57, 0.44))  # (right hilum, left hilum) in anatomical coords
CARINA_V = 0.31


@dataclass(frozen=True)
class Pose:
    """Similarity transform anatomical -> image (scale, rotation in degrees, shift)."""

    scale: float = 1.0
    rotation_deg: float = 0.0
    shift_u: float = 0.0
    shift_v: float = 0.0

    def _cs(self) -> tuple[float, float]:
        t = math.radians(self.rotation_deg)
        return math.cos(t), math.sin(t)

    def to_image(self, a, b):
        c, s = self._cs()
        da, db = np.asarray(a, dtype=np.float64) - 0.5, np.asarray(b, dtype=np.float64) - 0.5
        u = 0.5 + self.shift_u + self.scale * (c * da - s * db)
        v = 0.5 + self.shift_v + self.scale * (s * da + c * db)
        return u, v

    def to_anatomy(self, u, v):
        c, s = self._cs()
        du = (np.asarray(u, dtype=np.float64) - 0.5 - self.shift_u) / self.scale
        dv = (np.asarray(v, dtype=np.float64) - 0.5 - self.shift_v) / self.scale
        return 0.5 + c * du + s * dv, 0.5 - s * du + c * dv


class Grid:
    """Pixel grid of an ``height x width`` image with per-pixel anatomical coords.

    ``u, v, a, b`` are float64 arrays of shape (H, W) (pixel centres). ``pix`` is
    the anatomical length of one pixel (geometric mean of both axes), used for
    anti-aliased edges.
    """

    def __init__(self, height: int, width: int, pose: Pose = Pose()):
        if height < 1 or width < 1:
            raise ValueError(f"image size must be positive, got {height}x{width}")
        self.height, self.width, self.pose = int(height), int(width), pose
        u = (np.arange(width, dtype=np.float64) + 0.5) / width
        v = (np.arange(height, dtype=np.float64) + 0.5) / height
        self.u, self.v = np.meshgrid(u, v)
        self.a, self.b = pose.to_anatomy(self.u, self.v)
        self.pix = 1.0 / (math.sqrt(height * width) * pose.scale)

    def window(self, a0: float, b0: float, a1: float, b1: float,
               margin_px: int = 2) -> Optional[tuple[slice, slice]]:
        """Row/column slices covering an anatomical box (None if off-image)."""
        ca = np.array([a0, a1, a0, a1])
        cb = np.array([b0, b0, b1, b1])
        u, v = self.pose.to_image(ca, cb)
        x0 = max(int(math.floor(u.min() * self.width)) - margin_px, 0)
        x1 = min(int(math.ceil(u.max() * self.width)) + margin_px, self.width)
        y0 = max(int(math.floor(v.min() * self.height)) - margin_px, 0)
        y1 = min(int(math.ceil(v.max() * self.height)) + margin_px, self.height)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1)

    def image_window(self, u0: float, v0: float, u1: float, v1: float,
                     margin_px: int = 2) -> Optional[tuple[slice, slice]]:
        """Row/column slices covering an image-coordinate box."""
        x0 = max(int(math.floor(u0 * self.width)) - margin_px, 0)
        x1 = min(int(math.ceil(u1 * self.width)) + margin_px, self.width)
        y0 = max(int(math.floor(v0 * self.height)) - margin_px, 0)
        y1 = min(int(math.ceil(v1 * self.height)) + margin_px, self.height)
        if x0 >= x1 or y0 >= y1:
            return None
        return slice(y0, y1), slice(x0, x1)

    def box_to_pixels(self, a0: float, b0: float, a1: float, b1: float) -> tuple[float, float, float, float]:
        """Pixel-corner bbox ``[x0, y0, x1, y1]`` of an anatomical rectangle after the pose,
        clipped to the image."""
        u, v = self.pose.to_image(np.array([a0, a1, a0, a1]), np.array([b0, b0, b1, b1]))
        x0 = float(np.clip(u.min() * self.width, 0, self.width))
        x1 = float(np.clip(u.max() * self.width, 0, self.width))
        y0 = float(np.clip(v.min() * self.height, 0, self.height))
        y1 = float(np.clip(v.max() * self.height, 0, self.height))
        return x0, y0, x1, y1

    def points_to_pixels(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) anatomical points -> (N, 2) pixel coordinates (x, y)."""
        u, v = self.pose.to_image(pts[:, 0], pts[:, 1])
        return np.stack([u * self.width, v * self.height], axis=1)


@dataclass(frozen=True)
class Lung:
    """One lung field: ellipse cut below by a hemidiaphragm dome.

    ``side`` is the patient side; the right lung lies at ``a < 0.5``. The dome is
    ``b = dome_base - dome_rise * (1 - ((a - cx) / ax)^2)`` (highest at the lung
    centre line, lowest at the costophrenic angles).
    """

    side: str
    cx: float
    cy: float
    ax: float
    by: float
    dome_base: float
    dome_rise: float = 0.05

    @property
    def lateral_sign(self) -> float:
        return -1.0 if self.side == "right" else 1.0

    @property
    def top(self) -> float:
        return self.cy - self.by

    @property
    def height(self) -> float:
        return self.dome_base - self.top

    def dome(self, a):
        x = (np.asarray(a, dtype=np.float64) - self.cx) / self.ax
        return self.dome_base - self.dome_rise * np.clip(1.0 - x * x, 0.0, None)

    def in_ellipse(self, a, b):
        return ((a - self.cx) / self.ax) ** 2 + ((b - self.cy) / self.by) ** 2 <= 1.0

    def contains(self, a, b):
        return self.in_ellipse(a, b) & (b <= self.dome(a))

    def lateral_edge(self, b):
        """Anatomical ``a`` of the lung's outer (lateral) boundary at height ``b``."""
        r = np.clip(1.0 - ((np.asarray(b, dtype=np.float64) - self.cy) / self.by) ** 2, 0.0, None)
        return self.cx + self.lateral_sign * self.ax * np.sqrt(r)

    def lateralness(self, a):
        """0 at the medial edge of the lung's bounding box, 1 at the lateral edge."""
        return np.clip(0.5 + self.lateral_sign * (np.asarray(a) - self.cx) / (2 * self.ax), 0.0, 1.0)

    def relative_height(self, b):
        """0 at the apex, 1 at the costophrenic angle."""
        return (np.asarray(b) - self.top) / self.height

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        return self.cx - self.ax, self.top, self.cx + self.ax, self.dome_base

    def area(self, n: int = 200) -> float:
        """Area of the lung field (numerical, ``n x n`` samples of the bbox)."""
        a0, b0, a1, b1 = self.bbox
        aa, bb = np.meshgrid(np.linspace(a0, a1, n), np.linspace(b0, b1, n))
        return float(self.contains(aa, bb).mean() * (a1 - a0) * (b1 - b0))


@dataclass(frozen=True)
class Ellipse:
    cx: float
    cy: float
    ax: float
    by: float

    def contains(self, a, b):
        return ((a - self.cx) / self.ax) ** 2 + ((b - self.cy) / self.by) ** 2 <= 1.0


@dataclass(frozen=True)
class Thorax:
    """Effective (posed-free) thorax of one study after view, inspiration and
    pathology effects (atelectatic volume loss, mediastinal shift, CTR)."""

    right: Lung
    left: Lung
    heart: Ellipse
    mediastinum_u: float          # centre line of the mediastinum (0.5 + shift)
    mediastinum_half_w: float
    upper_mediastinum_factor: float  # widening of the band above the heart
    knob: tuple[float, float, float]  # aortic knob (a, b, r)
    body: tuple[float, float, float, float, float]  # superellipse (cx, cy, ax, by, p)
    gastric_bubble: bool

    def lung(self, side: str) -> Lung:
        if side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        return self.right if side == "right" else self.left

    def hilum(self, side: str) -> tuple[float, float]:
        return HILA[0] if side == "right" else HILA[1]

    @property
    def carina(self) -> tuple[float, float]:
        return self.mediastinum_u, CARINA_V

    def in_body(self, a, b):
        cx, cy, ax, by, p = self.body
        return np.abs((a - cx) / ax) ** p + np.abs((b - cy) / by) ** p <= 1.0

    def diaphragm(self, a):
        """Height of the diaphragm line across the whole width (right dome for
        ``a`` left of the mediastinum, left dome otherwise)."""
        a = np.asarray(a, dtype=np.float64)
        return np.where(a < self.mediastinum_u, self.right.dome(a), self.left.dome(a))

    def any_lung(self, a, b):
        return self.right.contains(a, b) | self.left.contains(a, b)

    @property
    def thoracic_width(self) -> float:
        """Outer lung-to-lung width T used for the cardiothoracic ratio."""
        return (self.left.cx + self.left.ax) - (self.right.cx - self.right.ax)


ZONES = ("upper", "middle", "lower", "apical", "perihilar", "retrocardiac", "lateral")


def zone_contains(thorax: Thorax, side: str, zone: str, a, b):
    """Boolean mask of a lung zone (§4.3): thirds by height, apical = top 15 %,
    lateral = outer 30 % of lung width, perihilar = within 0.08 of the hilum,
    retrocardiac = left lower zone overlapping the heart."""
    lung = thorax.lung(side)
    inside = lung.contains(a, b)
    rel = lung.relative_height(b)
    if zone == "upper":
        z = rel < 1 / 3
    elif zone == "middle":
        z = (rel >= 1 / 3) & (rel < 2 / 3)
    elif zone == "lower":
        z = rel >= 2 / 3
    elif zone == "apical":
        z = rel < 0.15
    elif zone == "lateral":
        z = lung.lateralness(a) >= 0.7
    elif zone == "perihilar":
        hx, hy = thorax.hilum(side)
        z = np.hypot(a - hx, b - hy) <= 0.08
    elif zone == "retrocardiac":
        if side != "left":
            raise ValueError("the retrocardiac zone exists only on the left")
        z = (rel >= 2 / 3) & thorax.heart.contains(a, b)
    else:
        raise ValueError(f"unknown zone {zone!r}")
    return inside & z


def edge_coverage(signed_inside, pix: float):
    """Anti-aliased coverage from a signed distance (positive inside), one pixel ramp."""
    return np.clip(signed_inside / pix + 0.5, 0.0, 1.0)


def polyline_coverage(a, b, points: np.ndarray, half_widths, values, pix: float):
    """Per-pixel max over segments of ``value * coverage`` of a stroked polyline.

    ``points`` is (N, 2); ``half_widths`` and ``values`` are scalars or one value
    per segment. All segments are evaluated at once ((pixels, segments) arrays).
    """
    pts = np.asarray(points, dtype=np.float64)
    n = len(pts) - 1
    hw = np.broadcast_to(np.asarray(half_widths, dtype=np.float64), (n,))[None, :]
    val = np.broadcast_to(np.asarray(values, dtype=np.float64), (n,))[None, :]
    pa, pb = np.reshape(a, (-1, 1)), np.reshape(b, (-1, 1))
    x0, y0 = pts[:-1, 0][None, :], pts[:-1, 1][None, :]
    dx, dy = (pts[1:, 0] - pts[:-1, 0])[None, :], (pts[1:, 1] - pts[:-1, 1])[None, :]
    l2 = np.maximum(dx * dx + dy * dy, 1e-18)
    t = np.clip(((pa - x0) * dx + (pb - y0) * dy) / l2, 0.0, 1.0)
    d = np.hypot(pa - (x0 + t * dx), pb - (y0 + t * dy))
    return (edge_coverage(hw - d, pix) * val).max(axis=1).reshape(np.shape(a))


def polyline_bbox(points: np.ndarray, pad: float) -> tuple[float, float, float, float]:
    pts = np.asarray(points, dtype=np.float64)
    return (float(pts[:, 0].min() - pad), float(pts[:, 1].min() - pad),
            float(pts[:, 0].max() + pad), float(pts[:, 1].max() + pad))


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise in x-right/y-up terms) by the monotone chain."""
    pts = sorted(set(map(tuple, np.asarray(points, dtype=np.float64).tolist())))
    if len(pts) <= 2:
        return np.array(pts)

    def cross(o, p, q):
        return (p[0] - o[0]) * (q[1] - o[1]) - (p[1] - o[1]) * (q[0] - o[0])

    lower: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    upper: list = []
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


def build_thorax(latent) -> Thorax:
    """Effective thorax of a study (duck-typed :class:`.latent.StudyLatent`).

    Applies, in order: inspiration (lung heights scaled from the apex), AP view
    (lung bases raised 0.03, heart magnified x1.08), atelectatic volume loss
    (ipsilateral dome raised), mediastinal shift (large effusion / tension
    pneumothorax), cardiomegaly CTR and widened upper mediastinum.
    """
    an, nu = latent.anatomy, latent.nuisance
    ap = latent.view == "AP"
    raise_by_side = {"right": 0.0, "left": 0.0}
    shift = 0.0
    ctr = an.ctr
    upper_factor = 1.0
    for f in latent.findings:
        if f.kind == "atelectasis":
            for side, r in f.params.get("dome_raise", {}).items():
                raise_by_side[side] += r
        elif f.kind in ("effusion", "pneumothorax"):
            shift += f.params.get("shift", 0.0)
        elif f.kind == "cardiomegaly":
            ctr = f.params["ctr"]
        elif f.kind == "widened_mediastinum":
            upper_factor = f.params["factor"]

    def lung(side, cx, cy, ax, by, dome):
        top = cy - by
        by2 = by * nu.inspiration
        dome2 = top + (dome - top) * nu.inspiration - (0.03 if ap else 0.0) - raise_by_side[side]
        return Lung(side, cx, top + by2, ax, by2, dome2)

    right = lung("right", an.r_cx, an.r_cy, an.r_ax, an.r_by, an.r_dome)
    left = lung("left", an.l_cx, an.l_cy, an.l_ax, an.l_by, an.l_dome)
    t_width = (left.cx + left.ax) - (right.cx - right.ax)
    mag = 1.08 if ap else 1.0
    heart = Ellipse(an.heart_cx + shift, an.heart_cy, ctr * t_width / 2 * mag, an.heart_half_h * mag)
    return Thorax(
        right=right, left=left, heart=heart,
        mediastinum_u=0.5 + shift, mediastinum_half_w=an.med_half_w,
        upper_mediastinum_factor=upper_factor,
        knob=(0.57 + shift, 0.30, an.knob_r),
        body=(0.50, 0.52, an.body_ax, an.body_by, 2.5),
        gastric_bubble=an.gastric_bubble,
    )


def sample_point(rng: np.random.Generator, predicate, bbox: tuple[float, float, float, float],
                 fallback: tuple[float, float], batch: int = 64, tries: int = 20) -> tuple[float, float]:
    """Uniform point in ``bbox`` satisfying ``predicate(a, b)`` (rejection sampling).

    Consumes a fixed number of draws per try; returns ``fallback`` if all fail.
    """
    a0, b0, a1, b1 = bbox
    for _ in range(tries):
        a = rng.uniform(a0, a1, batch)
        b = rng.uniform(b0, b1, batch)
        ok = np.flatnonzero(predicate(a, b))
        if ok.size:
            return float(a[ok[0]]), float(b[ok[0]])
    return fallback
