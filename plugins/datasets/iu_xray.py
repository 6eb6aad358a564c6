"""IU X-ray (OpenI) for report generation: R2Gen's split file and the raw OpenI reports (datasets.md 1.7).

Native root, any of:

* R2Gen's ``annotation.json`` (``{"train": [...], "val": [...], "test": [...]}``, entries
  ``{"id", "report", "image_path": [...], "split"}``; :func:`read_r2gen_annotation`) with the
  images under ``images/`` (``images/<id>/0.png``, ``1.png``);
* the OpenI reports: ``ecgen-radiology/<n>.xml`` or the archive ``NLMCXR_reports.tgz`` (used
  when the folder is absent), with the OpenI PNGs under ``NLMCXR_png/<image id>.png``.

R2Gen ids (``CXR2384_IM-0942``) are the report's first OpenI image id without its final
``-<number>`` parts (``CXR2384_IM-0942-1001`` -> ``CXR2384_IM-0942``), which is how the XMLs and
``annotation.json`` are joined. Every XML is read with
:func:`place_bench.data.report_text.parse_openi_xml`; one that is not well-formed is a
:class:`PrepareError` naming it.

Manifest rows (one per study):

* ``sample_id`` = the R2Gen id; ``study_id`` = the OpenI ``uId`` (``CXR2384``); ``subject_id``
  null (OpenI has no patient key; each report is one study);
* ``image_path`` = the first image, ``aux_image_paths`` = the others; ``view = "UNKNOWN"`` (the
  image order is not a view guarantee);
* ``report`` = ``findings`` = the findings text (the R2Gen target); ``impression`` from the XML
  (null without XMLs); ``source_row`` = the annotation entry and / or the XML's sections.

Protocols:

* ``r2gen`` -- the entries of ``annotation.json`` and their split (``val`` -> ``valid``); report =
  the entry's ``report``; an entry with an empty report is left out (warning ``empty_report``);
  images under ``images/``.
* ``openi`` -- built from the XMLs alone: reports with a non-empty FINDINGS and at least two
  images (R2Gen's rule; 2,955 of the 3,955 reports, R2Gen's 2,069 + 296 + 590), others counted
  as warnings ``no_findings`` / ``too_few_images``; images under ``NLMCXR_png/``; split 70 / 10 /
  20 drawn with ``RandomState(0)`` over the sorted ids (R2Gen's own draw is not published; use
  ``r2gen`` for literature numbers). The sidecar's ``openi_counts`` has the raw totals.

``frac_rank``: ``RandomState(42)`` over the train rows in id order.
"""

from __future__ import annotations

import json
import re
import tarfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from place_bench.data.prepare import (
    ManifestPlan,
    PrepareError,
    PrepareResult,
    PrepareWarnings,
    check_protocol,
    digest_files,
    json_record,
    rel_name,
    run_prepare,
)
from place_bench.data.report_text import parse_openi_xml
from place_bench.data.splits import assign_groups, frac_ranks
from place_bench.hookspecs import hookimpl

ANNOTATION = "annotation.json"
R2GEN_SPLITS = {"train": "train", "val": "valid", "test": "test"}
XML_DIR = "ecgen-radiology"
XML_ARCHIVES = ("NLMCXR_reports.tgz", "NLMCXR_reports.tar.gz")
R2GEN_IMAGE_DIR = "images"
OPENI_IMAGE_DIR = "NLMCXR_png"
#: Published sizes (datasets.md section 1.7).
EXPECTED_R2GEN = {"train": 2069, "val": 296, "test": 590}
EXPECTED_OPENI = {"reports": 3955, "images": 7470}
MIN_IMAGES = 2

SPLIT_SEED = 0
FRACTION_SEED = 42
OPENI_HELD_OUT = (("test", 0.2), ("valid", 0.1))

_R2GEN_ID = re.compile(r"^(.*?_IM-\d+)")


# --------------------------------------------------------------------------------------------
# R2Gen annotation files (shared with mimic_rrg)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class R2GenEntry:
    """One annotation entry; ``where`` names it in messages (``annotation.json: train[3] (id 'X')``)."""

    split: str  # the list it is in: train / val / test
    id: str
    report: str
    image_paths: tuple[str, ...]
    record: dict
    where: str


