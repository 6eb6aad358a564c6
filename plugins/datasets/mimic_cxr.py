"""MIMIC-CXR-JPG + MIMIC-CXR free-text reports: pretraining pairs and MIMIC-5x200 (datasets.md 1.1, 1.2).

Native root: the MIMIC-CXR-JPG folder (2.0.0 or 2.1.0) holding

* ``mimic-cxr-2.0.0-metadata.csv`` (``dicom_id, subject_id, study_id, ViewPosition, ...``; one row
  per image), ``mimic-cxr-2.0.0-split.csv`` (``dicom_id, study_id, subject_id, split`` with
  ``train`` / ``validate`` / ``test``) and ``mimic-cxr-2.0.0-chexpert.csv`` (or ``-negbio``;
  ``subject_id, study_id`` + the 14 observations of :data:`MIMIC_LABELS`, study level, values
  ``1.0 / 0.0 / -1.0 / blank``), plain or gzipped (``.csv.gz``, the PhysioNet names), also
  accepted with ``2.1.0`` in the name; the sidecar's ``native_version`` says 2.1.0 when any
  ``mimic-cxr-2.1.0-*`` file is in the root (2.1.0 keeps the 2.0.0 table names);
* ``files/pXX/p<subject>/s<study>/<dicom_id>.jpg`` (``pXX`` = "p" + first two digits of the
  subject id);
* the reports of MIMIC-CXR 2.0.0, either unpacked beside the study folders
  (``files/pXX/p<subject>/s<study>.txt``) or as ``mimic-cxr-reports.zip`` in the root (used only
  when no ``.txt`` is unpacked).

Ids are kept as the strings of the tables (``subject_id = "10000032"``, ``study_id =
"50414267"``, ``sample_id`` = ``dicom_id``).

Manifest rows of ``mimic_cxr`` (one per frontal image, ``ViewPosition`` ``PA`` or ``AP``, as in
MGCA's ``preprocess/mimic_cxr.py``):

* ``image_path`` = ``files/pXX/p<subject>/s<study>/<dicom_id>.jpg``; ``aux_image_paths`` = the
  study's ``LATERAL`` / ``LL`` images listed in the split table (sorted by dicom id);
* ``report`` = the raw ``.txt``; ``findings`` / ``impression`` from
  :func:`place_bench.data.report_text.parse_mimic_report` (null when absent);
  ``text_tokens`` = :func:`mgca_caption_tokens` (MGCA's caption rule, impression first);
* ``labels`` = the study's 14 raw values (all NaN, warning ``labels_missing``, when the label
  table has no row for the study); ``source_row`` = JSON of the metadata, split and label records.

An image is left out (counted, per study, in the warnings) when its study has no report file
(``missing_report``), an empty one (``empty_report``), neither findings nor impression
(``no_findings_or_impression``) or fewer than :data:`MIN_TOKENS` caption tokens
(``few_caption_tokens``); images absent from the split table are left out too
(``split_missing``). Nothing here raises on report content. The sidecar's ``pair_counts`` give,
per official split, the images, frontal images, frontal images with impression-or-findings and
those passing the token rule (before image checks). MIT-LCP's hand-written per-study section
overrides (about 50 studies) are not applied, so MGCA's pair set may differ by those.

Protocols of ``mimic_cxr``:

* ``mgca`` -- MGCA pretraining: official ``train`` is train; ``validate`` and ``test`` merged
  into ``valid`` (no test split).
* ``suite`` -- the same rows with the official split kept (``validate`` -> ``valid``, ``test``
  -> ``test``).

Both check that no patient is in two splits (the official split is patient-disjoint).
``frac_rank``: ``RandomState(42)`` permutation over the train rows in metadata order (the order
of MGCA's master table; MGCA's ``data_pct`` is drawn over that table but its dataset iterates a
file list built before the draw, so that membership is not reproduced).

``mimic_5x200`` (protocols ``mgca`` and ``suite``, same rows): the MIMIC analogue of CheXpert 5x200
for zero-shot classification and retrieval, drawn from the official **test** split. Candidates:
one image per study (its first frontal image in the metadata table) whose study passes the text
rule above and whose labels, blanks read as 0, have exactly one competition label 1, the other
four 0 and :data:`FIVE_X_200_ZERO` all 0; ``n_per_class`` (200) drawn per class with
``RandomState(0)`` over the candidates in metadata order. Rows: ``split = "test"``,
``class_index`` / ``class_name``, ``labels`` = the raw five competition values.
"""

