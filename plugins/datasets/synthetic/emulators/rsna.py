"""RSNA Pneumonia Detection (Kaggle stage 2), in miniature (datasets.md §1.3, §4.7).

Tree written under ``out_dir`` (the native root):

* ``stage_2_train_labels.csv`` -- ``patientId,x,y,width,height,Target``: one row per box for a
  positive image (1-4 rows, consecutive), one row with blank ``x,y,width,height`` and
  ``Target = 0`` for a negative image. ``x, y`` is the upper-left corner, in pixels of the
  stored image (origin at the top-left pixel corner), written as floats (``264.0``);
* ``stage_2_detailed_class_info.csv`` -- ``patientId,class`` with class in ``Lung Opacity``,
  ``No Lung Opacity / Not Normal``, ``Normal``; one row per label row, so a patient with k boxes
  has k identical rows (as in the real file);
* ``stage_2_train_images/<patientId>.dcm`` -- single-frame DICOM, ``image_px`` square (1024 by
  default), Secondary Capture CR, ``ViewPosition`` PA / AP, ``PatientSex`` M / F, ``PatientAge``.

``patientId`` is a UUID4-formatted string derived from ``(seed, index)``; one image per id.
Rows are in generation order (not sorted), like the Kaggle file.

Boxes: the 8-connected components of the union of the consolidation and ground-glass masks
rendered at the image size (:attr:`..targets.Targets.rsna_boxes`, end-exclusive integer boxes),
the 4 largest by pixel count when there are more (kept in raster order of their first pixel).
``Target = 1`` iff at least one box is written (so a ``Target = 1`` row always has a box); the
detailed class is ``Lung Opacity`` for targets, else ``No Lung Opacity / Not Normal`` when the
latent has any finding, else ``Normal``.

Image storage (§4.3, §4.7): 8-bit ``MONOCHROME2`` by default; about 10 % ``MONOCHROME1``
(stored inverted) and about 15 % 12-bit (``BitsStored = 12`` in 16-bit words), each at least once.
Images: the size's ``dicom_images`` count (8 in ``tiny``; ``train + valid + test`` otherwise).
About 30 % are drawn with a forced consolidation (the natural rate would leave ``tiny`` with
hardly any positive); one of them is drawn with bilateral ground glass instead and checked to
give at least two boxes (multi-row patient). The rest are natural samples (some positive too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ..latent import Constraints, FindingRequest, SampleSpec
from ..render import render_frontal
from ..study import latent_from_spec
from ..targets import compute_targets, connected_components, image_truth_labels, mask_bbox
from .common import (
    EmulationResult,
    TreeWriter,
    id_rng,
    latent_record,
    map_ordered,
    pick_indices,
    resolve_counts,
    run_emulation,
    size_spec,
    with_contrast_gain,
)
from .dicom import PYDICOM_ROOT, dicom_bytes

DATASET = "rsna"
LABEL_COLUMNS = ("patientId", "x", "y", "width", "height", "Target")
CLASS_COLUMNS = ("patientId", "class")
IMAGE_DIR = "stage_2_train_images"
MAX_BOXES = 4
POSITIVE_FRACTION = 0.3


@dataclass(frozen=True)
class RSNAJob:
    spec: SampleSpec
    patient_id: str
    uid_stem: str
    image_px: int
    bits: int
    photometric: str
    age: int


@dataclass
class RSNAOutput:
    dicom: bytes
    label_rows: list
    class_rows: list
    latent_line: str
    target: int
    n_boxes: int
    truncated: int
    view: str


def uuid4_string(rng: np.random.Generator) -> str:
    """A UUID version 4 (random) string, lower-case, 36 characters."""
    b = bytearray(int(x) for x in rng.integers(0, 256, size=16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rsna_boxes(mask: np.ndarray, max_boxes: int = MAX_BOXES) -> tuple[list, int]:
    """Component boxes of ``mask`` (raster order), the ``max_boxes`` largest by pixel count;
    returns ``(boxes, number dropped)``."""
    labels, n = connected_components(mask)
    comps = [(int((labels == i).sum()), i) for i in range(1, n + 1)]
    keep = sorted(i for _, i in sorted(comps, key=lambda t: (-t[0], t[1]))[:max_boxes])
    return [mask_bbox(labels == i) for i in keep], max(0, n - max_boxes)


def _multi_box_spec(seed: int, index: int, px: int, max_attempts: int = 20) -> SampleSpec:
    """A study with bilateral ground glass whose opacity mask has >= 2 components at ``px``."""
    c = Constraints(force=(FindingRequest("ground_glass"),))
    for attempt in range(max_attempts):
        spec = SampleSpec(seed, "train", index, DATASET, attempt, c, (("planted", "multi_box"),))
        mask = compute_targets(latent_from_spec(spec), px).mask(("consolidation", "ground_glass"))
        if connected_components(mask)[1] >= 2:
            return spec
    raise RuntimeError(f"no multi-component opacity in {max_attempts} attempts (index {index})")


def plan_jobs(size: str, seed: int, image_px: Optional[int] = None,
              counts: Optional[Mapping[str, int]] = None, *, contrast_gain: float = 1.0) -> list[RSNAJob]:
    c = resolve_counts(size, counts)
    n = c["dicom_images"]
    px = int(image_px or size_spec(size).dicom_px)
    q = id_rng(seed, DATASET, "quirks")
    positives = pick_indices(q, n, max(2, round(POSITIVE_FRACTION * n)) if n >= 4 else 1)
    multi = positives[:1]
    mono1 = set(pick_indices(q, n, max(1, round(0.10 * n))))
    bits12 = set(pick_indices(q, n, max(1, round(0.15 * n)), exclude=mono1 if n > 2 else ()))
    jobs, used = [], set()
    for i in range(n):
        rng = id_rng(seed, DATASET, "ids", i)
        pid = uuid4_string(rng)
        while pid in used:
            pid = uuid4_string(rng)
        used.add(pid)
        stem = f"{PYDICOM_ROOT}{seed}.{i + 1}"
        if i in multi:
            spec = _multi_box_spec(seed, i, px)
        elif i in positives:
            spec = SampleSpec(seed, "train", i, DATASET, 0, Constraints(force=(FindingRequest("consolidation"),)),
                              (("planted", "positive"),))
        else:
            spec = SampleSpec(seed, "train", i, DATASET)
        jobs.append(RSNAJob(spec, pid, stem, px, 12 if i in bits12 else 8,
                            "MONOCHROME1" if i in mono1 else "MONOCHROME2", int(rng.integers(18, 91))))
    return with_contrast_gain(jobs, contrast_gain)


def _num(v: float) -> str:
    return f"{float(v):.1f}"


def emulate_study(job: RSNAJob) -> RSNAOutput:
    latent = latent_from_spec(job.spec)
    image = render_frontal(latent, job.image_px)
    targets = compute_targets(latent, job.image_px)
    boxes, truncated = rsna_boxes(targets.mask(("consolidation", "ground_glass")))
    target = int(bool(boxes))
    cls = "Lung Opacity" if target else ("No Lung Opacity / Not Normal" if latent.findings else "Normal")
    if boxes:
        label_rows = [[job.patient_id, _num(x0), _num(y0), _num(x1 - x0), _num(y1 - y0), 1]
                      for x0, y0, x1, y1 in boxes]
    else:
        label_rows = [[job.patient_id, None, None, None, None, 0]]
    class_rows = [[job.patient_id, cls]] * len(label_rows)
    sex = "M" if latent.sex == "man" else "F"
    data = dicom_bytes(image, sop_instance_uid=job.uid_stem + ".1.1", study_uid=job.uid_stem + ".2",
                       series_uid=job.uid_stem + ".1", patient_id=job.patient_id, bits=job.bits,
                       photometric=job.photometric, view_position=latent.view, sex=sex,
                       age=job.age)
    ids = {"patientId": job.patient_id, "path": f"{IMAGE_DIR}/{job.patient_id}.dcm", "bits": job.bits,
           "photometric": job.photometric, "image_px": job.image_px}
    line = latent_record(job.spec, latent, {}, ids, boxes_xyxy=[list(b) for b in boxes], target=target,
                         detailed_class=cls, dropped_components=truncated, image_truth=image_truth_labels(latent))
    return RSNAOutput(data, label_rows, class_rows, line, target, len(boxes), truncated, latent.view)


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None,
            contrast_gain: float = 1.0) -> EmulationResult:
    """Write an emulated RSNA stage-2 tree into ``out_dir`` (see the module docstring).
    ``image_px``: side of the DICOM images (default: the size's ``dicom_px``, 1024)."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)

    def body(w: TreeWriter):
        labels, classes = [], []
        positives = boxes = truncated = 0
        views = {"PA": 0, "AP": 0}
        multi = []
        for job, out in zip(jobs, map_ordered(emulate_study, jobs, workers)):
            w.write_bytes(f"{IMAGE_DIR}/{job.patient_id}.dcm", out.dicom)
            w.latent_line(out.latent_line)
            labels += out.label_rows
            classes += out.class_rows
            positives += out.target
            boxes += out.n_boxes
            truncated += out.truncated
            views[out.view] += 1
            if out.n_boxes > 1:
                multi.append(job.patient_id)
        w.write_csv("stage_2_train_labels.csv", LABEL_COLUMNS, labels)
        w.write_csv("stage_2_detailed_class_info.csv", CLASS_COLUMNS, classes)
        n = len(jobs)
        counts_out = {"train": {"images": n, "label_rows": len(labels), "positive_images": positives,
                                "boxes": boxes, "PA": views["PA"], "AP": views["AP"]}}
        quirks = {
            "monochrome1": {"patientIds": [j.patient_id for j in jobs if j.photometric == "MONOCHROME1"],
                            "note": "stored inverted (max - value)"},
            "bits_stored_12": {"patientIds": [j.patient_id for j in jobs if j.bits == 12],
                               "note": "BitsAllocated 16, BitsStored 12, HighBit 11"},
            "multi_box_patients": {"patientIds": multi, "note": "several label rows (and duplicated class rows)"},
            "negative_rows_blank_boxes": {"count": n - positives},
            "components_dropped_over_4": truncated,
        }
        expected = {
            "rows": n, "patients": n, "positives": positives, "boxes": boxes,
            "label_rows": len(labels), "class_rows": len(classes),
            "views": views,
            "warnings": {"unexpected_row_count": 1},
            "note": "MGCA's detection split holds out 10,674 images: use the gloria / suite protocols on "
                    "tiny and small",
        }
        info = {"format": "RSNA Pneumonia Detection Challenge, Kaggle stage 2", "native_version": "stage_2",
                "size": size, "seed": seed, "contrast_gain": float(contrast_gain),
                "image_px": jobs[0].image_px if jobs else image_px,
                "coordinates": "pixels of the stored image; x, y = upper-left corner; width/height in pixels"}
        return counts_out, quirks, expected, info

    return run_emulation(out_dir, DATASET, body)