def read_r2gen_annotation(path: Path, root: Path, required: Sequence[str] = (),
                          warnings: PrepareWarnings | None = None) -> list[R2GenEntry]:
    """Entries of an R2Gen ``annotation.json``, in file order (train, val, test).

    Each entry needs ``id`` (string or integer), ``report`` (string), ``image_path`` (non-empty
    list of strings) and the ``required`` keys; a wrong or missing one, a repeated id, or a file
    that is not a JSON object with lists ``train``, ``val``, ``test`` is a :class:`PrepareError`
    naming the entry. An entry whose ``split`` field disagrees with its list counts as warning
    ``split_field_mismatch`` (the list wins).
    """
    name = rel_name(root, path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise PrepareError(f"{name}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PrepareError(f"{name}: expected a JSON object with lists train, val, test")
    entries: list[R2GenEntry] = []
    first: dict[str, str] = {}
    for split in R2GEN_SPLITS:
        items = data.get(split)
        if not isinstance(items, list):
            found = ", ".join(sorted(data)) or "nothing"
            raise PrepareError(f"{name}: missing list {split!r} (found: {found})")
        for i, item in enumerate(items):
            where = f"{name}: {split}[{i}]"
            if not isinstance(item, dict):
                raise PrepareError(f"{where}: expected an object, got {type(item).__name__}")
            ident = item.get("id")
            if isinstance(ident, int) and not isinstance(ident, bool):
                ident = str(ident)
            if not isinstance(ident, str) or not ident.strip():
                raise PrepareError(f"{where}: missing or invalid 'id' ({ident!r})")
            ident = ident.strip()
            where = f"{where} (id {ident!r})"
            for key in ("report", "image_path", *required):
                if key not in item:
                    raise PrepareError(f"{where}: missing key {key!r}")
            if not isinstance(item["report"], str):
                raise PrepareError(f"{where}: 'report' is {type(item['report']).__name__}, not a string")
            paths = item["image_path"]
            if not isinstance(paths, list) or not paths or not all(isinstance(p, str) and p.strip() for p in paths):
                raise PrepareError(f"{where}: 'image_path' must be a non-empty list of paths, got {paths!r}")
            if ident in first:
                raise PrepareError(f"{where}: id repeats {first[ident]}")
            first[ident] = f"{split}[{i}]"
            if "split" in item and item["split"] != split and warnings is not None:
                warnings.add("split_field_mismatch", f"{name}: entries whose 'split' field differs from their list "
                             "(the list wins)", where)
            entries.append(R2GenEntry(split, ident, item["report"], tuple(p.strip() for p in paths), item, where))
    return entries


def check_r2gen_sizes(entries: list[R2GenEntry], expected: dict, name: str, warnings: PrepareWarnings) -> dict:
    """Entries per split; warning ``unexpected_row_count`` when they differ from ``expected``."""
    sizes = {s: sum(e.split == s for e in entries) for s in R2GEN_SPLITS}
    if sizes != expected:
        warnings.add("unexpected_row_count", "annotation sizes differ from R2Gen's published file",
                     f"{name}: {sizes}, published {expected}")
    return sizes


def r2gen_split_plan(rows: list[tuple[str, str]]) -> dict[str, int]:
    """``frac_rank`` of the train rows among ``(sample_id, split)`` pairs: ``RandomState(42)``
    over the train rows in ``sample_id`` order."""
    train = sorted(sid for sid, split in rows if split == "train")
    return dict(zip(train, frac_ranks(len(train), FRACTION_SEED).tolist()))


# --------------------------------------------------------------------------------------------
# OpenI reports
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenIReport:
    """One OpenI XML: ``file`` (name in messages), ``uid``, image ids, sections."""

    file: str
    uid: str | None
    images: tuple[str, ...]
    findings: str
    impression: str
    sections: dict

    @property
    def r2gen_id(self) -> str | None:
        m = _R2GEN_ID.match(self.images[0]) if self.images else None
        return m.group(1) if m else None


def _parse_xml(data: bytes, name: str) -> OpenIReport:
    try:
        sections = parse_openi_xml(data)
        root = ET.fromstring(data)
    except ValueError as exc:
        raise PrepareError(f"{name}: {exc}") from None
    uid_el = root.find("uId")
    uid = ((uid_el.get("id") or "").strip() or None) if uid_el is not None else None
    images = tuple((p.get("id") or "").strip() for p in root.iter("parentImage") if (p.get("id") or "").strip())
    named = {"findings": sections.findings, "impression": sections.impression, **sections.other}
    return OpenIReport(name, uid, images, sections.findings, sections.impression,
                       {k: v for k, v in named.items() if v})


class _OpenISource:
    """Where the XMLs are: the ``ecgen-radiology`` folder, else an archive."""

    def __init__(self, root: Path):
        self.root = root
        self.files: list[Path] = []
        self.archive: Path | None = None
        folder = root / XML_DIR
        if folder.is_dir():
            self.files = sorted(folder.glob("*.xml"), key=lambda p: p.name)
        if not self.files:
            self.archive = next((root / a for a in XML_ARCHIVES if (root / a).is_file()), None)

    def __bool__(self) -> bool:
        return bool(self.files) or self.archive is not None

    def add_inputs(self, inputs: list[Path], options: dict) -> None:
        if self.archive is not None:
            inputs.append(self.archive)
        elif self.files:
            options["xml_files"] = digest_files(self.root, self.files)

    def read(self) -> list[OpenIReport]:
        out = []
        if self.archive is not None:
            with tarfile.open(self.archive) as tar:
                members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")),
                                 key=lambda m: m.name)
                for m in members:
                    out.append(_parse_xml(tar.extractfile(m).read(), f"{self.archive.name}:{m.name}"))
        else:
            for p in self.files:
                out.append(_parse_xml(p.read_bytes(), rel_name(self.root, p)))
        return out


def _openi_by_id(reports: list[OpenIReport]) -> dict[str, OpenIReport]:
    by_id: dict[str, OpenIReport] = {}
    for r in reports:
        key = r.r2gen_id
        if key is None:
            continue
        if key in by_id:
            raise PrepareError(f"{r.file}: its images give id {key!r}, as do those of {by_id[key].file}")
        by_id[key] = r
    return by_id


def _openi_counts(reports: list[OpenIReport]) -> dict:
    return {
        "reports": len(reports),
        "images": sum(len(r.images) for r in reports),
        "reports_with_findings": sum(bool(r.findings) for r in reports),
        "reports_with_impression": sum(bool(r.impression) for r in reports),
        "reports_without_images": sum(not r.images for r in reports),
    }


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------


class IUXrayDataset:
    """IU X-ray report-generation manifests (protocols ``r2gen``, ``openi``)."""

    name = "iu_xray"
    protocols = ("r2gen", "openi")
    label_names: tuple[str, ...] = ()

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        xml = _OpenISource(root)
        inputs: list[Path] = []
        options: dict = {}
        if protocol == "r2gen":
            annotation = root / ANNOTATION
            if not annotation.is_file():
                raise PrepareError(f"{root}: required native file not found ({ANNOTATION})")
            inputs.append(annotation)
        elif not xml:
            raise PrepareError(f"{root}: no OpenI reports ({XML_DIR}/*.xml or {' / '.join(XML_ARCHIVES)})")
        xml.add_inputs(inputs, options)

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            reports = xml.read() if xml else []
            if protocol == "r2gen":
                return self._r2gen(root, reports, warnings)
            return self._openi(reports, warnings)

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

    def _r2gen(self, root: Path, reports: list[OpenIReport], warnings: PrepareWarnings) -> ManifestPlan:
        entries = read_r2gen_annotation(root / ANNOTATION, root, warnings=warnings)
        sizes = check_r2gen_sizes(entries, EXPECTED_R2GEN, ANNOTATION, warnings)
        by_id = _openi_by_id(reports)
        kept = []
        for e in entries:
            if not e.report.strip():
                warnings.add("empty_report", "annotation entries with an empty report (left out)", e.where)
                continue
            if by_id and e.id not in by_id:
                warnings.add("xml_missing", "annotation entries without an OpenI report (impression null)", e.where)
            kept.append(e)
        rank = r2gen_split_plan([(e.id, R2GEN_SPLITS[e.split]) for e in kept])
        info = {
            "native_version": "R2Gen iu_xray annotation.json" + (" + OpenI reports" if reports else ""),
            "seeds": {"fraction": FRACTION_SEED},
            "split_rule": "R2Gen annotation.json lists (val -> valid)",
            "frac_order": f"RandomState({FRACTION_SEED}).permutation over the train rows in id order",
            "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
            "frac_base": len(rank),
            "annotation_sizes": sizes,
        }
        if reports:
            info["openi_counts"] = _openi_counts(reports)

        def rows() -> Iterator[dict]:
            for e in sorted(kept, key=lambda e: e.id):
                xml = by_id.get(e.id)
                split = R2GEN_SPLITS[e.split]
                m = re.match(r"^(CXR\d+)", e.id)
                yield {
                    "dataset": self.name,
                    "sample_id": e.id,
                    "study_id": xml.uid if xml is not None and xml.uid else (m.group(1) if m else None),
                    "image_path": f"{R2GEN_IMAGE_DIR}/{e.image_paths[0]}",
                    "aux_image_paths": [f"{R2GEN_IMAGE_DIR}/{p}" for p in e.image_paths[1:]],
                    "image_format": _format(e.image_paths[0]),
                    "view": "UNKNOWN",
                    "split": split,
                    "frac_rank": rank.get(e.id),
                    "report": e.report,
                    "findings": e.report.strip(),
                    "impression": (xml.impression or None) if xml is not None else None,
                    "source_row": json_record({"annotation": e.record, "xml": xml.file if xml is not None else None}),
                }

        return ManifestPlan(rows=rows(), info=info)

    def _openi(self, reports: list[OpenIReport], warnings: PrepareWarnings) -> ManifestPlan:
        counts = _openi_counts(reports)
        if (counts["reports"], counts["images"]) != (EXPECTED_OPENI["reports"], EXPECTED_OPENI["images"]):
            warnings.add("unexpected_row_count", "OpenI totals differ from the published 3,955 reports / 7,470 images",
                         f"{counts['reports']} reports, {counts['images']} images")
        kept = []
        for r in reports:
            if not r.findings:
                warnings.add("no_findings", "reports without FINDINGS (left out, as R2Gen did)", r.file)
            elif len(r.images) < MIN_IMAGES or r.r2gen_id is None:
                warnings.add("too_few_images", f"reports with fewer than {MIN_IMAGES} images (left out, as R2Gen did)",
                             r.file)
            else:
                kept.append(r)
        by_id = _openi_by_id(kept)
        ids = sorted(by_id)
        split_of = dict(zip(ids, assign_groups(ids, list(OPENI_HELD_OUT), SPLIT_SEED)))
        rank = r2gen_split_plan(list(split_of.items()))
        counts["kept"] = len(ids)
        info = {
            "native_version": "OpenI IU X-ray reports (ecgen-radiology)",
            "seeds": {"split": SPLIT_SEED, "fraction": FRACTION_SEED},
            "split_rule": (
                f"reports with FINDINGS and >= {MIN_IMAGES} images; RandomState({SPLIT_SEED}) permutation of the sorted "
                "ids: 20 % test, 10 % valid, rest train"
            ),
            "frac_order": f"RandomState({FRACTION_SEED}).permutation over the train rows in id order",
            "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
            "frac_base": len(rank),
            "openi_counts": counts,
        }

        def rows() -> Iterator[dict]:
            for key in ids:
                r = by_id[key]
                paths = [f"{OPENI_IMAGE_DIR}/{image}.png" for image in r.images]
                yield {
                    "dataset": self.name,
                    "sample_id": key,
                    "study_id": r.uid,
                    "image_path": paths[0],
                    "aux_image_paths": paths[1:],
                    "image_format": "png",
                    "view": "UNKNOWN",
                    "split": split_of[key],
                    "frac_rank": rank.get(key),
                    "report": r.findings,
                    "findings": r.findings,
                    "impression": r.impression or None,
                    "source_row": json_record({"xml": r.file, "uId": r.uid, "images": list(r.images),
                                               "sections": r.sections}),
                }

        return ManifestPlan(rows=rows(), info=info)


def _format(path: str) -> str | None:
    suffix = path.rsplit(".", 1)[-1].lower()
    return {"png": "png", "jpg": "jpg", "jpeg": "jpg", "dcm": "dcm"}.get(suffix)


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "iu_xray", IUXrayDataset)