from __future__ import annotations

import abc
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from place_bench.data.prepare import (
    ManifestPlan,
    PrepareError,
    PrepareResult,
    PrepareWarnings,
    check_protocol,
    digest_files,
    find_native_file,
    json_record,
    read_native_csv,
    run_prepare,
)
from place_bench.data.report_text import parse_mimic_report
from place_bench.data.splits import frac_ranks, legacy_permutation
from place_bench.hookspecs import hookimpl
from place_bench.plugins.datasets.chexpert import COMPETITION_LABELS, FIVE_X_200_ZERO  # one 5x200 rule

#: The 14 observations in the (alphabetical) column order of the MIMIC-CXR-JPG label tables.
MIMIC_LABELS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)
VERSIONS = ("2.0.0", "2.1.0")
FRONTAL_VIEWS = ("PA", "AP")
LATERAL_VIEWS = ("LATERAL", "LL")
OFFICIAL_SPLITS = ("train", "validate", "test")
SPLIT_OF = {
    "mgca": {"train": "train", "validate": "valid", "test": "valid"},
    "suite": {"train": "train", "validate": "valid", "test": "test"},
}
REPORTS_ZIP = "mimic-cxr-reports.zip"
MIN_TOKENS = 3
#: MIMIC-CXR-JPG 2.0.0 as published (datasets.md section 1.1): images and labelled studies.
EXPECTED = {"metadata_rows": 377_110, "label_rows": 227_827}

FRACTION_SEED = 42
FIVE_X_200_SEED = 0

_LABEL_VALUES = (1.0, 0.0, -1.0)
_REPORT_NAME = re.compile(r"(?:^|/)(p\d\d/p\d+/s(\d+))\.txt$")


# --------------------------------------------------------------------------------------------
# Caption rule (MGCA)
# --------------------------------------------------------------------------------------------

_ENUMERATION = re.compile(r"[0-9]+\.")
_WORD = re.compile(r"\w+")


def mgca_caption_sentences(impression: str | None, findings: str | None) -> list[str]:
    """MGCA's pretraining caption (``mgca/datasets/pretrain_dataset.py``), as cleaned sentences.

    Caption = impression, a space, findings (missing parts read as empty), newlines as spaces;
    cut at every "digits followed by a period" and then at every period; per piece: lower-case,
    tokens = runs of ``\\w`` characters, pieces with <= 1 token dropped, non-ASCII characters
    removed from each token (tokens left empty dropped); a sentence is its tokens joined by
    single spaces.
    """
    caption = f"{impression or ''} {findings or ''}".replace("\n", " ")
    sentences = []
    for part in _ENUMERATION.split(caption):
        for piece in part.split("."):
            if not piece:
                continue
            tokens = _WORD.findall(piece.replace("\ufffd\ufffd", " ").lower())
            if len(tokens) <= 1:
                continue
            kept = [t for t in (tok.encode("ascii", "ignore").decode("ascii") for tok in tokens) if t]
            if kept:
                sentences.append(" ".join(kept))
    return sentences


def mgca_caption_tokens(impression: str | None, findings: str | None) -> int:
    """Tokens of :func:`mgca_caption_sentences`; MGCA keeps an image when this is >= 3."""
    return sum(len(s.split(" ")) for s in mgca_caption_sentences(impression, findings))


# --------------------------------------------------------------------------------------------
# Native files
# --------------------------------------------------------------------------------------------


def _table_names(kind: str) -> list[str]:
    return [f"mimic-cxr-{v}-{kind}.csv" for v in VERSIONS]


