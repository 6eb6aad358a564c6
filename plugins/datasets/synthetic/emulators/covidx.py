"""COVIDx label files and images, in miniature (datasets.md §1.5, §4.7).

Tree written under ``out_dir`` (the native root); every label file is plain text, one image per
line, **no header**, four space-separated fields ``patient_id filename class data_source``:

* COVIDx 9A (3-way; what MGCA reads): ``train_COVIDx9A.txt`` and ``test_COVIDx9A.txt`` with
  class in ``normal`` / ``pneumonia`` / ``COVID-19``;
* COVIDx CXR-4 style (binary; what BenchX reads): ``train.txt``, ``val.txt``, ``test.txt`` with
  class in ``positive`` / ``negative``;
* images ``train/<filename>``, ``val/<filename>``, ``test/<filename>`` (PNG or JPEG by name).

Both label sets describe the same images: the size's ``train`` + ``valid`` + ``test`` studies
(profile ``covidx``: viral pattern in about a third). 9A has no validation file, so its train
file lists the ``train`` images and its test file the ``test`` images; the CXR-4 files list
``train`` / ``val`` / ``test``. Classes come from the latent (§4.4): 9A ``COVID-19`` = viral
pattern, ``pneumonia`` = consolidation, else ``normal``; CXR-4 ``positive`` = viral pattern.

Patients hold 1-3 images of one split ("several images per patient id"); ids and file names
imitate the mixture of sources (numeric ids and ``<hex>.jpg`` for ``cohen``, UUIDs for
``rsna``, ``sub-S.....`` BIDS-style names for ``bimcv``, ``SIRM(<n>).png`` (parentheses in the
name) for ``sirm``, ``ricord`` ids). Image sides vary between ``image_px`` and ``1.25 * image_px``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ..latent import SampleSpec
from ..render import render_frontal, to_uint8
from ..study import latent_from_spec
from ..targets import covidx_binary, covidx_class, image_truth_labels
from .common import (
    EmulationResult,
    TreeWriter,
    encode_jpeg,
    encode_png,
    id_rng,
    latent_record,
    map_ordered,
    resolve_counts,
    run_emulation,
    size_spec,
    with_contrast_gain,
)

DATASET = "covidx"
FILES_9A = {"train": "train_COVIDx9A.txt", "test": "test_COVIDx9A.txt"}
FILES_CXR4 = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
SOURCES = ("cohen", "rsna", "bimcv", "sirm", "ricord")


@dataclass(frozen=True)
class CovidxJob:
    spec: SampleSpec
    split: str            # train / val / test (folder)
    patient_id: str
    filename: str
    source: str
    height: int
    width: int


@dataclass
class CovidxOutput:
    image: bytes
    class_9a: str
    class_cxr4: str
    latent_line: str


def _patient(rng: np.random.Generator, source: str, k: int) -> str:
    if source == "cohen":
        return str(int(rng.integers(1, 5000)) * 10 + k % 10)
    if source == "rsna":
        h = "".join(f"{int(x):02x}" for x in rng.integers(0, 256, 16))
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"
    if source == "bimcv":
        return f"sub-S{int(rng.integers(0, 99999)):05d}"
    if source == "sirm":
        return f"sirm-{int(rng.integers(1, 99999))}"
    return f"419639-{int(rng.integers(0, 999999)):06d}"


def _filename(rng: np.random.Generator, source: str, patient: str, j: int) -> str:
    if source == "cohen":
        return "".join(f"{int(x):02x}" for x in rng.integers(0, 256, 8)) + ".jpg"
    if source == "rsna":
        return f"{patient}.png" if j == 0 else f"{patient}-{j}.png"
    if source == "bimcv":
        return f"{patient}_ses-E{int(rng.integers(0, 99999)):05d}_run-1_bp-chest_vp-ap_dx.png"
    if source == "sirm":
        return f"SIRM({int(rng.integers(1, 99999))}).png"
    return f"{patient}-{j + 1}-{int(rng.integers(10000, 99999))}.jpg"


def plan_jobs(size: str, seed: int, image_px: Optional[int] = None,
              counts: Optional[Mapping[str, int]] = None, *, contrast_gain: float = 1.0) -> list[CovidxJob]:
    c = resolve_counts(size, counts)
    px = int(image_px or size_spec(size).image_px)
    rng = id_rng(seed, DATASET, "ids")
    jobs, used_names, used_patients = [], set(), set()
    for split, n in (("train", c["train"]), ("val", c["valid"]), ("test", c["test"])):
        remaining, patient, source, j = 0, "", "", 0
        for i in range(n):
            if remaining == 0:
                source = SOURCES[int(rng.integers(0, len(SOURCES)))]
                patient = _patient(rng, source, i)
                while patient in used_patients:
                    patient = _patient(rng, source, i)
                used_patients.add(patient)
                remaining, j = int(rng.choice([1, 1, 2, 3])), 0
            name = _filename(rng, source, patient, j)
            while name in used_names:
                name = _filename(rng, source, patient, j + 100)
            used_names.add(name)
            h = int(round(px * rng.uniform(1.0, 1.25)))
            w = int(round(px * rng.uniform(1.0, 1.25)))
            jobs.append(CovidxJob(SampleSpec(seed, split, i, DATASET), split, patient, name, source, h, w))
            remaining -= 1
            j += 1
    return with_contrast_gain(jobs, contrast_gain)


def emulate_study(job: CovidxJob) -> CovidxOutput:
    latent = latent_from_spec(job.spec)
    pixels = to_uint8(render_frontal(latent, (job.height, job.width)))
    data = encode_png(pixels) if job.filename.endswith(".png") else encode_jpeg(pixels)
    c9, c4 = covidx_class(latent), covidx_binary(latent)
    ids = {"patient_id": job.patient_id, "filename": job.filename, "path": f"{job.split}/{job.filename}",
           "data_source": job.source, "height": job.height, "width": job.width}
    line = latent_record(job.spec, latent, {}, ids, class_9a=c9, class_cxr4=c4, image_truth=image_truth_labels(latent))
    return CovidxOutput(data, c9, c4, line)


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None,
            contrast_gain: float = 1.0) -> EmulationResult:
    """Write emulated COVIDx 9A and CXR-4 label files and images into ``out_dir``."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)

    def body(w: TreeWriter):
        lines_9a = {k: [] for k in FILES_9A}
        lines_4 = {k: [] for k in FILES_CXR4}
        classes = {s: {} for s in FILES_CXR4}
        patients = {s: {} for s in FILES_CXR4}
        for job, out in zip(jobs, map_ordered(emulate_study, jobs, workers)):
            w.write_bytes(f"{job.split}/{job.filename}", out.image)
            w.latent_line(out.latent_line)
            if job.split in lines_9a:
                lines_9a[job.split].append(f"{job.patient_id} {job.filename} {out.class_9a} {job.source}\n")
            lines_4[job.split].append(f"{job.patient_id} {job.filename} {out.class_cxr4} {job.source}\n")
            for key in (out.class_9a, out.class_cxr4):
                classes[job.split][key] = classes[job.split].get(key, 0) + 1
            patients[job.split][job.patient_id] = patients[job.split].get(job.patient_id, 0) + 1
        for split, name in FILES_9A.items():
            w.write_text(name, "".join(lines_9a[split]))
        for split, name in FILES_CXR4.items():
            w.write_text(name, "".join(lines_4[split]))
        counts_out = {s: {"images": len(lines_4[s]), "patients": len(patients[s]), "classes": classes[s]}
                      for s in FILES_CXR4}
        quirks = {
            "no_header": "label files have no header line (BenchX's header=0 read drops the first sample)",
            "several_images_per_patient": {s: sorted(p for p, k in patients[s].items() if k > 1) for s in patients},
            "mixed_extensions": sorted({Path(j.filename).suffix for j in jobs}),
            "varying_image_sizes": True,
        }
        positive_class = {"train_COVIDx9A.txt": "COVID-19", "test_COVIDx9A.txt": "COVID-19"}
        files = {**{FILES_9A[s]: s for s in FILES_9A}, **{FILES_CXR4[s]: s for s in FILES_CXR4}}
        expected = {
            "rows": {name: len((lines_9a if name in positive_class else lines_4)[s]) for name, s in files.items()},
            "patients": {name: len({ln.split(" ")[0] for ln in (lines_9a if name in positive_class else lines_4)[s]})
                         for name, s in files.items()},
            "positives": {name: sum(ln.split(" ")[2] == positive_class.get(name, "positive")
                                    for ln in (lines_9a if name in positive_class else lines_4)[s])
                          for name, s in files.items()},
            "9A": {"train_rows": len(lines_9a["train"]), "test_rows": len(lines_9a["test"]),
                   "train_patients": len(patients["train"]),
                   "classes": {s: {k: v for k, v in classes[s].items() if k in ("normal", "pneumonia", "COVID-19")}
                               for s in FILES_9A}},
            "CXR-4": {"rows": {s: len(lines_4[s]) for s in FILES_CXR4},
                      "patients": {s: len(patients[s]) for s in FILES_CXR4},
                      "positives": {s: classes[s].get("positive", 0) for s in FILES_CXR4}},
            "benchx_header_bug_rows": {s: max(0, len(lines_4[s]) - 1) for s in FILES_CXR4},
            "warnings": {},
        }
        info = {"format": "COVIDx label files (9A three-way, CXR-4 binary)", "native_version": "9A + CXR-4",
                "size": size, "seed": seed, "contrast_gain": float(contrast_gain),
                "image_px": int(image_px or size_spec(size).image_px),
                "columns": "patient_id filename class data_source (space-separated, no header)"}
        return counts_out, quirks, expected, info

    return run_emulation(out_dir, DATASET, body)
