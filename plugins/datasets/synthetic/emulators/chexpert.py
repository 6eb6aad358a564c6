"""CheXpert-v1.0-small, in miniature (datasets.md §1.2, §4.7).

Tree written under ``out_dir`` (the native root, i.e. the content of ``CheXpert-v1.0-small/``):

* ``train.csv`` and ``valid.csv`` with columns ``Path, Sex, Age, Frontal/Lateral, AP/PA`` then
  the 14 observations in CheXpert order (No Finding, Enlarged Cardiomediastinum, Cardiomegaly,
  Lung Opacity, Lung Lesion, Edema, Consolidation, Pneumonia, Atelectasis, Pneumothorax, Pleural
  Effusion, Pleural Other, Fracture, Support Devices); values ``1.0 / 0.0 / -1.0 / blank``;
* ``Path`` = ``CheXpert-v1.0-small/<train|valid>/patientNNNNN/studyK/viewJ_<frontal|lateral>.jpg``
  (loaders strip the first component and join the rest to the root); the images are written at
  ``<train|valid>/patientNNNNN/studyK/viewJ_<frontal|lateral>.jpg``;
* ``Frontal/Lateral`` in ``Frontal`` / ``Lateral``; ``AP/PA`` = ``AP`` / ``PA`` for frontal rows
  and blank for laterals; ``Sex`` ``Male`` / ``Female`` and ``Age`` (an integer) per patient
  (drawn with the ids, not from the latent; CheXpert has no report text to contradict them).

``train.csv`` holds the size's ``train + valid`` natural studies (profile ``chexpert``) and the
synthetic 5xN source (``5 * counts["5xn"]`` exclusive single-finding frontal studies, §4.8),
shuffled together and numbered ``patient00001`` ... (1-3 studies per patient); its labels are
the report labels (text-derived, with blanks and -1). ``valid.csv`` holds the size's ``test``
studies, one per patient numbered from ``patient64541``, labelled 0/1 from the image truth
(radiologist consensus in the real data: no blanks, no -1). Rows are sorted by ``Path``.

Planted quirks: laterals with blank ``AP/PA`` (natural), a second frontal image in a few studies
(``view2_frontal.jpg``), one frontal row whose ``AP/PA`` is ``LL`` (the real file has a handful of
such values), one ``Sex = Unknown`` row.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Optional

from ..latent import SampleSpec
from ..lexicon import COMPETITION, OBSERVATIONS
from ..render import render_frontal, render_lateral, to_uint8
from ..reports import generate_reports
from ..study import latent_from_spec
from ..subsets import five_by_n_class, five_by_n_specs
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

DATASET = "chexpert"
ROOT_NAME = "CheXpert-v1.0-small"
LABELS = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Opacity", "Lung Lesion", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)
COLUMNS = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA") + LABELS
FIRST_VALID_PATIENT = 64541

assert tuple(OBSERVATIONS) == LABELS


@dataclass(frozen=True)
class CheXpertJob:
    spec: SampleSpec
    csv: str                # "train" or "valid"
    patient: int
    study: int              # 1-based within the patient
    sex: str                # Male / Female per patient (planted: one "Unknown" row)
    age: int
    image_px: int
    second_frontal: bool = False
    odd_appa: str = ""      # planted AP/PA value for the frontal row


@dataclass
class CheXpertOutput:
    files: list
    rows: list              # (Path, row)
    latent_line: str
    frontal_labels: list    # label dict per frontal row written


def _fmt(v) -> Optional[str]:
    return None if v is None else f"{float(v):.1f}"


def plan_jobs(size: str, seed: int, image_px: Optional[int] = None,
              counts: Optional[Mapping[str, int]] = None, *, contrast_gain: float = 1.0) -> list[CheXpertJob]:
    c = resolve_counts(size, counts)
    px = int(image_px or size_spec(size).image_px)
    train_specs = [SampleSpec(seed, "train", i, DATASET) for i in range(c["train"] + c["valid"])]
    if c["5xn"] > 0:
        train_specs += five_by_n_specs(seed, c["5xn"], profile=DATASET)
    rng = id_rng(seed, DATASET, "ids")
    order = rng.permutation(len(train_specs))
    q = id_rng(seed, DATASET, "quirks")
    n = len(train_specs)
    second = set(pick_indices(q, n, max(1, round(0.03 * n))))
    planted = pick_indices(q, n, 2)
    odd_appa = set(planted[:1])
    unknown_sex = set(planted[1:2])

    jobs = []
    patient, remaining, study_no, patient_sex, age = 0, 0, 0, "Male", 50
    for k, pos in enumerate(order.tolist()):
        spec = train_specs[pos]
        if remaining == 0:
            patient += 1
            remaining = int(rng.choice([1, 1, 2, 3]))
            study_no = 0
            age = int(rng.integers(18, 91))
            patient_sex = ("Male", "Female")[int(rng.integers(0, 2))]
        remaining -= 1
        study_no += 1
        sex = "Unknown" if k in unknown_sex else patient_sex
        jobs.append(CheXpertJob(spec, "train", patient, study_no, sex, min(age + study_no - 1, 90), px,
                                second_frontal=k in second, odd_appa="LL" if k in odd_appa else ""))
    for i in range(c["test"]):
        spec = SampleSpec(seed, "valid", i, DATASET)
        sex = ("Male", "Female")[int(rng.integers(0, 2))]
        jobs.append(CheXpertJob(spec, "valid", FIRST_VALID_PATIENT + i, 1, sex, int(rng.integers(18, 91)), px))
    return with_contrast_gain(jobs, contrast_gain)


def emulate_study(job: CheXpertJob) -> CheXpertOutput:
    latent = latent_from_spec(job.spec)
    reports = generate_reports(latent, ("mimic",))
    truth = image_truth_labels(latent)
    labels = reports["mimic"].labels if job.csv == "train" else {o: truth[o] for o in LABELS}
    folder = f"{job.csv}/patient{job.patient:05d}/study{job.study}"
    views = [("frontal", latent.view)]
    if job.second_frontal:
        views.append(("frontal", latent.view))
    if latent.has_lateral:
        views.append(("lateral", ""))
    frontal = render_frontal(latent, job.image_px)
    lateral = render_lateral(latent, job.image_px) if latent.has_lateral else None
    files, rows, paths, frontal_labels = [], [], [], []
    for j, (kind, appa) in enumerate(views, start=1):
        rel = f"{folder}/view{j}_{kind}.jpg"
        files.append((rel, encode_jpeg(to_uint8(frontal if kind == "frontal" else lateral))))
        if kind == "frontal" and j == 1 and job.odd_appa:
            appa = job.odd_appa
        path = f"{ROOT_NAME}/{rel}"
        rows.append([path, job.sex, job.age, "Frontal" if kind == "frontal" else "Lateral", appa]
                    + [_fmt(labels[o]) for o in LABELS])
        paths.append(rel)
        if kind == "frontal":
            frontal_labels.append(labels)
    ids = {"csv": f"{job.csv}.csv", "patient": f"patient{job.patient:05d}", "study": f"study{job.study}",
           "paths": paths}
    line = latent_record(job.spec, latent, reports, ids, csv_labels=labels, image_truth=truth,
                         odd_appa=job.odd_appa or None)
    return CheXpertOutput(files, rows, line, frontal_labels)


def emulate(out_dir: Path, size: str = "tiny", seed: int = 0, image_px: Optional[int] = None, *,
            workers: int = 1, counts: Optional[Mapping[str, int]] = None,
            contrast_gain: float = 1.0) -> EmulationResult:
    """Write an emulated CheXpert-v1.0-small tree into ``out_dir`` (see the module docstring)."""
    jobs = plan_jobs(size, seed, image_px, counts, contrast_gain=contrast_gain)

    def body(w: TreeWriter):
        tables = {"train": [], "valid": []}
        stats = {s: {"studies": 0, "rows": 0, "frontal": 0, "lateral": 0, "patients": set()} for s in tables}
        five = {c: 0 for c in COMPETITION}
        positives_valid = {o: 0 for o in LABELS}
        positives_train = {o: 0 for o in LABELS}
        uncertain_train = 0
        for job, out in zip(jobs, map_ordered(emulate_study, jobs, workers)):
            for rel, data in out.files:
                w.write_bytes(rel, data)
            w.latent_line(out.latent_line)
            tables[job.csv] += out.rows
            st = stats[job.csv]
            st["studies"] += 1
            st["rows"] += len(out.rows)
            st["frontal"] += len(out.frontal_labels)
            st["lateral"] += len(out.rows) - len(out.frontal_labels)
            st["patients"].add(job.patient)
            for lab in out.frontal_labels:
                if job.csv == "train":
                    cls = five_by_n_class(lab)
                    if cls is not None:
                        five[cls] += 1
                    uncertain_train += any(v == -1 for v in lab.values())
                    for o in LABELS:
                        positives_train[o] += lab[o] == 1
                else:
                    for o in LABELS:
                        positives_valid[o] += lab[o] == 1
        for name, rows in tables.items():
            rows.sort(key=lambda r: r[0])
            w.write_csv(f"{name}.csv", COLUMNS, rows)
        counts_out = {s: {k: (len(v) if isinstance(v, set) else v) for k, v in st.items()} for s, st in stats.items()}
        odd = [j for j in jobs if j.odd_appa]
        n_per_class = resolve_counts(size, counts)["5xn"]
        quirks = {
            "lateral_blank_appa": {"rows": counts_out["train"]["lateral"] + counts_out["valid"]["lateral"],
                                   "note": "lateral rows have a blank AP/PA"},
            "second_frontal": {"studies": [f"patient{j.patient:05d}/study{j.study}" for j in jobs if j.second_frontal],
                               "note": "view2_frontal.jpg with the same pixels as view1_frontal.jpg"},
            "frontal_appa_ll": {"paths": [f"{ROOT_NAME}/train/patient{j.patient:05d}/study{j.study}/view1_frontal.jpg"
                                          for j in odd], "note": "frontal row with AP/PA = 'LL'"},
            "sex_unknown": {"count": sum(j.sex == "Unknown" for j in jobs)},
            "uncertain_frontal_rows_train": uncertain_train,
            "valid_values": "valid.csv has 0.0 / 1.0 only (no blanks, no -1)",
        }
        expected = {
            # chexpert manifests: train.csv frontal rows minus the 5xN draw, plus valid.csv frontal rows
            "rows": counts_out["train"]["frontal"] - 5 * n_per_class + counts_out["valid"]["frontal"],
            "patients": counts_out["train"]["patients"] + counts_out["valid"]["patients"],
            "positives": {"train_frontal": positives_train, "valid_frontal": positives_valid},
            "train_csv_rows": counts_out["train"]["rows"],
            "valid_csv_rows": counts_out["valid"]["rows"],
            "train_frontal_rows": counts_out["train"]["frontal"],
            "test_rows": counts_out["valid"]["frontal"],
            "train_patients": counts_out["train"]["patients"],
            "valid_patients": counts_out["valid"]["patients"],
            "five_by_n_candidates": five,
            "five_by_n_per_class": n_per_class,
            "warnings": {"view_ambiguous": len(odd), "unexpected_row_count": 2},
        }
        info = {"format": "CheXpert-v1.0-small (Kaggle)", "native_version": ROOT_NAME, "size": size, "seed": seed,
                "contrast_gain": float(contrast_gain), "image_px": jobs[0].image_px if jobs else image_px,
                "splits": {"train.csv": "natural train + valid studies and the 5xN source",
                           "valid.csv": "official validation = downstream test"}}
        return counts_out, quirks, expected, info

    return run_emulation(out_dir, DATASET, body)