class _Reports:
    """Where the report of each study lives: unpacked ``.txt`` files, else the reports zip."""

    def __init__(self, root: Path):
        self.root = root
        self.files: dict[str, Path] = {}  # study id -> file
        self.names: dict[str, str] = {}  # study id -> file name relative to the root
        self.zip_path: Path | None = None
        self.members: dict[str, str] = {}  # study id -> zip member
        top = root / "files"
        if top.is_dir():
            for group in _sorted_dirs(top):
                for patient in _sorted_dirs(group):
                    with os.scandir(patient) as it:
                        for entry in it:
                            name = f"files/{group.name}/{patient.name}/{entry.name}"
                            m = _REPORT_NAME.search(name)
                            if m and entry.is_file():
                                self.files[m.group(2)] = Path(entry.path)
                                self.names[m.group(2)] = name
        if not self.files and (root / REPORTS_ZIP).is_file():
            self.zip_path = root / REPORTS_ZIP
            with zipfile.ZipFile(self.zip_path) as archive:
                for name in archive.namelist():
                    m = _REPORT_NAME.search(name)
                    if m:
                        self.members[m.group(2)] = name
        self._archive: zipfile.ZipFile | None = None

    def __len__(self) -> int:
        return len(self.files) or len(self.members)

    def source(self) -> str:
        return REPORTS_ZIP if self.zip_path else "files/pXX/p<subject>/s<study>.txt"

    def name(self, study: str, subject: str) -> str:
        """How messages name the study's report."""
        if study in self.names:
            return self.names[study]
        if study in self.members:
            return f"{REPORTS_ZIP}:{self.members[study]}"
        return f"files/p{subject[:2]}/p{subject}/s{study}.txt"

    def read(self, study: str) -> bytes | None:
        """The bytes of the study's report; ``None`` when there is none."""
        path = self.files.get(study)
        if path is not None:
            return path.read_bytes()
        member = self.members.get(study)
        if member is None:
            return None
        if self._archive is None:
            self._archive = zipfile.ZipFile(self.zip_path)
        return self._archive.read(member)


def _sorted_dirs(folder: Path) -> list[Path]:
    with os.scandir(folder) as it:
        return sorted((Path(e.path) for e in it if e.is_dir()), key=lambda p: p.name)


@dataclass(frozen=True)
class _Text:
    """A study's report, parsed."""

    report: str | None
    findings: str | None
    impression: str | None
    tokens: int
    problem: str | None  # warning code when the study gives no pair


_TEXT_PROBLEMS = {
    "missing_report": "studies without a report file (their images were left out)",
    "empty_report": "studies whose report file is empty (their images were left out)",
    "no_findings_or_impression": "studies whose report has neither FINDINGS nor IMPRESSION (images left out)",
    "few_caption_tokens": f"studies whose MGCA caption has fewer than {MIN_TOKENS} tokens (images left out)",
}


def _problem(code: str, name: str) -> tuple[str, str, str]:
    return code, _TEXT_PROBLEMS[code], name


