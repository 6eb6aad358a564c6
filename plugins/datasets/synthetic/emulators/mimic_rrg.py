"""R2Gen's MIMIC-CXR report-generation split file over an emulated MIMIC tree (datasets.md §1.7, §4.7).

Writes ``annotation.json`` = ``{"train": [...], "val": [...], "test": [...]}`` with one entry per
image: ``{"id": <dicom_id>, "study_id": <int>, "subject_id": <int>, "report": <findings>,
"image_path": ["p1X/p1NNNNNNN/s5NNNNNNN/<dicom_id>.jpg"], "split": ...}``. ``image_path`` is
relative to the image root (R2Gen's ``images/`` folder, i.e. MIMIC-CXR-JPG's ``files/``).

The studies, ids and reports are exactly those of :mod:`.mimic_cxr` for the same ``size``,
``seed``, ``image_px``, ``counts`` and ``contrast_gain`` (official ``train`` / ``validate`` / ``test`` -> ``train`` /
``val`` / ``test``). As R2Gen did, a study enters only with a non-empty FINDINGS section (no
missing / empty report, no findings-less or combined-header report) and only its images that
exist on disk (every view, laterals included).

Images: with ``mimic_root`` (the folder of a :mod:`.mimic_cxr` emulation made with the same
arguments) nothing is rendered and ``manifest_of_quirks.json`` records ``image_root`` as the
path of ``<mimic_root>/files`` relative to ``out_dir``; without it the referenced images are
rendered into ``out_dir/images/`` (same bytes as the MIMIC emulation writes).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from ..render import render_frontal, render_lateral, to_uint8
from ..targets import image_truth_labels
from .common import EmulationResult, TreeWriter, encode_jpeg, latent_record, map_ordered, run_emulation
from .mimic_cxr import MimicJob, layout, plan_jobs

DATASET = "mimic_rrg"
R2GEN_SPLIT = {"train": "train", "validate": "val", "test": "test"}


@dataclass
class RRGOutput:
    files: list
    entries: list
    latent_line: str
    excluded: str           # why the study has no entry ("" if it has)


def _entries(job: MimicJob, render: bool) -> RRGOutput:
    lay = layout(job)
    findings = lay.sections.get("findings")
    if lay.report_state != "text":
        excluded = f"{lay.report_state}_report"
    elif not findings:
        excluded = "no_findings_section"
    else:
        excluded = ""
    entries, files = [], []
    if not excluded:
        frontal = lateral = None
        for im in lay.images:
            if not im.written:
                continue
            rel = im.path[len("files/"):]
            entries.append({"id": im.dicom_id, "study_id": job.study_id, "subject_id": job.subject_id,
                            "report": findings, "image_path": [rel], "split": R2GEN_SPLIT[job.split]})
            if render:
                if im.kind == "lateral":
                    lateral = render_lateral(lay.latent, job.image_px) if lateral is None else lateral
                    pixels = lateral
                else:
                    frontal = render_frontal(lay.latent, job.image_px) if frontal is None else frontal
                    pixels = frontal
                files.append((f"images/{rel}", encode_jpeg(to_uint8(pixels))))
    ids = {"split": R2GEN_SPLIT[job.split], "subject_id": job.subject_id, "study_id": job.study_id,
           "entries": [e["id"] for e in entries]}
    line = latent_record(job.spec, lay.latent, lay.reports, ids, findings=findings, excluded=excluded or None,
                         report_labels=lay.reports["r2gen"].labels, image_truth=image_truth_labels(lay.latent))
    return RRGOutput(files, entries, line, excluded)


def _render_entries(job: MimicJob) -> RRGOutput:
    return _entries(job, True)


def _layout_entries(job: MimicJob) -> RRGOutput:
    return _entries(job, False)


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None,
            mimic_root: Optional[Path] = None, contrast_gain: float = 1.0) -> EmulationResult:
    """Write R2Gen's MIMIC ``annotation.json`` (and, without ``mimic_root``, its images)."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)
    out_dir = Path(out_dir)
    if mimic_root is not None:
        image_root = Path(os.path.relpath(Path(mimic_root).resolve() / "files", out_dir.resolve())).as_posix()
        fn = _layout_entries
        workers = 1  # no pixels: not worth a process pool
    else:
        image_root = "images"
        fn = _render_entries

    def body(w: TreeWriter):
        ann = {s: [] for s in R2GEN_SPLIT.values()}
        excluded: dict[str, list] = {}
        studies = {s: 0 for s in ann}
        for job, out in zip(jobs, map_ordered(fn, jobs, workers)):
            for rel, data in out.files:
                w.write_bytes(rel, data)
            w.latent_line(out.latent_line)
            split = R2GEN_SPLIT[job.split]
            ann[split] += out.entries
            studies[split] += bool(out.entries)
            if out.excluded:
                excluded.setdefault(out.excluded, []).append(f"s{job.study_id}")
        w.write_text("annotation.json", json.dumps(ann, ensure_ascii=False))
        counts_out = {s: {"entries": len(ann[s]), "studies": studies[s]} for s in ann}
        quirks = {
            "excluded_studies": excluded,
            "note": "ids, reports and paths mirror the mimic_cxr emulation with the same arguments",
        }
        expected = {"rows": {s: len(ann[s]) for s in ann},
                    "patients": len({e["subject_id"] for entries in ann.values() for e in entries}),
                    "positives": None, "warnings": {}}
        info = {"format": "R2Gen MIMIC-CXR annotation.json", "native_version": "R2Gen mimic_cxr", "size": size,
                "seed": seed, "contrast_gain": float(contrast_gain), "image_px": jobs[0].image_px if jobs else image_px,
                "image_root": image_root}
        return counts_out, quirks, expected, info

    return run_emulation(out_dir, DATASET, body)
