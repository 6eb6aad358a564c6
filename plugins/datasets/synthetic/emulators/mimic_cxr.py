"""MIMIC-CXR-JPG 2.0.0 + MIMIC-CXR free-text reports, in miniature (datasets.md §1.1, §4.7).

Tree written under ``out_dir`` (the native root):

* ``files/p1X/p1NNNNNNN/s5NNNNNNN/<dicom_id>.jpg`` -- 8-bit grayscale JPEGs, one per image;
  ``pXX`` is "p" + the first two digits of the 8-digit subject id (which starts with 1);
  study ids have 8 digits and start with 5; ``dicom_id`` is five dash-joined groups of 8
  lower-case hex digits (44 characters);
* ``files/p1X/p1NNNNNNN/s5NNNNNNN.txt`` -- the report of the study, beside (not inside) its
  folder (MIMIC-style layout of §4.5: ``FINAL REPORT`` banner, `` NAME:`` headers, lines
  wrapped at 79 characters with a leading space);
* ``mimic-cxr-2.0.0-metadata.csv.gz`` -- ``dicom_id, subject_id, study_id,
  PerformedProcedureStepDescription, ViewPosition, Rows, Columns, StudyDate, StudyTime,
  ProcedureCodeSequence_CodeMeaning, ViewCodeSequence_CodeMeaning,
  PatientOrientationCodeSequence_CodeMeaning``, one row per image;
* ``mimic-cxr-2.0.0-split.csv.gz`` -- ``dicom_id, study_id, subject_id, split`` with split in
  ``train`` / ``validate`` / ``test`` (patient-disjoint);
* ``mimic-cxr-2.0.0-chexpert.csv.gz`` and ``mimic-cxr-2.0.0-negbio.csv.gz`` --
  ``subject_id, study_id`` + the 14 observations in alphabetical order, study-level, values
  ``1.0`` / ``0.0`` / ``-1.0`` / blank, from the report text (one row per study whose report
  file exists; an empty report gives an all-blank row). The negbio file holds the same values;
* ``IMAGE_FILENAMES`` -- every listed image path (``files/...jpg``), one per line.

``gzip_csv=False`` writes the four tables as plain ``.csv`` instead (MGCA's expectation).

Studies: official ``train`` = the size's ``pretrain`` count, ``validate`` = ``valid``, ``test`` =
``test`` natural studies plus the synthetic 5xN set (§4.8; ``5 * counts["5xn"]`` exclusive
single-finding frontal studies, view-balanced) from which ``prepare`` builds MIMIC-5xN.
Patients hold 1-3 consecutive studies of one split. Each study has its frontal image (PA/AP
from the latent), its lateral when the latent has one (``LATERAL``, or ``LL`` for 20 %).

Planted quirks (train split; see ``manifest_of_quirks.json``): a second frontal image in a few
studies (same pixels, its own dicom id); one image listed in every table but absent on disk;
at least one empty report file and one missing report file (besides the generator's own
0.5 % + 0.5 %); laterals; studies without FINDINGS, with combined / misspelled headers or
numbered impressions come from the report generator and are counted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

import numpy as np

from ..latent import SampleSpec
from ..lexicon import OBSERVATIONS
from ..render import render_frontal, render_lateral, to_uint8
from ..reports import generate_reports
from ..study import latent_from_spec
from ..subsets import five_by_n_specs
from ..targets import image_truth_labels
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

DATASET = "mimic_cxr"
VERSION = "2.0.0"
PREFIX = f"mimic-cxr-{VERSION}-"
METADATA_COLUMNS = (
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows", "Columns",
    "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
LABEL_OBSERVATIONS = (
    "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Enlarged Cardiomediastinum", "Fracture",
    "Lung Lesion", "Lung Opacity", "No Finding", "Pleural Effusion", "Pleural Other", "Pneumonia",
    "Pneumothorax", "Support Devices",
)
LABEL_COLUMNS = ("subject_id", "study_id") + LABEL_OBSERVATIONS
OFFICIAL_SPLITS = ("train", "validate", "test")
VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral", "LL": "left lateral"}
P_LL = 0.2

assert sorted(OBSERVATIONS) == list(LABEL_OBSERVATIONS)


@dataclass(frozen=True)
class MimicJob:
    """One study to emulate: its sample spec, ids and planted quirks."""

    spec: SampleSpec
    split: str              # official split
    subject_id: int
    study_id: int
    study_date: int
    study_time: str
    image_px: int
    second_frontal: bool = False
    missing_image: bool = False       # the frontal image is listed but not written
    report_override: str = ""         # "", "empty" or "missing"


@dataclass
class MimicImage:
    dicom_id: str
    view: str
    kind: str         # frontal | frontal2 | lateral
    path: str         # relative to the root
    written: bool


@dataclass
class MimicLayout:
    """Everything about a study except its pixels (cheap: no rendering)."""

    job: MimicJob
    latent: object
    reports: dict
    images: list
    report_path: str
    report_state: str     # text | empty | missing

    @property
    def report_text(self) -> str:
        return "" if self.report_state != "text" else self.reports["mimic"].text

    @property
    def sections(self) -> dict:
        return self.reports["mimic"].sections if self.report_state == "text" else {}


# ---------------------------------------------------------------------------- ids
def study_dir(subject_id: int, study_id: int) -> str:
    s = str(subject_id)
    return f"files/p{s[:2]}/p{s}/s{study_id}"


def dicom_id(rng: np.random.Generator) -> str:
    return "-".join(f"{int(x):08x}" for x in rng.integers(0, 2**32, size=5, dtype=np.uint64))


def _unique(rng: np.random.Generator, lo: int, hi: int, used: set) -> int:
    while True:
        v = int(rng.integers(lo, hi))
        if v not in used:
            used.add(v)
            return v


def plan_jobs(size: str, seed: int, image_px: Optional[int] = None,
              counts: Optional[Mapping[str, int]] = None, *, contrast_gain: float = 1.0) -> list[MimicJob]:
    """The studies of an emulation, in writing order (train, validate, test natural, 5xN).
    Pure function of the arguments; no pixels or reports are generated (5xN selection reads
    report labels)."""
    c = resolve_counts(size, counts)
    px = int(image_px or size_spec(size).image_px)
    specs: list[tuple[str, SampleSpec]] = []
    for split, n in (("train", c["pretrain"]), ("validate", c["valid"]), ("test", c["test"])):
        specs += [(split, SampleSpec(seed, split, i, "mimic")) for i in range(n)]
    if c["5xn"] > 0:
        specs += [("test", s) for s in five_by_n_specs(seed, c["5xn"], profile="mimic", text_ok=_caption_ok)]

    rng = id_rng(seed, DATASET, "ids")
    used_subjects: set = set()
    used_studies: set = set()
    jobs = []
    n_train = c["pretrain"]
    q = id_rng(seed, DATASET, "quirks")
    second = set(pick_indices(q, n_train, max(1, round(0.03 * n_train))))
    planted = pick_indices(q, n_train, 3, exclude=second)
    missing_image = set(planted[:1])
    empty = set(planted[1:2])
    missing_report = set(planted[2:3])

    remaining = 0
    subject = 0
    prev_split = None
    base_day = 0
    for k, (split, spec) in enumerate(specs):
        if remaining == 0 or split != prev_split:  # patients never span splits
            subject = _unique(rng, 10_000_000, 20_000_000, used_subjects)
            remaining = int(rng.choice([1, 1, 2, 3]))
            base_day = int(rng.integers(0, 365 * 80))
        remaining -= 1
        prev_split = split
        day = base_day + int(rng.integers(0, 400))
        year, rest = 2110 + day // 365, day % 365
        date = year * 10000 + (1 + rest // 31) * 100 + (1 + rest % 28)
        time_s = f"{int(rng.integers(0, 24)):02d}{int(rng.integers(0, 60)):02d}{int(rng.integers(0, 60)):02d}." \
                 f"{int(rng.integers(0, 1000)):03d}"
        study = _unique(rng, 50_000_000, 60_000_000, used_studies)
        i = spec.index if split == "train" else -1
        jobs.append(MimicJob(spec, split, subject, study, date, time_s, px,
                             second_frontal=i in second, missing_image=i in missing_image,
                             report_override="empty" if i in empty else "missing" if i in missing_report else ""))
    return with_contrast_gain(jobs, contrast_gain)


def layout(job: MimicJob) -> MimicLayout:
    """Ids, views, paths and report of a study, without rendering."""
    latent = latent_from_spec(job.spec)
    reports = generate_reports(latent, ("mimic", "r2gen"))
    rng = id_rng(job.spec.seed, DATASET, "dicom", job.spec.split, job.spec.index, job.spec.attempt)
    folder = study_dir(job.subject_id, job.study_id)
    images = []
    kinds = [("frontal", latent.view)]
    if job.second_frontal:
        kinds.append(("frontal2", latent.view))
    if latent.has_lateral:
        kinds.append(("lateral", "LL" if rng.random() < P_LL else "LATERAL"))
    for j, (kind, view) in enumerate(kinds):
        did = dicom_id(rng)
        images.append(MimicImage(did, view, kind, f"{folder}/{did}.jpg", not (job.missing_image and j == 0)))
    rep = reports["mimic"]
    if job.report_override:
        state = job.report_override
    elif rep.missing:
        state = "missing"
    elif rep.text == "":
        state = "empty"
    else:
        state = "text"
    return MimicLayout(job, latent, reports, images, f"{folder}.txt", state)


# ----------------------------------------------------------------------- per study
@dataclass
class MimicOutput:
    files: list             # (relative path, bytes)
    metadata: list          # rows
    splits: list            # rows
    labels: Optional[list]  # one row or None
    image_paths: list
    latent_line: str
    stats: dict


def mgca_caption_tokens(impression: str, findings: str) -> int:
    """Tokens MGCA keeps from a report (§1.1): caption = impression + " " + findings, split at
    enumerations ("1.") and periods, per sentence the lower-cased ASCII ``\\w+`` runs, sentences
    with <= 1 token dropped. A pair is kept when this is >= 3."""
    caption = f"{impression} {findings}".replace("\n", " ")
    total = 0
    for chunk in re.split(r"\d+\.", caption):
        for sentence in chunk.split("."):
            tokens = re.findall(r"\w+", sentence.lower().encode("ascii", "ignore").decode())
            if len(tokens) > 1:
                total += len(tokens)
    return total


def _caption_ok(sections: Mapping[str, str]) -> bool:
    """The text rule ``prepare`` applies to MIMIC-CXR pairs and 5x200 candidates."""
    return mgca_caption_tokens(sections.get("impression") or "", sections.get("findings") or "") >= 3


def _procedure(view: str, two_views: bool) -> str:
    if view == "AP":
        return "CHEST (PORTABLE AP)"
    return "CHEST (PA AND LAT)" if two_views else "CHEST (PA)"


def _label_value(v) -> Optional[str]:
    return None if v is None else f"{float(v):.1f}"


def emulate_study(job: MimicJob) -> MimicOutput:
    lay = layout(job)
    latent = lay.latent
    px = job.image_px
    frontal = lateral = None
    files = []
    for im in lay.images:
        if not im.written:
            continue
        if im.kind == "lateral":
            lateral = render_lateral(latent, px) if lateral is None else lateral
            pixels = lateral
        else:
            frontal = render_frontal(latent, px) if frontal is None else frontal
            pixels = frontal
        files.append((im.path, encode_jpeg(to_uint8(pixels))))
    if lay.report_state != "missing":
        files.append((lay.report_path, lay.report_text.encode("utf-8")))

    procedure = _procedure(latent.view, latent.has_lateral)
    metadata, splits, image_paths = [], [], []
    for im in lay.images:
        orientation = "Recumbent" if latent.view == "AP" and im.kind != "lateral" else "Erect"
        metadata.append([im.dicom_id, job.subject_id, job.study_id, procedure, im.view, px, px, job.study_date,
                         job.study_time, procedure, VIEW_MEANING[im.view], orientation])
        splits.append([im.dicom_id, job.study_id, job.subject_id, job.split])
        image_paths.append(im.path)

    labels = None
    rep_labels = lay.reports["mimic"].labels if lay.report_state == "text" else {o: None for o in OBSERVATIONS}
    if lay.report_state != "missing":
        labels = [job.subject_id, job.study_id] + [_label_value(rep_labels[o]) for o in LABEL_OBSERVATIONS]

    sections = lay.sections
    has_text = bool(sections.get("findings") or sections.get("impression"))
    mgca_ok = mgca_caption_tokens(sections.get("impression", ""), sections.get("findings", "")) >= 3
    frontal_ims = [im for im in lay.images if im.view in ("PA", "AP")]
    variant = lay.reports["mimic"].variant
    stats = {
        "images": len(lay.images),
        "images_on_disk": sum(im.written for im in lay.images),
        "frontal": len(frontal_ims),
        "frontal_on_disk": sum(im.written for im in frontal_ims),
        "lateral": sum(im.view == "LATERAL" for im in lay.images),
        "ll": sum(im.view == "LL" for im in lay.images),
        "frontal_with_text": len(frontal_ims) if has_text else 0,
        "frontal_with_text_on_disk": sum(im.written for im in frontal_ims) if has_text else 0,
        "mgca_pairs": sum(im.written for im in frontal_ims) if mgca_ok else 0,
        "report_state": lay.report_state,
        "no_findings_section": lay.report_state == "text" and "findings" not in sections,
        "no_impression_section": lay.report_state == "text" and "impression" not in sections,
        "combined_header": lay.report_state == "text" and bool(variant.get("combined")),
        "misspelled_header": lay.report_state == "text" and bool(variant.get("misspelled")),
        "addendum": lay.report_state == "text" and bool(variant.get("addendum")),
        "numbered_impression": (lay.report_state == "text" and "impression" in sections
                                and bool(variant.get("numbered"))),
        "two_frontal": sum(im.kind == "frontal2" for im in lay.images) > 0,
    }
    ids = {"split": job.split, "subject_id": job.subject_id, "study_id": job.study_id,
           "images": [{"dicom_id": im.dicom_id, "view": im.view, "kind": im.kind, "path": im.path,
                       "written": im.written} for im in lay.images],
           "report_path": lay.report_path}
    line = latent_record(job.spec, latent, lay.reports, ids, report_state=lay.report_state,
                         report_sections=sections, report_labels=rep_labels, image_truth=image_truth_labels(latent))
    return MimicOutput(files, metadata, splits, labels, image_paths, line, stats)


# -------------------------------------------------------------------------- driver
STAT_KEYS = ("images", "images_on_disk", "frontal", "frontal_on_disk", "lateral", "ll", "frontal_with_text",
             "frontal_with_text_on_disk", "mgca_pairs")
FLAG_KEYS = ("no_findings_section", "no_impression_section", "combined_header", "misspelled_header", "addendum",
             "numbered_impression", "two_frontal")


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None, gzip_csv: bool = True,
            contrast_gain: float = 1.0) -> EmulationResult:
    """Write an emulated MIMIC-CXR-JPG + reports tree into ``out_dir`` (see the module docstring).
    ``image_px``: side of the square images (default: the size's ``image_px``)."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)
    ext = ".csv.gz" if gzip_csv else ".csv"

    def body(w: TreeWriter):
        metadata, splits, labels, image_paths = [], [], [], []
        per_split = {s: {k: 0 for k in ("studies",) + STAT_KEYS} for s in OFFICIAL_SPLITS}
        subjects = {s: set() for s in OFFICIAL_SPLITS}
        flags = {k: [] for k in FLAG_KEYS}
        states = {"empty": [], "missing": []}
        missing_images = []
        for job, out in zip(jobs, map_ordered(emulate_study, jobs, workers)):
            for rel, data in out.files:
                w.write_bytes(rel, data)
            w.latent_line(out.latent_line)
            metadata += out.metadata
            splits += out.splits
            if out.labels is not None:
                labels.append(out.labels)
            image_paths += out.image_paths
            agg = per_split[job.split]
            agg["studies"] += 1
            for k in STAT_KEYS:
                agg[k] += out.stats[k]
            subjects[job.split].add(job.subject_id)
            for k in FLAG_KEYS:
                if out.stats[k]:
                    flags[k].append(f"s{job.study_id}")
            if out.stats["report_state"] in states:
                states[out.stats["report_state"]].append(f"s{job.study_id}")
            if job.missing_image:
                missing_images.append(out.metadata[0][0])
        w.write_csv(PREFIX + "metadata" + ext, METADATA_COLUMNS, metadata, gz=gzip_csv)
        w.write_csv(PREFIX + "split" + ext, SPLIT_COLUMNS, splits, gz=gzip_csv)
        w.write_csv(PREFIX + "chexpert" + ext, LABEL_COLUMNS, labels, gz=gzip_csv)
        w.write_csv(PREFIX + "negbio" + ext, LABEL_COLUMNS, labels, gz=gzip_csv)
        w.write_text("IMAGE_FILENAMES", "".join(p + "\n" for p in image_paths))

        counts_out = {s: {**per_split[s], "subjects": len(subjects[s])} for s in OFFICIAL_SPLITS}
        planted = {
            "two_frontal_images": {"studies": [f"s{j.study_id}" for j in jobs if j.second_frontal],
                                   "note": "a second frontal image (same pixels, own dicom_id)"},
            "missing_image_on_disk": {"dicom_ids": missing_images,
                                      "note": "listed in metadata, split and IMAGE_FILENAMES, absent from files/"},
            "empty_report": {"studies": states["empty"], "planted": [f"s{j.study_id}" for j in jobs
                                                                     if j.report_override == "empty"],
                             "note": "zero-byte .txt; its chexpert/negbio row is all blank"},
            "missing_report": {"studies": states["missing"], "planted": [f"s{j.study_id}" for j in jobs
                                                                         if j.report_override == "missing"],
                               "note": "no .txt and no chexpert/negbio row"},
            **{k: {"studies": v, "note": "from the report generator / latent (counted, not forced)"}
               for k, v in flags.items() if k != "two_frontal"},
            "laterals": {"LATERAL": sum(c["lateral"] for c in counts_out.values()),
                         "LL": sum(c["ll"] for c in counts_out.values())},
            "csv_names": f"tables written as {ext} (loaders must accept .csv and .csv.gz)",
            "validate_split_name": "the official split file says 'validate', not 'valid'",
        }
        total = lambda key: sum(c[key] for c in counts_out.values())  # noqa: E731
        positives = {o: sum(row[2 + k] == "1.0" for row in labels) for k, o in enumerate(LABEL_OBSERVATIONS)}
        expected = {
            # manifest rows: every image on disk; MGCA pretraining pairs (frontal, on disk, caption >= 3 tokens)
            "rows": {"all_images": total("images_on_disk"), "mgca_pairs": total("mgca_pairs")},
            "patients": sum(len(v) for v in subjects.values()),
            "positives": positives,
            "metadata_rows": len(metadata),
            "images_on_disk": total("images_on_disk"),
            "studies": len(jobs),
            "subjects": sum(len(v) for v in subjects.values()),
            "frontal_images": total("frontal"),
            "frontal_images_on_disk": total("frontal_on_disk"),
            "frontal_images_with_text": total("frontal_with_text"),
            "frontal_images_with_text_on_disk": total("frontal_with_text_on_disk"),
            "label_rows": len(labels),
            "five_by_n_per_class": resolve_counts(size, counts)["5xn"],
            "warnings": {"missing_image": len(missing_images), "missing_report": len(states["missing"]),
                         "empty_report": len(states["empty"])},
        }
        info = {"format": f"MIMIC-CXR-JPG {VERSION} + MIMIC-CXR reports", "native_version": VERSION,
                "size": size, "seed": seed, "contrast_gain": float(contrast_gain),
                "image_px": jobs[0].image_px if jobs else image_px,
                "splits": {"train": "official train", "validate": "official validate",
                           "test": "official test: natural studies + synthetic 5xN (latent split '5xn')"}}
        return counts_out, planted, expected, info

    return run_emulation(out_dir, DATASET, body)