class _Native:
    """The three tables joined per image, and the report index."""

    def __init__(self, root: Path, labeler: str, reports: _Reports, warnings: PrepareWarnings):
        self.root = root
        self.reports = reports
        self.warnings = warnings
        meta_file = find_native_file(root, _table_names("metadata"))
        split_file = find_native_file(root, _table_names("split"))
        label_file = find_native_file(root, _table_names(labeler))
        self.meta = read_native_csv(meta_file, root, ["dicom_id", "subject_id", "study_id", "ViewPosition"],
                                    warnings=warnings)
        self.split_table = read_native_csv(split_file, root, ["dicom_id", "study_id", "subject_id", "split"],
                                           warnings=warnings)
        self.label_table = read_native_csv(label_file, root, ["subject_id", "study_id", *MIMIC_LABELS],
                                           warnings=warnings)
        # 2.1.0 keeps the 2.0.0 table names and adds files named mimic-cxr-2.1.0-*
        release = "2.1.0" if any(root.glob("mimic-cxr-2.1.0-*")) else "2.0.0"
        self.native_version = f"MIMIC-CXR-JPG {release} (tables {meta_file.name.split('-metadata')[0]}-*)"
        self._read_metadata()
        self._read_split()
        self._read_labels()
        self._texts: dict[str, _Text] = {}
        self._unlabelled: set[str] = set()
        if len(self.meta) != EXPECTED["metadata_rows"] or len(self.label_table) != EXPECTED["label_rows"]:
            warnings.add(
                "unexpected_row_count",
                "native table sizes differ from MIMIC-CXR-JPG 2.0.0 as published",
                f"{self.meta.name}: {len(self.meta)} rows (published {EXPECTED['metadata_rows']}); "
                f"{self.label_table.name}: {len(self.label_table)} rows (published {EXPECTED['label_rows']})",
            )

    # -- tables -----------------------------------------------------------------------------

    def _read_metadata(self) -> None:
        t = self.meta
        j_d, j_sub, j_st, j_v = (t.index(c) for c in ("dicom_id", "subject_id", "study_id", "ViewPosition"))
        self.dicom: list[str] = []
        self.subject: list[str] = []
        self.study: list[str] = []
        self.view: list[str] = []
        self.row_of: dict[str, int] = {}
        for i, values in enumerate(t.rows):
            dicom, subject, study = values[j_d].strip(), values[j_sub].strip(), values[j_st].strip()
            for column, value in (("dicom_id", dicom), ("subject_id", subject), ("study_id", study)):
                if not value or (column != "dicom_id" and not value.isdigit()):
                    raise PrepareError(f"{t.where(i, column)}: {value!r} is not a MIMIC id")
            if dicom in self.row_of:
                raise PrepareError(f"{t.where(i, 'dicom_id')}: {dicom!r} repeats line {t.lines[self.row_of[dicom]]}")
            self.row_of[dicom] = i
            self.dicom.append(dicom)
            self.subject.append(subject)
            self.study.append(study)
            self.view.append(values[j_v].strip().upper())

    def _read_split(self) -> None:
        t = self.split_table
        j_d, j_sub, j_st, j_s = (t.index(c) for c in ("dicom_id", "subject_id", "study_id", "split"))
        self.official: dict[int, str] = {}  # metadata row -> official split
        self.split_row: dict[int, int] = {}
        for i, values in enumerate(t.rows):
            dicom, split = values[j_d].strip(), values[j_s].strip()
            if split not in OFFICIAL_SPLITS:
                raise PrepareError(f"{t.where(i, 'split')}: {split!r} is not one of {', '.join(OFFICIAL_SPLITS)}")
            k = self.row_of.get(dicom)
            if k is None:
                self.warnings.add("split_without_metadata", f"{t.name}: images absent from {self.meta.name} (ignored)",
                                  dicom)
                continue
            for column, j, expected in (("subject_id", j_sub, self.subject[k]), ("study_id", j_st, self.study[k])):
                if values[j].strip() != expected:
                    raise PrepareError(
                        f"{t.where(i, column)}: {values[j].strip()!r} but {self.meta.name} line {self.meta.lines[k]} "
                        f"gives {expected!r} for dicom_id {dicom}"
                    )
            if k in self.official:
                raise PrepareError(f"{t.where(i, 'dicom_id')}: {dicom!r} repeats line {t.lines[self.split_row[k]]}")
            self.official[k] = split
            self.split_row[k] = i

    def _read_labels(self) -> None:
        t = self.label_table
        values = np.stack([t.float_column(name, _LABEL_VALUES) for name in MIMIC_LABELS], axis=1).astype(np.float32)
        j_st = t.index("study_id")
        self.labels_of: dict[str, int] = {}
        for i, row in enumerate(t.rows):
            study = row[j_st].strip()
            if study in self.labels_of:
                raise PrepareError(f"{t.where(i, 'study_id')}: study {study} repeats line {t.lines[self.labels_of[study]]}")
            self.labels_of[study] = i
        self.label_values = values

    # -- per image / study ------------------------------------------------------------------

    def labels(self, study: str) -> np.ndarray:
        i = self.labels_of.get(study)
        if i is None:
            return np.full(len(MIMIC_LABELS), np.nan, dtype=np.float32)
        return self.label_values[i]

    def text(self, k: int) -> _Text:
        """Caption tokens and problem of the study of metadata row ``k`` (parsed once; warnings
        counted then). The raw text is not kept, so memory stays flat on the full data."""
        study = self.study[k]
        cached = self._texts.get(study)
        if cached is None:
            text, problems = self._parse(study, self.subject[k])
            for code, message, example in problems:
                self.warnings.add(code, message, example)
            cached = self._texts[study] = _Text(None, None, None, text.tokens, text.problem)
        return cached

    def full_text(self, k: int) -> _Text:
        """The study's report and sections, read and parsed again (tokens and problem from
        :meth:`text`; no warnings counted)."""
        cached = self.text(k)
        data = self.reports.read(self.study[k])
        if data is None:
            return cached
        raw = data.decode("utf-8", errors="replace")
        sections = parse_mimic_report(raw)
        return _Text(raw, sections.findings or None, sections.impression or None, cached.tokens, cached.problem)

    def _parse(self, study: str, subject: str) -> tuple[_Text, list[tuple[str, str, str]]]:
        data = self.reports.read(study)
        name = self.reports.name(study, subject)
        if data is None:
            return _Text(None, None, None, 0, "missing_report"), [_problem("missing_report", name)]
        problems = []
        try:
            raw = data.decode("utf-8")
        except UnicodeDecodeError:
            raw = data.decode("utf-8", errors="replace")
            problems.append(("report_not_utf8", "reports that are not valid UTF-8 (bad bytes replaced)", name))
        if not raw.strip():
            return _Text(raw, None, None, 0, "empty_report"), problems + [_problem("empty_report", name)]
        sections = parse_mimic_report(raw)
        findings, impression = sections.findings or None, sections.impression or None
        if findings is None and impression is None:
            code = "no_findings_or_impression"
            return _Text(raw, None, None, 0, code), problems + [_problem(code, name)]
        tokens = mgca_caption_tokens(impression, findings)
        problem = None
        if tokens < MIN_TOKENS:
            problem = "few_caption_tokens"
            problems.append(_problem(problem, name))
        return _Text(raw, findings, impression, tokens, problem), problems

    def image_path(self, k: int) -> str:
        subject = self.subject[k]
        return f"files/p{subject[:2]}/p{subject}/s{self.study[k]}/{self.dicom[k]}.jpg"

    def laterals(self) -> dict[str, list[int]]:
        """Study id -> metadata rows of its lateral images that are in the split table."""
        out: dict[str, list[int]] = {}
        for k in sorted(self.official, key=lambda k: self.dicom[k]):
            if self.view[k] in LATERAL_VIEWS:
                out.setdefault(self.study[k], []).append(k)
        return out

    def frontal_rows(self) -> list[int]:
        """Metadata rows (in table order) of frontal images present in the split table."""
        rows = []
        for k in range(len(self.dicom)):
            if k not in self.official:
                self.warnings.add(
                    "split_missing",
                    f"images of {self.meta.name} absent from {self.split_table.name} (left out)",
                    self.dicom[k],
                )
            elif self.view[k] in FRONTAL_VIEWS:
                rows.append(k)
        return rows

    def row(self, k: int, dataset: str, split: str, laterals: dict[str, list[int]], frac_rank=None,
            **extra) -> dict:
        study = self.study[k]
        text = self.full_text(k)
        label_i = self.labels_of.get(study)
        if label_i is None and study not in self._unlabelled:
            self._unlabelled.add(study)
            self.warnings.add("labels_missing", f"studies without a row in {self.label_table.name} (labels NaN)",
                              study)
        source = {
            "metadata": self.meta.record(k),
            "split": self.split_table.record(self.split_row[k]),
            "labels": None if label_i is None else self.label_table.record(label_i),
        }
        row = {
            "dataset": dataset,
            "sample_id": self.dicom[k],
            "subject_id": self.subject[k],
            "study_id": study,
            "image_path": self.image_path(k),
            "aux_image_paths": [self.image_path(j) for j in laterals.get(study, [])],
            "image_format": "jpg",
            "view": self.view[k],
            "split": split,
            "frac_rank": frac_rank,
            "report": text.report,
            "findings": text.findings,
            "impression": text.impression,
            "text_tokens": text.tokens,
            "labels": self.labels(study).tolist(),
            "source_row": json_record(source),
        }
        row.update(extra)
        return row

    def pair_counts(self, frontal: list[int]) -> dict:
        counts = {s: {"images": 0, "frontal": 0, "frontal_with_text": 0, "frontal_pairs": 0} for s in OFFICIAL_SPLITS}
        for k, split in self.official.items():
            counts[split]["images"] += 1
        for k in frontal:
            c = counts[self.official[k]]
            c["frontal"] += 1
            problem = self.text(k).problem
            c["frontal_with_text"] += problem in (None, "few_caption_tokens")
            c["frontal_pairs"] += problem is None
        return counts


