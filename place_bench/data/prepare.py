"""The common ``prepare`` driver: native tables in, manifest + sidecar out (datasets.md section 3).

A dataset plugin (``plugins/datasets/*.py``) locates its native files, then calls
:func:`run_prepare` with a ``build`` callback that reads them and returns a
:class:`ManifestPlan` (rows sorted by ``sample_id``, label names, sidecar facts). The driver:

1. fingerprints the inputs (native file sizes and SHA-256, dataset, protocol, options, native
   root, ``check_images``, schema and code versions); when ``<out>/<dataset>/<protocol>.json``
   records the same fingerprint and its manifest is intact, nothing is rewritten
   (``PrepareResult.reused``), unless ``force``;
2. streams the rows through optional image checks (``check_images=True``: every referenced image
   is opened with :func:`place_bench.data.images.probe_image`; ``width``, ``height`` and the
   DICOM ``photometric`` are filled in; a missing or unreadable image is a counted warning and its
   row is left out) into :class:`place_bench.data.manifest.ManifestWriter`;
3. checks the result (patient-disjoint splits when the plan asks for it) and only then renames
   the manifest into place and writes the sidecar.

Problems come in two kinds. Recoverable ones are counted in :class:`PrepareWarnings` (one entry
per code with a count and a few examples) and listed in the sidecar. Unrecoverable ones raise
:class:`PrepareError`, whose one-line message names the file and the column or line.

Determinism: given the same native files, protocol, options and code, both output files are
byte-identical (no timestamps; sorted JSON; fixed Parquet options).

Sidecar keys (``<out>/<dataset>/<protocol>.json``): ``dataset``, ``protocol``, ``schema_version``,
``code_version``, ``native_root`` (absolute), ``files`` (native name -> ``size``, ``sha256``),
``options``, ``check_images``, ``input_fingerprint``, ``label_names``, ``class_names``,
``counts`` (per split: ``rows``, ``subjects``, ``labels`` -> name -> counts of ``1 / 0 / -1 /
nan``, ``classes``, ``boxes``, ``rows_with_boxes``, ``rows_with_mask``, ``subsets``),
``subject_overlap``, ``manifest`` (``file``, ``rows``, ``sha256``, ``fingerprint``),
``coordinate_convention``, ``rle_convention``, ``warnings`` (``code``, ``message``, ``count``,
``examples``), plus the plugin's ``info`` (``native_version``, ``seeds``, ``split_rule``,
``frac_base``, ``frac_rule``, ``frac_order``, ...).
"""

from __future__ import annotations

import contextlib
import csv
import gc
import gzip
import hashlib
import io
import json
import math
import os
import sys
import zipfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from place_bench.data import manifest as mf

_encode_json_str = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) uses

__all__ = [
    "ManifestPlan",
    "check_protocol",
    "json_record",
    "parse_age",
    "read_dicom_tags",
    "NativeTable",
    "PrepareError",
    "PrepareResult",
    "PrepareWarnings",
    "code_version",
    "digest_files",
    "find_native_file",
    "manifest_paths",
    "read_native_csv",
    "run_prepare",
]

PathLike = str | os.PathLike
_MAX_EXAMPLES = 5
_CORE_FILES = (
    Path(__file__),
    Path(mf.__file__),
    Path(__file__).with_name("splits.py"),
    Path(__file__).with_name("rle.py"),
)


class PrepareError(RuntimeError):
    """An unrecoverable problem in the native data; the message is one line naming the file and
    the column or line (e.g. ``"train.csv: missing column 'Path' (found: ...)"``)."""


