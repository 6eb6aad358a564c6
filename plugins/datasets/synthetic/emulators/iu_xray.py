"""IU X-ray (OpenI) with the R2Gen split file, in miniature (datasets.md §1.7, §4.7).

Tree written under ``out_dir`` (the native root):

* ``ecgen-radiology/<uid>.xml`` -- one OpenI report per study (``eCitation`` root): ``uId``
  ``CXR<uid>``, ``AbstractText`` elements labelled ``COMPARISON``, ``INDICATION``, ``FINDINGS``,
  ``IMPRESSION`` (IU-style text: no headers, ``XXXX`` de-identification tokens, occasionally
  numbered sentences), ``MeSH/major`` terms, and one ``parentImage id="CXR<uid>_IM-<mmmm>-<k>001"``
  per image (``k`` = 1 frontal, 2 lateral) with a caption;
* ``NLMCXR_png/CXR<uid>_IM-<mmmm>-<k>001.png`` -- the raw OpenI PNGs (8-bit grayscale);
* ``images/CXR<uid>_IM-<mmmm>/0.png`` (frontal) and ``1.png`` (lateral) -- the same pixels in the
  R2Gen layout;
* ``annotation.json`` -- R2Gen's split file ``{"train": [...], "val": [...], "test": [...]}``;
  each entry ``{"id": "CXR<uid>_IM-<mmmm>", "report": <findings>, "image_path":
  ["<id>/0.png", "<id>/1.png"], "split": ...}`` (paths relative to ``images/``).

Studies (profile ``iu``: every study has a lateral): the size's ``train`` / ``valid`` / ``test``
counts become the R2Gen ``train`` / ``val`` / ``test`` entries (uids shuffled across splits).
Planted (written as XML, absent from ``annotation.json``, as R2Gen dropped such studies): one
report whose ``FINDINGS`` element is empty, one report without any ``parentImage``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from ..latent import SampleSpec
from ..render import render_frontal, render_lateral, to_uint8
from ..reports import generate_reports, plan_report
from ..study import latent_from_spec
from ..targets import image_truth_labels
from .common import (
    EmulationResult,
    TreeWriter,
    encode_png,
    id_rng,
    latent_record,
    map_ordered,
    resolve_counts,
    run_emulation,
    size_spec,
    with_contrast_gain,
)

DATASET = "iu_xray"
R2GEN_SPLITS = ("train", "val", "test")
MESH_NAMES = {
    "consolidation": "Consolidation", "ground_glass": "Opacity", "atelectasis": "Pulmonary Atelectasis",
    "effusion": "Pleural Effusion", "edema": "Pulmonary Edema", "nodule": "Nodule", "pneumothorax": "Pneumothorax",
    "cardiomegaly": "Cardiomegaly", "widened_mediastinum": "Mediastinum", "rib_fracture": "Fractures, Bone",
    "pleural_thickening": "Pleural Thickening",
}


@dataclass(frozen=True)
class IUJob:
    spec: SampleSpec
    uid: int
    image_set: int
    split: str             # R2Gen split, or "" for a planted study left out of annotation.json
    image_px: int
    empty_findings: bool = False
    no_images: bool = False

    @property
    def r2gen_id(self) -> str:
        return f"CXR{self.uid}_IM-{self.image_set:04d}"


@dataclass
class IUOutput:
    files: list
    entry: Optional[dict]
    latent_line: str
    xxxx: int
    numbered: bool


def plan_jobs(size: str, seed: int, image_px: Optional[int] = None,
              counts: Optional[Mapping[str, int]] = None, *, contrast_gain: float = 1.0) -> list[IUJob]:
    c = resolve_counts(size, counts)
    px = int(image_px or size_spec(size).image_px)
    splits = ["train"] * c["train"] + ["val"] * c["valid"] + ["test"] * c["test"]
    n = len(splits)
    rng = id_rng(seed, DATASET, "ids")
    planted = ["empty_findings", "no_images"] if n else []
    slots = splits + planted
    order = rng.permutation(len(slots)).tolist()     # uids are assigned in this shuffled order
    uid, jobs, used_sets = 0, [], set()
    for pos in order:
        uid += int(rng.integers(1, 4))
        image_set = int(rng.integers(1, 10000))
        while image_set in used_sets:
            image_set = int(rng.integers(1, 10000))
        used_sets.add(image_set)
        kind = slots[pos]
        split = kind if kind in R2GEN_SPLITS else ""
        jobs.append(IUJob(SampleSpec(seed, "iu", pos, "iu"), uid, image_set, split, px,
                          empty_findings=kind == "empty_findings", no_images=kind == "no_images"))
    return with_contrast_gain(jobs, contrast_gain)


def _xml(job: IUJob, findings: str, impression: str, indication: str, comparison: str, mesh: list) -> bytes:
    root = ET.Element("eCitation")
    ET.SubElement(root, "meta", type="rr")
    ET.SubElement(root, "uId", id=f"CXR{job.uid}")
    ET.SubElement(root, "pmcId", id=str(job.uid))
    ET.SubElement(root, "docSource").text = "CXR"
    ET.SubElement(root, "IUXRId", id=str(job.uid))
    ET.SubElement(root, "licenseType").text = "open-access"
    ET.SubElement(root, "specialty").text = "pulmonary diseases"
    ET.SubElement(root, "subset").text = "CXR"
    cit = ET.SubElement(root, "MedlineCitation", Owner="Indiana University", Status="supplied by publisher")
    art = ET.SubElement(cit, "Article", PubModel="Electronic")
    ET.SubElement(art, "ArticleTitle").text = "Indiana University Chest X-ray Collection"
    abstract = ET.SubElement(art, "Abstract")
    for label, text in (("COMPARISON", comparison), ("INDICATION", indication), ("FINDINGS", findings),
                        ("IMPRESSION", impression)):
        el = ET.SubElement(abstract, "AbstractText", Label=label)
        if text:
            el.text = text
    m = ET.SubElement(root, "MeSH")
    for term in mesh:
        ET.SubElement(m, "major").text = term
    if not job.no_images:
        for k, caption in ((1, "Xray Chest PA and Lateral"), (2, "Xray Chest PA and Lateral")):
            img = ET.SubElement(root, "parentImage", id=f"{job.r2gen_id}-{k}001")
            ET.SubElement(img, "figureId").text = f"F{k}"
            ET.SubElement(img, "caption").text = caption
            panel = ET.SubElement(img, "panel", type="single")
            ET.SubElement(panel, "url").text = f"/hadoop/storage/radiology/extract/{job.r2gen_id}-{k}001.jpg"
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n"


def emulate_study(job: IUJob) -> IUOutput:
    latent = latent_from_spec(job.spec)
    reports = generate_reports(latent, ("iu", "5xn"))
    iu = reports["iu"]
    findings = "" if job.empty_findings else iu.text
    impression = reports["5xn"].text
    plan = plan_report(latent)
    rng = id_rng(job.spec.seed, DATASET, "xml", job.uid)
    comparison = "None." if rng.random() < 0.6 else "XXXX"
    mesh = [MESH_NAMES[f.kind] + (f"/{f.side}" if f.side in ("right", "left", "bilateral") else "")
            for f in latent.findings] or ["normal"]
    files = [(f"ecgen-radiology/{job.uid}.xml", _xml(job, findings, impression, plan.indication.capitalize(),
                                                     comparison, mesh))]
    paths = []
    if not job.no_images:
        frontal = encode_png(to_uint8(render_frontal(latent, job.image_px)))
        lateral = encode_png(to_uint8(render_lateral(latent, job.image_px)))
        for k, data in ((0, frontal), (1, lateral)):
            files.append((f"NLMCXR_png/{job.r2gen_id}-{k + 1}001.png", data))
            files.append((f"images/{job.r2gen_id}/{k}.png", data))
            paths.append(f"{job.r2gen_id}/{k}.png")
    entry = None
    if job.split:
        entry = {"id": job.r2gen_id, "report": findings, "image_path": paths, "split": job.split}
    ids = {"uid": f"CXR{job.uid}", "id": job.r2gen_id, "split": job.split or None,
           "xml": f"ecgen-radiology/{job.uid}.xml", "image_path": paths}
    line = latent_record(job.spec, latent, reports, ids, findings=findings, impression=impression,
                         empty_findings=job.empty_findings, no_images=job.no_images,
                         report_labels=iu.labels, image_truth=image_truth_labels(latent))
    return IUOutput(files, entry, line, int(iu.variant.get("xxxx", 0)), bool(iu.variant.get("numbered")))


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None,
            contrast_gain: float = 1.0) -> EmulationResult:
    """Write an emulated IU X-ray (OpenI + R2Gen) tree into ``out_dir`` (see the module docstring)."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)

    def body(w: TreeWriter):
        ann = {s: [] for s in R2GEN_SPLITS}
        xxxx, numbered = [], []
        for job, out in zip(jobs, map_ordered(emulate_study, jobs, workers)):
            for rel, data in out.files:
                w.write_bytes(rel, data)
            w.latent_line(out.latent_line)
            if out.entry is not None:
                ann[job.split].append(out.entry)
            if out.xxxx:
                xxxx.append(job.r2gen_id)
            if out.numbered:
                numbered.append(job.r2gen_id)
        for s in R2GEN_SPLITS:
            ann[s].sort(key=lambda e: int(e["id"][3:].split("_")[0]))
        w.write_text("annotation.json", json.dumps(ann, ensure_ascii=False))
        counts_out = {s: {"entries": len(ann[s])} for s in R2GEN_SPLITS}
        counts_out["xml_reports"] = {"files": len(jobs)}
        quirks = {
            "xxxx_tokens": {"ids": xxxx},
            "numbered_sentences": {"ids": numbered},
            "empty_findings": {"xml": [f"ecgen-radiology/{j.uid}.xml" for j in jobs if j.empty_findings],
                               "note": "FINDINGS element empty; not in annotation.json"},
            "no_images": {"xml": [f"ecgen-radiology/{j.uid}.xml" for j in jobs if j.no_images],
                          "note": "no parentImage; not in annotation.json"},
        }
        expected = {
            "rows": {s: len(ann[s]) for s in R2GEN_SPLITS},
            "patients": None,
            "positives": None,
            "xml_reports": len(jobs),
            "images_per_entry": 2,
            "warnings": {},
        }
        info = {"format": "IU X-ray: OpenI ecgen-radiology XML + PNG, R2Gen annotation.json",
                "native_version": "R2Gen iu_xray", "size": size, "seed": seed, "contrast_gain": float(contrast_gain),
                "image_px": int(image_px or size_spec(size).image_px)}
        return counts_out, quirks, expected, info

    return run_emulation(out_dir, DATASET, body)