def _info(native: _Native, reports: _Reports, labeler: str) -> dict:
    return {
        "native_version": native.native_version,
        "label_source": native.label_table.name,
        "report_source": reports.source(),
        "labeler": labeler,
    }


class _Base(abc.ABC):
    protocols: tuple[str, ...] = ("mgca", "suite")
    name = ""

    def __init__(self, labeler: str = "chexpert"):
        if labeler not in ("chexpert", "negbio"):
            raise ValueError(f"labeler must be 'chexpert' or 'negbio', got {labeler!r}")
        self.labeler = labeler

    def _options(self) -> dict:
        return {"labeler": self.labeler}

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        inputs = [find_native_file(root, _table_names(kind)) for kind in ("metadata", "split", self.labeler)]
        reports = _Reports(root)
        if not len(reports):
            raise PrepareError(
                f"{root}: no MIMIC-CXR reports (files/pXX/p<subject>/s<study>.txt or {REPORTS_ZIP})"
            )
        options = dict(self._options())
        if reports.zip_path is not None:
            inputs.append(reports.zip_path)
        else:
            options["report_files"] = digest_files(root, reports.files.values())

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            native = _Native(root, self.labeler, reports, warnings)
            return self._plan(native, reports, protocol, warnings)

        return run_prepare(
            dataset=self.name,
            protocol=protocol,
            root=root,
            out=out,
            input_files=inputs,
            build=build,
            check_images=check_images,
            code_files=[__file__],
            options=options,
            force=force,
        )

    @abc.abstractmethod
    def _plan(self, native: _Native, reports: _Reports, protocol: str, warnings: PrepareWarnings) -> ManifestPlan:
        """The manifest rows of ``protocol`` (each subclass selects its own)."""