class PrepareWarnings:
    """Recoverable problems, counted per code.

    ``add(code, message, example)`` counts one occurrence; the first ``message`` of a code is
    kept, with up to five distinct examples. :meth:`as_list` is what the sidecar stores.
    """

    def __init__(self) -> None:
        self._items: dict[str, dict] = {}

    def add(self, code: str, message: str, example: str | None = None, count: int = 1) -> None:
        item = self._items.setdefault(code, {"code": code, "message": message, "count": 0, "examples": []})
        item["count"] += int(count)
        if example is not None and example not in item["examples"] and len(item["examples"]) < _MAX_EXAMPLES:
            item["examples"].append(example)

    def count(self, code: str) -> int:
        return self._items.get(code, {}).get("count", 0)

    def codes(self) -> list[str]:
        return sorted(self._items)

    def as_list(self) -> list[dict]:
        return [dict(self._items[c], examples=list(self._items[c]["examples"])) for c in sorted(self._items)]

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class PrepareResult:
    """What ``prepare`` produced (or found already up to date, ``reused=True``)."""

    dataset: str
    protocol: str
    manifest_path: Path
    sidecar_path: Path
    rows: int
    counts: dict
    warnings: list
    fingerprint: str
    reused: bool = False

    def split_rows(self, split: str) -> int:
        return int(self.counts.get(split, {}).get("rows", 0))

    def warning_count(self, code: str) -> int:
        return sum(int(w["count"]) for w in self.warnings if w["code"] == code)


@dataclass
class ManifestPlan:
    """What a dataset plugin's ``build`` callback returns.

    ``rows``: manifest rows sorted by ``sample_id`` (an iterator is fine; it is consumed once).
    ``label_names`` / ``class_names``: sidecar vocabularies (``labels`` are aligned with the first).
    ``info``: extra sidecar keys (``native_version``, ``seeds``, ``split_rule``, ``frac_base``,
    ``frac_rule``, ``notes``, ...). ``disjoint_subjects``: the protocol promises that no
    ``subject_id`` is in two splits; a violation is a :class:`PrepareError`.
    """

    rows: Iterable[Mapping[str, Any]]
    label_names: Sequence[str] = ()
    class_names: Sequence[str] = ()
    info: dict = field(default_factory=dict)
    disjoint_subjects: bool = False


# --------------------------------------------------------------------------------------------
# Native files
# --------------------------------------------------------------------------------------------


