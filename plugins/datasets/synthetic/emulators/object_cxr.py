"""Object-CXR (foreign objects, MIDL 2020), in miniature (datasets.md §1.6, §4.7).

Tree written under ``out_dir`` (the native root):

* ``train.csv`` and ``dev.csv`` -- header ``image_name,annotation``; ``image_name`` is the file
  name (``00001.jpg``) inside ``train/`` or ``dev/``;
* ``test.csv`` -- header ``image_path,annotation`` (the later mirrors' test table); ``image_path``
  is ``test/<name>.jpg`` relative to the root (the real value format is not verified);
* ``train/00001.jpg ...``, ``dev/...``, ``test/...`` -- 8-bit grayscale JPEGs of varying,
  non-square size; numbering runs on across the three folders (train first) as in the real
  release (``train`` 00001-08000, ``dev`` 08001-09000, ``test`` 09001-10000).

``annotation`` is empty for an image without objects, else objects separated by ``;``, each
``T c1 c2 ...`` with space-separated integers in pixels of the stored image (origin at the
top-left pixel corner, x right, y down):

* ``0 x1 y1 x2 y2`` rectangle (metal clip: the axis-aligned box of the rotated clip);
* ``1 x1 y1 x2 y2`` ellipse given by its bounding box (button, coin, hair tie);
* ``2 x1 y1 ... xn yn`` polygon (necklace: the convex hull of its beads).

Integers are obtained by rounding outwards for boxes (``floor`` of the minimum, ``ceil`` of
the maximum, so the integer box contains the object; a zero-width side is widened to 1 px) and
to the nearest integer for polygon points (consecutive duplicates after rounding removed;
fewer than 3 distinct points left -> the 4 corners of the rounded box), all clipped to
``[0, W] x [0, H]``. Objects appear in latent order. Support devices are drawn but never
annotated, as in the real data.

Images: profile ``object_cxr`` (foreign objects in about half of the images, 1-4 each, inside
the lung fields). Sizes ``H = base * U(1.0, 1.4)``, ``W = base * U(0.85, 1.25)`` with
``base = image_px`` (default: twice the size's ``image_px``, so the smallest objects stay a few
pixels wide). Planted: one train image whose string holds all three shape types.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ..latent import SampleSpec, sample_latent, config_for_profile
from ..render import render_frontal, to_uint8
from ..shapes import OBJECT_ANNOTATION_TYPE
from ..study import latent_from_spec
from ..targets import compute_targets, image_truth_labels
from .common import (
    EmulationResult,
    TreeWriter,
    encode_jpeg,
    id_rng,
    latent_record,
    map_ordered,
    pick_indices,
    resolve_counts,
    run_emulation,
    size_spec,
    with_contrast_gain,
)

DATASET = "object_cxr"
SPLITS = (("train", "train.csv", "image_name"), ("dev", "dev.csv", "image_name"), ("test", "test.csv", "image_path"))


@dataclass(frozen=True)
class ObjectJob:
    spec: SampleSpec
    split: str
    number: int
    height: int
    width: int

    @property
    def name(self) -> str:
        return f"{self.number:05d}.jpg"


@dataclass
class ObjectOutput:
    image: bytes
    annotation: str
    types: list
    latent_line: str


def box_ints(box, width: int, height: int) -> tuple[int, int, int, int]:
    """Outward-rounded integer box clipped to the image; at least 1 px wide and high."""
    x0, y0, x1, y1 = box
    a, b = max(0, math.floor(x0)), max(0, math.floor(y0))
    c, d = min(width, math.ceil(x1)), min(height, math.ceil(y1))
    if c <= a:
        a, c = (a, a + 1) if a < width else (width - 1, width)
    if d <= b:
        b, d = (b, b + 1) if b < height else (height - 1, height)
    return a, b, c, d


def polygon_ints(points: np.ndarray, box, width: int, height: int) -> list[tuple[int, int]]:
    pts = np.rint(np.asarray(points, dtype=np.float64))
    pts[:, 0] = np.clip(pts[:, 0], 0, width)
    pts[:, 1] = np.clip(pts[:, 1], 0, height)
    out: list[tuple[int, int]] = []
    for x, y in pts.astype(int).tolist():
        if not out or out[-1] != (x, y):
            out.append((x, y))
    if len(out) > 1 and out[0] == out[-1]:
        out.pop()
    if len(set(out)) < 3:
        a, b, c, d = box_ints(box, width, height)
        out = [(a, b), (c, b), (c, d), (a, d)]
    return out


def annotation_string(regions, width: int, height: int) -> str:
    """The Object-CXR ``annotation`` value of a list of object regions (see module docstring)."""
    parts = []
    for r in regions:
        if r.annotation_type == 2:
            coords = [v for p in polygon_ints(r.polygon, r.box, width, height) for v in p]
        else:
            coords = list(box_ints(r.box, width, height))
        parts.append(" ".join(str(v) for v in [r.annotation_type, *coords]))
    return ";".join(parts)


def _all_types_spec(seed: int, index: int, max_attempts: int = 500) -> SampleSpec:
    cfg = config_for_profile(DATASET)
    for attempt in range(max_attempts):
        lat = sample_latent(seed, "train", index, cfg, attempt=attempt)
        if {OBJECT_ANNOTATION_TYPE[o.kind] for o in lat.foreign_objects} == {0, 1, 2}:
            return SampleSpec(seed, "train", index, DATASET, attempt, None, (("planted", "all_shape_types"),))
    raise RuntimeError(f"no latent with all three object shape types in {max_attempts} attempts")


def plan_jobs(size: str, seed: int, image_px: Optional[int] = None,
              counts: Optional[Mapping[str, int]] = None, *, contrast_gain: float = 1.0) -> list[ObjectJob]:
    c = resolve_counts(size, counts)
    base = int(image_px or 2 * size_spec(size).image_px)
    rng = id_rng(seed, DATASET, "sizes")
    planted = pick_indices(id_rng(seed, DATASET, "quirks"), c["train"], 1)
    jobs, number = [], 0
    for split, n in (("train", c["train"]), ("dev", c["valid"]), ("test", c["test"])):
        for i in range(n):
            number += 1
            spec = _all_types_spec(seed, i) if split == "train" and i in planted else SampleSpec(seed, split, i,
                                                                                                  DATASET)
            h = int(round(base * rng.uniform(1.0, 1.4)))
            w = int(round(base * rng.uniform(0.85, 1.25)))
            jobs.append(ObjectJob(spec, split, number, h, w))
    return with_contrast_gain(jobs, contrast_gain)


def emulate_study(job: ObjectJob) -> ObjectOutput:
    latent = latent_from_spec(job.spec)
    size = (job.height, job.width)
    image = encode_jpeg(to_uint8(render_frontal(latent, size)))
    regions = compute_targets(latent, size).object_annotations
    ann = annotation_string(regions, job.width, job.height)
    ids = {"split": job.split, "image": f"{job.split}/{job.name}", "height": job.height, "width": job.width}
    truth = [{"kind": r.kind, "type": r.annotation_type, "box": list(r.box),
              "polygon": None if r.polygon is None else np.asarray(r.polygon).tolist()} for r in regions]
    line = latent_record(job.spec, latent, {}, ids, annotation=ann, objects=truth,
                         image_truth=image_truth_labels(latent))
    return ObjectOutput(image, ann, [r.annotation_type for r in regions], line)


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None,
            contrast_gain: float = 1.0) -> EmulationResult:
    """Write an emulated Object-CXR tree into ``out_dir`` (see the module docstring).
    ``image_px``: base image side (default: twice the size's ``image_px``)."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)

    def body(w: TreeWriter):
        tables = {s: [] for s, _, _ in SPLITS}
        stats = {s: {"images": 0, "positives": 0, "objects": 0, "types": {"0": 0, "1": 0, "2": 0}} for s in tables}
        all_three = []
        for job, out in zip(jobs, map_ordered(emulate_study, jobs, workers)):
            w.write_bytes(f"{job.split}/{job.name}", out.image)
            w.latent_line(out.latent_line)
            key = job.name if job.split != "test" else f"test/{job.name}"
            tables[job.split].append([key, out.annotation])
            st = stats[job.split]
            st["images"] += 1
            st["positives"] += bool(out.types)
            st["objects"] += len(out.types)
            for t in out.types:
                st["types"][str(t)] += 1
            if set(out.types) == {0, 1, 2}:
                all_three.append(f"{job.split}/{job.name}")
        for split, name, column in SPLITS:
            w.write_csv(name, (column, "annotation"), tables[split])
        quirks = {
            "all_shape_types_in_one_string": {"images": all_three},
            "empty_annotations": {s: st["images"] - st["positives"] for s, st in stats.items()},
            "non_square_varying_sizes": True,
            "test_column": "test.csv names its first column image_path (train/dev: image_name)",
            "support_devices_not_annotated": True,
        }
        expected = {
            "rows": {s: st["images"] for s, st in stats.items()},
            "patients": None,
            "positives": {s: st["positives"] for s, st in stats.items()},
            "objects": {s: st["objects"] for s, st in stats.items()},
            "warnings": {},
        }
        info = {"format": "Object-CXR (MIDL 2020)", "native_version": "object-CXR", "size": size, "seed": seed,
                "contrast_gain": float(contrast_gain), "image_px": int(image_px or 2 * size_spec(size).image_px),
                "coordinates": "integer pixels of the stored image, origin at the top-left corner"}
        return stats, quirks, expected, info

    return run_emulation(out_dir, DATASET, body)