class MimicCXRDataset(_Base):
    """MIMIC-CXR pretraining pairs (protocols ``mgca``, ``suite``; see the module docstring)."""

    name = "mimic_cxr"
    label_names = MIMIC_LABELS

    def _plan(self, native: _Native, reports: _Reports, protocol: str, warnings: PrepareWarnings) -> ManifestPlan:
        frontal = native.frontal_rows()
        pair_counts = native.pair_counts(frontal)  # parses every candidate report once
        kept = [k for k in frontal if native.text(k).problem is None]
        split_of = SPLIT_OF[protocol]
        train = [k for k in kept if split_of[native.official[k]] == "train"]  # metadata order
        rank = dict(zip(train, frac_ranks(len(train), FRACTION_SEED).tolist()))
        laterals = native.laterals()
        info = _info(native, reports, self.labeler)
        info.update(
            {
                "seeds": {"fraction": FRACTION_SEED},
                "split_rule": (
                    "official MIMIC-CXR-JPG split; "
                    + ("validate and test merged into valid (MGCA)" if protocol == "mgca" else "validate -> valid")
                    + f"; frontal (PA/AP) images whose report has findings or impression and >= {MIN_TOKENS} "
                    "MGCA caption tokens"
                ),
                "frac_order": f"RandomState({FRACTION_SEED}).permutation over the train rows in metadata order",
                "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
                "frac_base": len(train),
                "pair_counts": pair_counts,
                "caption_rule": "MGCA: impression + ' ' + findings; >= 3 tokens after its sentence/token filters",
            }
        )

        def rows() -> Iterator[dict]:
            for k in sorted(kept, key=lambda k: native.dicom[k]):
                yield native.row(k, self.name, split_of[native.official[k]], laterals, frac_rank=rank.get(k))

        return ManifestPlan(rows=rows(), label_names=MIMIC_LABELS, info=info, disjoint_subjects=True)


