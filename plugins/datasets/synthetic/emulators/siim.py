"""SIIM-ACR Pneumothorax Segmentation (Kaggle stage 1), in miniature (datasets.md §1.4, §4.7).

Tree written under ``out_dir`` (the native root):

* ``train-rle.csv`` -- stage-1 table. Header line ``ImageId, EncodedPixels`` (the second name
  starts with a space) and data lines ``<ImageId>, <value>`` so every value starts with a space:
  ``" -1"`` for an image without pneumothorax, ``" o1 l1 o2 l2 ..."`` otherwise. The RLE is
  SIIM's *relative* run-length encoding over the column-major pixel order of the stored image
  (:func:`place_bench.data.rle.mask_to_siim_rle`). An image with several annotated regions has
  several consecutive rows; its mask is their union;
* ``stage_2_train.csv`` -- the same rows in the stage-2 style (``ImageId,EncodedPixels``, no
  spaces). Readers that prefer ``train-rle.csv`` ignore it;
* ``dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm`` --
  ``ImageId`` = SOPInstanceUID. UIDs follow the Kaggle families
  ``1.2.276.0.7230010.3.1.2.8323329.<n>.<t>.<f>`` (study), ``...3.1.3...`` (series) and
  ``...3.1.4...`` (instance), derived from ``(seed, index)``. 8-bit ``MONOCHROME2``, ``image_px``
  square (1024 by default), ``ViewPosition`` PA / AP.

Images: the size's ``dicom_images`` count (8 in ``tiny``), about 35 % with a pneumothorax (natural
samples scanned in index order, :func:`..subsets.balanced_presence_specs`). The mask of a
positive image is the pneumothorax crescent rasterized at the image size
(:attr:`..targets.Targets.siim_mask`).

Planted quirks: one positive image whose crescent is written as two rows (upper and lower part,
split at the middle mask row); one positive image with an extra region covering the last
``max(3, px // 100)`` pixels of the last column (a run that reaches the very last pixel; not
rendered -- an annotation artefact at the image corner, recorded in ``latent.jsonl``); one
``ImageId`` listed (``" -1"``) whose DICOM is absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from place_bench.data.rle import mask_to_rle, mask_to_siim_rle

from ..latent import SampleSpec
from ..render import render_frontal
from ..study import latent_from_spec
from ..subsets import balanced_presence_specs
from ..targets import compute_targets, image_truth_labels
from .common import (
    EmulationResult,
    TreeWriter,
    id_rng,
    latent_record,
    map_ordered,
    resolve_counts,
    run_emulation,
    size_spec,
    with_contrast_gain,
)
from .dicom import dicom_bytes

DATASET = "siim"
IMAGE_DIR = "dicom-images-train"
UID_ROOT = "1.2.276.0.7230010.3.1."
UID_ORG = "8323329"
POSITIVE_FRACTION = 0.35


@dataclass(frozen=True)
class SIIMJob:
    spec: Optional[SampleSpec]       # None: listed in the table only (missing DICOM)
    image_id: str
    study_uid: str
    series_uid: str
    patient_id: str
    image_px: int
    split_regions: bool = False
    corner_region: bool = False
    age: int = 50


@dataclass
class SIIMOutput:
    dicom: Optional[bytes]
    values: list               # RLE values, one per table row (without the leading space)
    latent_line: Optional[str]
    positive: bool


def kaggle_uids(rng: np.random.Generator, used: set) -> tuple[str, str, str]:
    """(study, series, instance) UIDs of the SIIM families, sharing ``<n>.<t>``."""
    while True:
        n = int(rng.integers(1000, 20000))
        t = int(rng.integers(1517875000, 1517876000))
        f = int(rng.integers(100000, 999990))
        if (n, t) not in used:
            used.add((n, t))
            break
    stem = lambda fam, k: f"{UID_ROOT}{fam}.{UID_ORG}.{n}.{t}.{f + k}"  # noqa: E731
    return stem(2, 2), stem(3, 1), stem(4, 0)


def _patient_id(rng: np.random.Generator) -> str:
    h = "".join(f"{int(x):02x}" for x in rng.integers(0, 256, size=16))
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def plan_jobs(size: str, seed: int, image_px: Optional[int] = None,
              counts: Optional[Mapping[str, int]] = None, *, contrast_gain: float = 1.0) -> list[SIIMJob]:
    c = resolve_counts(size, counts)
    n = c["dicom_images"]
    px = int(image_px or size_spec(size).dicom_px)
    n_pos = min(n, max(2, round(POSITIVE_FRACTION * n))) if n >= 3 else min(n, 1)
    specs = balanced_presence_specs(seed, "train", "pneumothorax", n_pos, n - n_pos, profile=DATASET)
    rng = id_rng(seed, DATASET, "ids")
    used: set = set()
    jobs, n_positive = [], 0
    for spec in specs:
        positive = spec.tag("label") == "1"
        study, series, sop = kaggle_uids(rng, used)
        jobs.append(SIIMJob(spec, sop, study, series, _patient_id(rng), px,
                            split_regions=positive and n_positive == 0,
                            corner_region=positive and n_positive == 1, age=int(rng.integers(18, 91))))
        n_positive += positive
    if n:
        study, series, sop = kaggle_uids(rng, used)
        jobs.append(SIIMJob(None, sop, study, series, _patient_id(rng), px))  # listed, no DICOM
    return with_contrast_gain(jobs, contrast_gain)


def _split_rows(mask: np.ndarray) -> list[np.ndarray]:
    rows = np.flatnonzero(mask.any(axis=1))
    cut = int(rows[len(rows) // 2])
    upper, lower = mask.copy(), mask.copy()
    upper[cut:] = False
    lower[:cut] = False
    return [m for m in (upper, lower) if m.any()]


def corner_region(px: int) -> np.ndarray:
    """The planted corner region: last ``max(3, px // 100)`` pixels of the last column."""
    m = np.zeros((px, px), dtype=bool)
    m[px - max(3, px // 100):, px - 1] = True
    return m


def emulate_study(job: SIIMJob) -> SIIMOutput:
    if job.spec is None:
        return SIIMOutput(None, ["-1"], None, False)
    latent = latent_from_spec(job.spec)
    image = render_frontal(latent, job.image_px)
    mask = compute_targets(latent, job.image_px).siim_mask
    regions = [mask] if mask.any() else []
    if regions and job.split_regions:
        regions = _split_rows(mask)
    if regions and job.corner_region:
        regions.append(corner_region(job.image_px))
    values = [mask_to_siim_rle(r) for r in regions] or ["-1"]
    union = np.zeros_like(mask)
    for r in regions:
        union |= r
    data = dicom_bytes(image, sop_instance_uid=job.image_id, study_uid=job.study_uid, series_uid=job.series_uid,
                       patient_id=job.patient_id, view_position=latent.view,
                       sex="M" if latent.sex == "man" else "F", age=job.age)
    ids = {"ImageId": job.image_id, "path": f"{IMAGE_DIR}/{job.study_uid}/{job.series_uid}/{job.image_id}.dcm",
           "image_px": job.image_px}
    line = latent_record(job.spec, latent, {}, ids, rle_rows=values, union_rle_canonical=mask_to_rle(union),
                         split_regions=job.split_regions, corner_region=job.corner_region,
                         image_truth=image_truth_labels(latent))
    return SIIMOutput(data, values, line, bool(regions))


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None,
            contrast_gain: float = 1.0) -> EmulationResult:
    """Write an emulated SIIM-ACR stage-1 tree into ``out_dir`` (see the module docstring).
    ``image_px``: side of the DICOM images and of the RLE grid (default 1024)."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)

    def body(w: TreeWriter):
        stage1 = ["ImageId, EncodedPixels\n"]
        stage2 = ["ImageId,EncodedPixels\n"]
        images = positives = rows = 0
        multi = []
        for job, out in zip(jobs, map_ordered(emulate_study, jobs, workers)):
            if out.dicom is not None:
                w.write_bytes(f"{IMAGE_DIR}/{job.study_uid}/{job.series_uid}/{job.image_id}.dcm", out.dicom)
                images += 1
            if out.latent_line is not None:
                w.latent_line(out.latent_line)
            for v in out.values:
                stage1.append(f"{job.image_id}, {v}\n")
                stage2.append(f"{job.image_id},{v}\n")
            rows += len(out.values)
            positives += out.positive
            if len(out.values) > 1:
                multi.append(job.image_id)
        w.write_text("train-rle.csv", "".join(stage1))
        w.write_text("stage_2_train.csv", "".join(stage2))
        listed = len(jobs)
        missing = [j.image_id for j in jobs if j.spec is None]
        counts_out = {"train": {"images_listed": listed, "images_on_disk": images, "rows": rows,
                                "positive_images": positives}}
        quirks = {
            "leading_spaces": "header ' EncodedPixels' and every value start with a space (train-rle.csv)",
            "negative_value": "' -1'",
            "multi_row_images": {"ImageIds": multi, "note": "several rows; the mask is their union"},
            "split_regions": {"ImageIds": [j.image_id for j in jobs if j.split_regions],
                              "note": "one crescent written as two rows (upper / lower part)"},
            "run_to_last_pixel": {"ImageIds": [j.image_id for j in jobs if j.corner_region],
                                  "note": "extra region ending at the last pixel (column-major), not rendered"},
            "missing_image": {"ImageIds": missing, "note": "listed with ' -1', no DICOM on disk"},
            "stage_2_variant": "stage_2_train.csv: same rows, no leading spaces",
        }
        expected = {
            "table_rows": rows,
            "images_listed": listed,
            "rows": images,                      # manifest rows: one per ImageId with a DICOM
            "patients": None,                    # no patient key in the table
            "positives": positives,
            # warning code -> occurrences (one per stripped value, i.e. per table row)
            "warnings": {"missing_image": len(missing), "stripped_header": 1, "stripped_values": rows,
                         "unexpected_row_count": 1},
        }
        info = {"format": "SIIM-ACR Pneumothorax Segmentation, Kaggle stage 1", "native_version": "stage_1",
                "size": size, "seed": seed, "contrast_gain": float(contrast_gain),
                "image_px": jobs[0].image_px if jobs else image_px,
                "rle": "relative SIIM RLE over column-major pixels of the stored image (index = col * H + row)"}
        return counts_out, quirks, expected, info

    return run_emulation(out_dir, DATASET, body)