def rel_name(root: PathLike, path: PathLike) -> str:
    """``path`` relative to ``root`` as POSIX text (``path`` itself when outside ``root``)."""
    # abspath, not resolve: a symlinked native file keeps its name under the root
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def find_native_file(root: PathLike, names: Sequence[str], required: bool = True) -> Path | None:
    """The first existing ``root/name`` among ``names``, each also tried with ``.gz`` and
    ``.zip`` appended; :class:`PrepareError` listing the names tried when none exists and
    ``required`` (else ``None``)."""
    root = Path(root)
    tried = []
    for name in names:
        for candidate in (name, name + ".gz", name + ".zip"):
            tried.append(candidate)
            if (root / candidate).is_file():
                return root / candidate
    if required:
        raise PrepareError(f"{root}: required native file not found (tried {', '.join(tried)})")
    return None


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    if path.name.endswith(".zip"):
        archive = zipfile.ZipFile(path)
        members = [m for m in archive.namelist() if not m.endswith("/") and not m.startswith("__MACOSX")]
        if len(members) != 1:
            raise PrepareError(f"{path}: expected one file inside the zip archive, found {len(members)}")
        return io.TextIOWrapper(archive.open(members[0]), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


@dataclass
class NativeTable:
    """A native CSV held as lists of strings, with header names stripped of whitespace.

    ``name`` is how messages refer to the file (relative to the native root). ``rows[i]`` is data
    row ``i`` (0-based); ``lines[i]`` its 1-based line number in the file (the header is line 1).
    """

    path: Path
    name: str
    columns: list[str]
    rows: list[list[str]]
    lines: array

    def __len__(self) -> int:
        return len(self.rows)

    def index(self, column: str) -> int:
        try:
            return self.columns.index(column)
        except ValueError:
            raise PrepareError(f"{self.name}: missing column {column!r} (found: {', '.join(self.columns)})") from None

    def column(self, column: str) -> list[str]:
        j = self.index(column)
        return [r[j] for r in self.rows]

    def where(self, i: int, column: str | None = None) -> str:
        place = f"{self.name} line {self.lines[i]}"
        return f"{place} column {column!r}" if column else place

    def record(self, i: int) -> dict[str, str]:
        """The untouched native record ``i`` (stripped header names as keys)."""
        return dict(zip(self.columns, self.rows[i]))

    def record_json(self, i: int) -> str:
        """``json_record(self.record(i))``, faster (keys encoded once): the ``source_row`` text."""
        keys = self.__dict__.get("_json_keys")
        if keys is None:
            keys = self.__dict__["_json_keys"] = [_encode_json_str(c) + ":" for c in self.columns]
        return "{" + ",".join(map(str.__add__, keys, map(_encode_json_str, self.rows[i]))) + "}"

    def float_column(self, column: str, allowed: Sequence[float] | None = None) -> np.ndarray:
        """The whole column as ``float64`` (blank -> NaN), validated like :meth:`float_value`."""
        j = self.index(column)
        cache: dict[str, float] = {}
        out = np.empty(len(self.rows), dtype=np.float64)
        for i, values in enumerate(self.rows):
            text = values[j]
            v = cache.get(text)
            if v is None:
                v = cache[text] = self.float_value(i, column, allowed)
            out[i] = v
        return out

    def float_value(self, i: int, column: str, allowed: Sequence[float] | None = None) -> float:
        """Column value of row ``i`` as float; blank -> NaN; anything else that is not a number
        (or not in ``allowed``) is a :class:`PrepareError` naming file, line and column."""
        text = self.rows[i][self.index(column)].strip()
        if not text:
            return math.nan
        try:
            value = float(text)
        except ValueError:
            raise PrepareError(f"{self.where(i, column)}: {text!r} is not a number") from None
        if math.isnan(value) or (allowed is not None and value not in allowed):
            raise PrepareError(
                f"{self.where(i, column)}: unexpected value {text!r} (expected one of {sorted(allowed or [])} or blank)"
            )
        return value


def read_native_csv(
    path: PathLike,
    root: PathLike,
    required: Sequence[str],
    *,
    strip_values: bool = False,
    warnings: PrepareWarnings | None = None,
) -> NativeTable:
    """Read a native CSV (plain, ``.gz`` or single-member ``.zip``) into a :class:`NativeTable`.

    Header names are stripped of surrounding whitespace (SIIM's ``" EncodedPixels"``; a warning
    ``stripped_header`` is counted when that changed anything). With ``strip_values`` every value
    is stripped too (warning ``stripped_values`` with the number of values changed). Blank lines
    are skipped. Raises :class:`PrepareError` for an empty file, a repeated column name, a
    missing ``required`` column (naming it) or a row with the wrong number of fields (naming the
    line).
    """
    path = Path(path)
    name = rel_name(root, path)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    share = {}.setdefault
    rows: list[list[str]] = []
    lines = array("q")
    stripped_values = 0
    example_value = None
    with _open_text(path) as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise PrepareError(f"{name}: empty file (no header line)") from None
        except csv.Error as exc:
            raise PrepareError(f"{name} line 1: {exc}") from None
        columns = [h.strip() for h in header]
        if columns != header and warnings is not None:
            changed = [h for h in header if h != h.strip()]
            warnings.add("stripped_header", f"{name}: stripped whitespace around column names", repr(changed[0]))
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        if dupes:
            raise PrepareError(f"{name}: column {dupes[0]!r} appears more than once")
        for c in required:
            if c not in columns:
                raise PrepareError(f"{name}: missing column {c!r} (found: {', '.join(columns)})")
        width = len(columns)
        try:
            for values in reader:
                if not values:
                    continue
                if len(values) != width:
                    raise PrepareError(
                        f"{name} line {reader.line_num}: expected {width} fields, found {len(values)}"
                    )
                if strip_values:
                    for j, v in enumerate(values):
                        s = v.strip()
                        if s != v:
                            stripped_values += 1
                            example_value = example_value or repr(v[:40])
                            values[j] = s
                # one object per distinct value ('', '1.0', 'Frontal', ...) keeps big tables small
                rows.append(list(map(share, values, values)))
                lines.append(reader.line_num)
        except csv.Error as exc:
            raise PrepareError(f"{name} line {reader.line_num}: {exc}") from None
    if stripped_values and warnings is not None:
        warnings.add(
            "stripped_values", f"{name}: stripped whitespace around values", example_value, count=stripped_values
        )
    return NativeTable(path=path, name=name, columns=columns, rows=rows, lines=lines)


def describe_files(root: PathLike, paths: Iterable[PathLike]) -> dict[str, dict]:
    """``{relative name: {"size": bytes, "sha256": hex}}`` of the native input files."""
    out = {}
    for p in sorted({Path(p) for p in paths}, key=lambda p: rel_name(root, p)):
        out[rel_name(root, p)] = {"size": p.stat().st_size, "sha256": mf.sha256_file(p)}
    return out


def digest_files(root: PathLike, paths: Iterable[PathLike]) -> dict:
    """``{"count": n, "sha256": hex}`` summarizing many small native files (report trees) in one
    entry, for ``run_prepare(options=...)``: the SHA-256 over ``"<relative name>\\0<sha256 of the
    content>\\n"`` in name order. Listing each file in the sidecar's ``files`` would not scale."""
    h = hashlib.sha256()
    top = os.path.join(os.path.abspath(root), "")
    named = []
    for p in paths:
        full = os.path.abspath(p)
        # plain string work: rel_name's pathlib calls dominate on 10^5 files
        name = full[len(top):].replace(os.sep, "/") if full.startswith(top) else rel_name(root, p)
        named.append((name, full))
    named.sort()
    for name, p in named:
        h.update(f"{name}\0{mf.sha256_file(p)}\n".encode())
    return {"count": len(named), "sha256": h.hexdigest()}


def code_version(files: Iterable[PathLike] = ()) -> str:
    """``"<suite version>+<sha256[:12]>"`` of the core data modules and the given plugin files:
    any code change invalidates earlier manifests."""
    import place_bench

    h = hashlib.sha256()
    for p in sorted({Path(f).resolve() for f in [*_CORE_FILES, *files]}):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return f"{place_bench.__version__}+{h.hexdigest()[:12]}"


def manifest_paths(out: PathLike, dataset: str, protocol: str) -> tuple[Path, Path]:
    """``(<out>/<dataset>/<protocol>.parquet, <out>/<dataset>/<protocol>.json)``."""
    folder = Path(out) / dataset
    return folder / f"{protocol}.parquet", folder / f"{protocol}.json"


# --------------------------------------------------------------------------------------------
# Image checks
# --------------------------------------------------------------------------------------------

_IMAGE_PROBLEM_CODES = ("missing_image", "unreadable_image")


def _checked_rows(rows: Iterable[Mapping[str, Any]], root: Path, warnings: PrepareWarnings) -> Iterator[dict]:
    from place_bench.data.images import ImageReadError, probe_image

    for row in rows:
        rel = row.get("image_path")
        if not rel:
            warnings.add("no_image_path", "rows without an image path (image not checked)", row.get("sample_id"))
            yield dict(row)
            continue
        path = root / rel
        if not path.is_file():
            warnings.add(
                "missing_image", "images named by the native tables are not on disk; their rows were left out", rel
            )
            continue
        try:
            info = probe_image(path)
        except ImageReadError as exc:
            warnings.add("unreadable_image", "images that cannot be read; their rows were left out", f"{rel}: {exc.cause}")
            continue
        out = dict(row, width=info.width, height=info.height)
        if info.format == "dcm":
            out["photometric"] = info.photometric
        if row.get("image_format") and info.format != row["image_format"]:
            warnings.add("image_format_mismatch", "file content differs from the expected image format", rel)
        for box in row.get("boxes") or []:
            if box["x1"] < 0 or box["y1"] < 0 or box["x2"] > info.width or box["y2"] > info.height:
                warnings.add("box_outside_image", "boxes reaching outside their image (kept as given)", rel)
                break
        rle = row.get("mask_rle")
        if rle:
            h, w = (int(v) for v in rle.split()[:2])
            if (h, w) != (info.height, info.width):
                warnings.add("mask_size_mismatch", "mask size differs from the image size", f"{rel}: mask {h}x{w}")
        for aux in row.get("aux_image_paths") or []:
            if not (root / aux).is_file():
                warnings.add("missing_aux_image", "auxiliary images not on disk (rows kept)", aux)
        yield out


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _fingerprint(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def _result_from_sidecar(dataset: str, protocol: str, parquet: Path, sidecar_file: Path, sidecar: dict, reused: bool):
    return PrepareResult(
        dataset=dataset,
        protocol=protocol,
        manifest_path=parquet,
        sidecar_path=sidecar_file,
        rows=int(sidecar["manifest"]["rows"]),
        counts=sidecar["counts"],
        warnings=sidecar["warnings"],
        fingerprint=sidecar["manifest"]["fingerprint"],
        reused=reused,
    )


def _reusable(parquet: Path, sidecar_file: Path, fingerprint: str, check_images: bool) -> dict | None:
    if not (parquet.is_file() and sidecar_file.is_file()):
        return None
    try:
        sidecar = mf.read_sidecar(sidecar_file)
    except mf.ManifestError:
        return None
    if sidecar.get("input_fingerprint") != fingerprint:
        return None
    if sidecar.get("manifest", {}).get("sha256") != mf.sha256_file(parquet):
        return None
    # images may have arrived since: re-check when the last run missed some
    if check_images and any(w.get("code") in _IMAGE_PROBLEM_CODES for w in sidecar.get("warnings", [])):
        return None
    return sidecar


def run_prepare(
    *,
    dataset: str,
    protocol: str,
    root: PathLike,
    out: PathLike,
    input_files: Sequence[PathLike],
    build: Callable[[PrepareWarnings], ManifestPlan],
    check_images: bool = True,
    code_files: Sequence[PathLike] = (),
    options: Mapping[str, Any] | None = None,
    force: bool = False,
    batch_rows: int = 4096,
) -> PrepareResult:
    """Prepare one (dataset, protocol) manifest; see the module docstring for the steps.

    ``input_files``: the native files ``build`` reads (hashed into the fingerprint and listed in
    the sidecar). ``code_files``: the plugin's source files (part of the code version).
    ``options``: plugin settings that change the output (e.g. subset sizes), fingerprinted and
    stored in the sidecar. Returns a :class:`PrepareResult`; raises :class:`PrepareError`.
    """
    root = Path(root)
    if not root.is_dir():
        raise PrepareError(f"{root}: native root is not a folder")
    parquet, sidecar_file = manifest_paths(out, dataset, protocol)
    files = describe_files(root, input_files)
    version = code_version(code_files)
    options = dict(options or {})
    fingerprint = _fingerprint(
        {
            "dataset": dataset,
            "protocol": protocol,
            "schema_version": mf.SCHEMA_VERSION,
            "code_version": version,
            "check_images": bool(check_images),
            "native_root": str(root.resolve()),
            "files": files,
            "options": options,
        }
    )
    if not force:
        sidecar = _reusable(parquet, sidecar_file, fingerprint, check_images)
        if sidecar is not None:
            return _result_from_sidecar(dataset, protocol, parquet, sidecar_file, sidecar, reused=True)

    job = _Job(dataset, protocol, root, parquet, sidecar_file, files, version, options, fingerprint,
               bool(check_images), batch_rows)
    with _gc_paused():
        return _build_and_write(job, build)


@dataclass(frozen=True)
class _Job:
    dataset: str
    protocol: str
    root: Path
    parquet: Path
    sidecar_file: Path
    files: dict
    version: str
    options: dict
    fingerprint: str
    check_images: bool
    batch_rows: int


@contextlib.contextmanager
def _gc_paused():
    # Native tables hold millions of small strings; with the cyclic collector on, its repeated
    # full passes over them cost more than the work itself. Rows create no reference cycles.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build_and_write(job: _Job, build: Callable[[PrepareWarnings], ManifestPlan]) -> PrepareResult:
    warnings = PrepareWarnings()
    plan = build(warnings)
    rows: Iterable[Mapping[str, Any]] = plan.rows
    if job.check_images:
        rows = _checked_rows(rows, job.root, warnings)
    name = f"{job.dataset}/{job.protocol}"
    writer = mf.ManifestWriter(job.parquet, plan.label_names, batch_rows=job.batch_rows)
    try:
        for row in rows:
            try:
                writer.write(row)
            except mf.ManifestError as exc:
                raise PrepareError(f"{name}: {exc}") from None
        summary = writer.close()
        if plan.disjoint_subjects and summary.subject_overlap:
            pairs = ", ".join(f"{k}: {v}" for k, v in summary.subject_overlap.items())
            raise PrepareError(f"{name}: patients appear in two splits ({pairs})")
        if summary.rows == 0:
            raise PrepareError(f"{name}: no rows left to write (see warnings: {warnings.codes()})")
        summary = writer.commit()
    except BaseException:
        writer.abort()
        raise

    sidecar = {
        "dataset": job.dataset,
        "protocol": job.protocol,
        "schema_version": mf.SCHEMA_VERSION,
        "code_version": job.version,
        "native_root": str(job.root.resolve()),
        "files": job.files,
        "options": job.options,
        "check_images": job.check_images,
        "input_fingerprint": job.fingerprint,
        "label_names": list(plan.label_names),
        "class_names": list(plan.class_names),
        "counts": summary.counts,
        "subject_overlap": summary.subject_overlap,
        "manifest": {
            "file": job.parquet.name,
            "rows": summary.rows,
            "sha256": summary.sha256,
            "fingerprint": summary.fingerprint,
        },
        "coordinate_convention": mf.COORDINATE_CONVENTION,
        "rle_convention": mf.RLE_CONVENTION,
        "warnings": warnings.as_list(),
    }
    for key, value in plan.info.items():
        if key in sidecar:
            raise ValueError(f"plan.info key {key!r} would overwrite a sidecar field")
        sidecar[key] = value
    mf.write_sidecar(job.sidecar_file, sidecar)
    return _result_from_sidecar(job.dataset, job.protocol, job.parquet, job.sidecar_file, sidecar, reused=False)


def check_protocol(dataset: str, protocols: Sequence[str], protocol: str) -> None:
    """:class:`PrepareError` when ``protocol`` is not one of the dataset's ``protocols``."""
    if protocol not in protocols:
        raise PrepareError(f"dataset {dataset!r} has no protocol {protocol!r}; protocols: {', '.join(protocols)}")


def json_record(record: Any) -> str:
    """Compact JSON of native record(s) (insertion order kept) for the ``source_row`` column."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def read_dicom_tags(path: PathLike, tags: Sequence[str]) -> dict[str, str]:
    """Header values (stripped text, ``""`` when absent) of a DICOM file, pixel data not read;
    ``{}`` when the file cannot be parsed (the image check reports such files)."""
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(tags))
    except Exception:
        return {}
    return {t: str(ds.get(t, "") or "").strip() for t in tags}


def parse_age(text: str | None) -> int | None:
    """Age in years from ``"51"``, ``"51.0"`` or a DICOM AS value ``"051Y"``; ``None`` if blank or
    not a number (other AS units, ``M`` / ``W`` / ``D``, give ``None``)."""
    if not text:
        return None
    text = text.strip()
    if text[-1:] in ("M", "W", "D", "m", "w", "d"):
        return None
    try:
        return int(float(text.rstrip("Yy")))
    except ValueError:
        return None