class Mimic5x200Dataset(_Base):
    """MIMIC-5x200 zero-shot / retrieval set from the official test split (see the module docstring)."""

    name = "mimic_5x200"
    label_names = COMPETITION_LABELS

    def __init__(self, labeler: str = "chexpert", n_per_class: int = 200):
        super().__init__(labeler)
        self.n_per_class = int(n_per_class)

    def _options(self) -> dict:
        return {"labeler": self.labeler, "n_per_class": self.n_per_class}

    def _plan(self, native: _Native, reports: _Reports, protocol: str, warnings: PrepareWarnings) -> ManifestPlan:
        col = {name: j for j, name in enumerate(MIMIC_LABELS)}
        comp = [col[c] for c in COMPETITION_LABELS]
        zero = [col[c] for c in FIVE_X_200_ZERO]
        seen: set[str] = set()
        candidates: list[list[int]] = [[] for _ in COMPETITION_LABELS]
        for k in native.frontal_rows():
            study = native.study[k]
            if native.official[k] != "test" or study in seen:
                continue
            seen.add(study)
            if study not in native.labels_of or native.text(k).problem is not None:
                continue
            filled = np.nan_to_num(native.labels(study), nan=0.0)
            if (filled[zero] != 0).any() or sorted(filled[comp].tolist()) != [0.0] * 4 + [1.0]:
                continue
            candidates[int(np.argmax(filled[comp]))].append(k)
        chosen: list[tuple[int, int]] = []
        for c, members in enumerate(candidates):
            if len(members) < self.n_per_class:
                raise PrepareError(
                    f"{native.meta.name}: only {len(members)} test-split studies qualify for the 5x{self.n_per_class} "
                    f"class {COMPETITION_LABELS[c]!r}; {self.n_per_class} are needed (lower n_per_class)"
                )
            picked = legacy_permutation(len(members), FIVE_X_200_SEED)[: self.n_per_class]
            chosen.extend((members[j], c) for j in picked.tolist())
        laterals = native.laterals()
        info = _info(native, reports, self.labeler)
        info.update(
            {
                "seeds": {"5x200": FIVE_X_200_SEED},
                "candidates_per_class": {name: len(m) for name, m in zip(COMPETITION_LABELS, candidates)},
                "split_rule": (
                    f"official test split; one frontal image per study (first in the metadata table); report with "
                    f">= {MIN_TOKENS} MGCA caption tokens; labels (blank = 0) with exactly one competition label 1 "
                    f"and {', '.join(FIVE_X_200_ZERO)} all 0; {self.n_per_class} per class drawn with "
                    f"RandomState({FIVE_X_200_SEED}) in metadata order"
                ),
            }
        )

        def rows() -> Iterator[dict]:
            for k, c in sorted(chosen, key=lambda e: native.dicom[e[0]]):
                yield native.row(
                    k, self.name, "test", laterals,
                    labels=native.labels(native.study[k])[comp].tolist(),
                    class_index=c, class_name=COMPETITION_LABELS[c],
                )

        return ManifestPlan(rows=rows(), label_names=COMPETITION_LABELS, class_names=COMPETITION_LABELS, info=info)


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "mimic_cxr", MimicCXRDataset)
    registrar.add("dataset", "mimic_5x200", Mimic5x200Dataset)
