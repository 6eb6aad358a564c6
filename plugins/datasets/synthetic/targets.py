"""Targets derived from the latent: masks, boxes, image-truth labels (§4.4).

Conventions:

* masks are ``bool`` arrays of shape ``(H, W)``, rasterized from the continuous
  shapes at the requested resolution: a pixel is in the mask when its *centre*
  lies in the shape (same rule and same pose as the renderer, so masks sit
  exactly on the rendered pathology);
* boxes are ``(x0, y0, x1, y1)`` floats in pixel units, origin at the top-left
  pixel corner, x to the right, y down. Boxes derived from masks are
  end-exclusive integers: a mask covering columns ``c0..c1`` (inclusive) gives
  ``x0 = c0``, ``x1 = c1 + 1`` (so ``x1 - x0`` is the width in pixels). Analytic
  boxes (rib fracture, widened mediastinum, pleural thickening, foreign objects)
  are the bounding box of the transformed continuous shape, clipped to the image;
* ``box_source`` says which: ``"component"`` (one 8-connected component of the
  finding's mask, RSNA style), ``"mask"`` (bbox of one instance's mask) or
  ``"analytic"``.

Regions whose mask is empty at the requested resolution (e.g. a tiny granuloma at
64 px) are omitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Optional

import numpy as np

from .geometry import Grid, build_thorax, convex_hull
from .lexicon import OBSERVATIONS, PATHOLOGIES
from .render import image_size, pose_of
from .shapes import (
    OBJECT_ANNOTATION_TYPE,
    atelectasis_mask,
    consolidation_mask,
    edema_mask,
    effusion_mask,
    fracture_box,
    ground_glass_mask,
    mediastinum_box,
    nodule_mask,
    object_mask,
    object_outline,
    pneumothorax_mask,
    thickening_box,
    thickening_mask,
)

Box = tuple[float, float, float, float]


@dataclass
class Region:
    kind: str
    finding_id: Optional[int]
    instance: int
    side: Optional[str]
    mask: Optional[np.ndarray]
    box: Box
    box_source: str
    annotation_type: Optional[int] = None   # Object-CXR: 0 rectangle, 1 ellipse, 2 polygon
    polygon: Optional[np.ndarray] = None    # (N, 2) pixel points for type-2 objects


@dataclass
class Targets:
    height: int
    width: int
    regions: list = field(default_factory=list)

    def of(self, kinds: Iterable[str] | str) -> list[Region]:
        kinds = {kinds} if isinstance(kinds, str) else set(kinds)
        return [r for r in self.regions if r.kind in kinds]

    def mask(self, kinds: Iterable[str] | str) -> np.ndarray:
        """Union mask of the given kinds (all False if none)."""
        out = np.zeros((self.height, self.width), dtype=bool)
        for r in self.of(kinds):
            if r.mask is not None:
                out |= r.mask
        return out

    def boxes(self, kinds: Iterable[str] | str) -> list[Box]:
        return [r.box for r in self.of(kinds)]

    @property
    def rsna_boxes(self) -> list[Box]:
        """One box per connected component of the consolidation ∪ ground-glass mask."""
        return component_boxes(self.mask(("consolidation", "ground_glass")))

    @property
    def siim_mask(self) -> np.ndarray:
        """Pneumothorax crescent mask (SIIM style)."""
        return self.mask("pneumothorax")

    @property
    def object_annotations(self) -> list[Region]:
        return [r for r in self.regions if r.annotation_type is not None]


# ------------------------------------------------------------ mask utilities
def mask_bbox(mask: np.ndarray) -> Optional[Box]:
    """End-exclusive pixel bbox of a boolean mask, None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def connected_components(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected components: ``(labels int32 (H, W), count)``; 0 = background,
    components numbered 1.. in raster order of their first pixel."""
    h, w = mask.shape
    labels = np.zeros((h, w), dtype=np.int32)
    parent: list[int] = [0]

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    prev_runs: list[tuple[int, int, int]] = []
    for y in range(h):
        row = mask[y]
        if not row.any():
            prev_runs = []
            continue
        d = np.diff(np.concatenate(([0], row.view(np.int8), [0])))
        starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
        runs = []
        for s, e in zip(starts.tolist(), ends.tolist()):
            lab = 0
            for ps, pe, pl in prev_runs:  # 8-connectivity: overlap with [s-1, e+1)
                if ps < e + 1 and s - 1 < pe:
                    if lab == 0:
                        lab = find(pl)
                    else:
                        ra, rb = find(lab), find(pl)
                        if ra != rb:
                            parent[max(ra, rb)] = min(ra, rb)
                            lab = min(ra, rb)
            if lab == 0:
                parent.append(len(parent))
                lab = len(parent) - 1
            labels[y, s:e] = lab
            runs.append((s, e, lab))
        prev_runs = runs
    if len(parent) == 1:
        return labels, 0
    # Unions keep the smaller label as root, and provisional labels are created in
    # raster order, so sorting roots numbers components by their first pixel.
    roots = np.array([find(i) for i in range(len(parent))], dtype=np.int32)
    uniq = np.unique(roots[1:])
    remap = np.zeros(len(parent), dtype=np.int32)
    remap[1:] = np.searchsorted(uniq, roots[1:]) + 1
    return remap[labels], int(uniq.size)


def boxes_to_mask(boxes: Iterable[Box], height: int, width: int) -> np.ndarray:
    """RSNA-style box mask: pixels whose centre lies inside any box."""
    out = np.zeros((height, width), dtype=bool)
    xc = np.arange(width) + 0.5
    yc = np.arange(height) + 0.5
    for x0, y0, x1, y1 in boxes:
        out |= ((yc >= y0) & (yc <= y1))[:, None] & ((xc >= x0) & (xc <= x1))[None, :]
    return out


def component_boxes(mask: np.ndarray) -> list[Box]:
    labels, n = connected_components(mask)
    return [mask_bbox(labels == i) for i in range(1, n + 1)]


# ----------------------------------------------------------------- targets
def compute_targets(latent, size=256) -> Targets:
    """All masks and boxes of a study at ``size`` (int or ``(H, W)``)."""
    h, w = image_size(size)
    g = Grid(h, w, pose_of(latent))
    th = build_thorax(latent)
    a, b = g.a, g.b
    out = Targets(h, w)

    def add_mask(kind, f, inst, side, m, source="mask"):
        box = mask_bbox(m)
        if box is not None:
            out.regions.append(Region(kind, f.id if f is not None else None, inst, side, m, box, source))

    def add_components(kind, f, m):
        labels, n = connected_components(m)
        for i in range(1, n + 1):
            comp = labels == i
            out.regions.append(Region(kind, f.id, i - 1, f.side, comp, mask_bbox(comp), "component"))

    for f in latent.findings:
        if f.kind == "consolidation":
            add_components(f.kind, f, consolidation_mask(th, f, a, b))
        elif f.kind == "ground_glass":
            add_components(f.kind, f, ground_glass_mask(th, f, a, b))
        elif f.kind == "atelectasis":
            for i, plate in enumerate(f.params["plates"]):
                add_mask(f.kind, f, i, plate["side"], atelectasis_mask(th, plate, a, b))
        elif f.kind == "effusion":
            for i, (side, sp) in enumerate(sorted(f.params["sides"].items())):
                add_mask(f.kind, f, i, side, effusion_mask(th, side, sp, a, b))
        elif f.kind == "edema":
            add_mask(f.kind, f, 0, f.side, edema_mask(th, f, a, b))
        elif f.kind == "nodule":
            for i, inst in enumerate(f.params["instances"]):
                add_mask(f.kind, f, i, f.side, nodule_mask(inst, a, b))
        elif f.kind == "pneumothorax":
            add_mask(f.kind, f, 0, f.side, pneumothorax_mask(th, f, a, b))
        elif f.kind == "cardiomegaly":
            add_mask(f.kind, f, 0, None, th.heart.contains(a, b))
        elif f.kind == "widened_mediastinum":
            out.regions.append(Region(f.kind, f.id, 0, None, None, g.box_to_pixels(*mediastinum_box(th)), "analytic"))
        elif f.kind == "rib_fracture":
            out.regions.append(Region(f.kind, f.id, 0, f.side, None, g.box_to_pixels(*fracture_box(f)), "analytic"))
        elif f.kind == "pleural_thickening":
            out.regions.append(Region(f.kind, f.id, 0, f.side, thickening_mask(th, f, a, b),
                                      g.box_to_pixels(*thickening_box(th, f)), "analytic"))
    for i, obj in enumerate(latent.foreign_objects):
        m = object_mask(obj, a, b)
        p = obj.params
        if obj.kind in ("button", "coin", "hair_tie"):
            # A circle stays a circle under the pose: centre +- scale * r.
            cu, cv = g.pose.to_image(p["cx"], p["cy"])
            rr = g.pose.scale * p["r"]
            pix = np.array([[(cu - rr) * w, (cv - rr) * h], [(cu + rr) * w, (cv + rr) * h]])
        else:
            pix = g.points_to_pixels(object_outline(obj))
        x0, y0 = np.clip(pix.min(axis=0), 0, [w, h])
        x1, y1 = np.clip(pix.max(axis=0), 0, [w, h])
        if x1 <= x0 or y1 <= y0:
            continue
        t = OBJECT_ANNOTATION_TYPE[obj.kind]
        poly = convex_hull(pix) if t == 2 else None
        out.regions.append(Region(obj.kind, None, i, obj.params.get("side"), m,
                                  (float(x0), float(y0), float(x1), float(y1)), "analytic", t, poly))
    return out


# ------------------------------------------------------------------ labels
# finding kind -> CheXpert observations it makes positive in the image truth.
IMAGE_TRUTH_MAP = {
    "consolidation": ("Consolidation", "Pneumonia", "Lung Opacity"),
    "ground_glass": ("Lung Opacity", "Pneumonia"),
    "atelectasis": ("Atelectasis", "Lung Opacity"),
    "edema": ("Edema", "Lung Opacity"),
    "nodule": ("Lung Lesion",),
    "effusion": ("Pleural Effusion",),
    "pneumothorax": ("Pneumothorax",),
    "cardiomegaly": ("Cardiomegaly",),
    "widened_mediastinum": ("Enlarged Cardiomediastinum",),
    "pleural_thickening": ("Pleural Other",),
    "rib_fracture": ("Fracture",),
}


def image_truth_labels(latent) -> dict[str, int]:
    """CheXpert-14 image truth (0/1) from the latent (§4.4); uncertain findings
    count as present. Cardiomegaly adds Enlarged Cardiomediastinum when its
    ``ecm`` flag is set; No Finding = 1 iff no pathology is present."""
    labels = {o: 0 for o in OBSERVATIONS}
    for f in latent.findings:
        for o in IMAGE_TRUTH_MAP[f.kind]:
            labels[o] = 1
        if f.kind == "cardiomegaly" and f.params.get("ecm"):
            labels["Enlarged Cardiomediastinum"] = 1
    if latent.devices:
        labels["Support Devices"] = 1
    labels["No Finding"] = int(not any(labels[o] for o in PATHOLOGIES))
    return labels


def rsna_target(latent) -> int:
    """RSNA ``Target``: consolidation or ground glass present (any certainty)."""
    return int(latent.has("consolidation") or latent.has("ground_glass"))


def rsna_detailed_class(latent) -> str:
    if rsna_target(latent):
        return "Lung Opacity"
    return "No Lung Opacity / Not Normal" if latent.findings else "Normal"


def covidx_class(latent) -> str:
    """COVIDx 3-way class: COVID-19 (viral pattern) > pneumonia (consolidation) > normal."""
    if latent.has("ground_glass"):
        return "COVID-19"
    if latent.has("consolidation"):
        return "pneumonia"
    return "normal"


def covidx_binary(latent) -> str:
    """CXR-4 style: positive = viral pattern."""
    return "positive" if latent.has("ground_glass") else "negative"
