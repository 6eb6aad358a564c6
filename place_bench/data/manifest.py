"""The normalized manifest every ``prepare`` writes (datasets.md section 3): schema, writer, reader.

Files
    ``<out>/<dataset>/<protocol>.parquet``  one row per sample (:data:`MANIFEST_FEATURES`);
    ``<out>/<dataset>/<protocol>.json``     the sidecar (:func:`write_sidecar`): dataset, protocol,
    schema and code versions, input-file hashes, label names, counts per split and label, seeds,
    conventions, warnings, and the manifest's own SHA-256 (its fingerprint).

Row schema (:data:`MANIFEST_FEATURES`, Hugging Face ``datasets.Features``; every column nullable
unless marked *required*):

==================  =====================================  ==========================================
column              type                                   meaning
==================  =====================================  ==========================================
dataset             string, required                       ``chexpert``, ``rsna``, ``siim``, ...
sample_id           string, required, unique               dataset-specific id (see the plugins)
subject_id          string                                 patient key (patient-disjoint splits)
study_id            string                                 study key
image_path          string                                 POSIX path relative to the native root
aux_image_paths     list<string>                           other views of the same sample
image_format        string                                 ``jpg`` | ``png`` | ``dcm``
width, height       int32                                  native size in pixels (null = not probed)
view                string                                 ``PA AP LATERAL LL FRONTAL UNKNOWN``
photometric         string                                 DICOM ``MONOCHROME1`` / ``MONOCHROME2``
split               string, required                       ``train`` | ``valid`` | ``test``
frac_rank           int32                                  train rows only; see ``splits.py``
subsets             list<string>                           named subsets / extra split memberships
report              string                                 full raw report text
findings            string                                 findings section
impression          string                                 impression section
text_tokens         int32                                  MGCA-rule token count
labels              list<float32>                          aligned with the sidecar's ``label_names``;
                                                           raw 1 / 0 / -1 / NaN (NaN = blank)
class_index         int32                                  multi-class datasets
class_name          string
boxes               list<struct{x1,y1,x2,y2: float32;      native pixels, ``xyxy``, origin at the
                    label, shape: string}>                 top-left pixel corner, x right, y down,
                                                           ``x2 = x1 + width``; shape ``rect`` |
                                                           ``ellipse`` | ``polygon_bbox`` | ``mask_bbox``
polygons            list<struct{label: string;             flat ``x1 y1 x2 y2 ...`` native pixels
                    points: list<float32>}>
mask_rle            string                                 canonical RLE (``place_bench.data.rle``)
mask_source         string                                 ``rle`` | ``boxes`` | ``shapes`` | ``png``
mask_path           string                                 native mask file, relative to the root
sex                 string
age                 int32                                  years
source_row          string                                 JSON of the untouched native record(s)
==================  =====================================  ==========================================

Writing is streaming (:class:`ManifestWriter`): rows arrive one at a time **sorted by
``sample_id``** (strictly increasing, which also proves uniqueness), are buffered in batches of
``batch_rows`` and appended to a temporary Parquet file beside the target, which is renamed over
the target only on :meth:`ManifestWriter.commit`. Parquet writer options are fixed and no
timestamp is stored, so the same rows give byte-identical files with the same pyarrow version.

Reading (:func:`read_manifest`) converts the Parquet file once into an Arrow stream file in a
cache folder (keyed by the manifest's SHA-256) and returns a memory-mapped ``datasets.Dataset``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import numpy as np

SCHEMA_VERSION = "1.0"

SPLITS: tuple[str, ...] = ("train", "valid", "test")
VIEWS: tuple[str, ...] = ("PA", "AP", "LATERAL", "LL", "FRONTAL", "UNKNOWN")
IMAGE_FORMATS: tuple[str, ...] = ("jpg", "png", "dcm")
BOX_SHAPES: tuple[str, ...] = ("rect", "ellipse", "polygon_bbox", "mask_bbox")
MASK_SOURCES: tuple[str, ...] = ("rle", "boxes", "shapes", "png")
REQUIRED_COLUMNS: tuple[str, ...] = ("dataset", "sample_id", "split")

#: Documented once, copied into every sidecar.
COORDINATE_CONVENTION = (
    "native pixels; origin at the top-left corner of the top-left pixel; x to the right (columns), "
    "y downward (rows); boxes xyxy with x2 = x1 + width"
)
RLE_CONVENTION = (
    "'<height> <width> c0 c1 ...': COCO uncompressed counts over the column-major flattening "
    "(index = col * height + row), background first, summing to height * width"
)

_PARQUET_OPTIONS = dict(
    compression="zstd",
    compression_level=3,
    use_dictionary=True,
    write_statistics=True,
    version="2.6",
    data_page_version="1.0",
)


class ManifestError(ValueError):
    """A row that does not fit the manifest schema, or a manifest file that cannot be used."""


def _features():
    import datasets
    from datasets import Features, Value

    List = getattr(datasets, "List", None)

    def list_of(feature):
        return List(feature) if List is not None else [feature]

    box = {
        "x1": Value("float32"),
        "y1": Value("float32"),
        "x2": Value("float32"),
        "y2": Value("float32"),
        "label": Value("string"),
        "shape": Value("string"),
    }
    polygon = {"label": Value("string"), "points": list_of(Value("float32"))}
    return Features(
        {
            "dataset": Value("string"),
            "sample_id": Value("string"),
            "subject_id": Value("string"),
            "study_id": Value("string"),
            "image_path": Value("string"),
            "aux_image_paths": list_of(Value("string")),
            "image_format": Value("string"),
            "width": Value("int32"),
            "height": Value("int32"),
            "view": Value("string"),
            "photometric": Value("string"),
            "split": Value("string"),
            "frac_rank": Value("int32"),
            "subsets": list_of(Value("string")),
            "report": Value("string"),
            "findings": Value("string"),
            "impression": Value("string"),
            "text_tokens": Value("int32"),
            "labels": list_of(Value("float32")),
            "class_index": Value("int32"),
            "class_name": Value("string"),
            "boxes": list_of(box),
            "polygons": list_of(polygon),
            "mask_rle": Value("string"),
            "mask_source": Value("string"),
            "mask_path": Value("string"),
            "sex": Value("string"),
            "age": Value("int32"),
            "source_row": Value("string"),
        }
    )


_FEATURES_CACHE: list = []


def manifest_features():
    """The row schema as ``datasets.Features`` (built on first use; ``datasets`` is imported lazily)."""
    if not _FEATURES_CACHE:
        _FEATURES_CACHE.append(_features())
    return _FEATURES_CACHE[0]


def __getattr__(name: str):  # MANIFEST_FEATURES without importing datasets at module import
    if name == "MANIFEST_FEATURES":
        return manifest_features()
    raise AttributeError(name)


def arrow_schema():
    """The pyarrow schema of the Parquet file, carrying the ``huggingface`` features metadata."""
    return manifest_features().arrow_schema


COLUMNS: tuple[str, ...] = (
    "dataset", "sample_id", "subject_id", "study_id", "image_path", "aux_image_paths",
    "image_format", "width", "height", "view", "photometric", "split", "frac_rank", "subsets",
    "report", "findings", "impression", "text_tokens", "labels", "class_index", "class_name",
    "boxes", "polygons", "mask_rle", "mask_source", "mask_path", "sex", "age", "source_row",
)
_COLUMN_SET = frozenset(COLUMNS)
_LIST_COLUMNS = ("aux_image_paths", "subsets", "labels", "boxes", "polygons")


# --------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


def manifest_fingerprint(path: str | os.PathLike) -> str:
    """The manifest's fingerprint: ``"sha256:<hex>"`` of the Parquet file's bytes.

    Byte-identical manifests (same rows, same schema, same pyarrow) have equal fingerprints;
    results records cite it.
    """
    return "sha256:" + sha256_file(path)


# --------------------------------------------------------------------------------------------
# Row validation and statistics
# --------------------------------------------------------------------------------------------


def _check_row(row: Mapping[str, Any], n_labels: int | None, where: str) -> dict:
    unknown = row.keys() - _COLUMN_SET
    if unknown:
        raise ManifestError(f"{where}: unknown column(s) {sorted(unknown)}")
    out = dict.fromkeys(COLUMNS)
    out.update(row)
    for c in REQUIRED_COLUMNS:
        if not isinstance(out[c], str) or not out[c]:
            raise ManifestError(f"{where}: column {c!r} is required (got {out[c]!r})")
    if out["split"] not in SPLITS:
        raise ManifestError(f"{where}: split {out['split']!r} is not one of {SPLITS}")
    if out["frac_rank"] is not None and out["split"] != "train":
        raise ManifestError(f"{where}: frac_rank is set on a {out['split']!r} row (train rows only)")
    if out["view"] is not None and out["view"] not in VIEWS:
        raise ManifestError(f"{where}: view {out['view']!r} is not one of {VIEWS}")
    if out["image_format"] is not None and out["image_format"] not in IMAGE_FORMATS:
        raise ManifestError(f"{where}: image_format {out['image_format']!r} is not one of {IMAGE_FORMATS}")
    if out["mask_source"] is not None and out["mask_source"] not in MASK_SOURCES:
        raise ManifestError(f"{where}: mask_source {out['mask_source']!r} is not one of {MASK_SOURCES}")
    for c in _LIST_COLUMNS:
        if out[c] is None:
            out[c] = []
    if n_labels is not None and out["labels"] and len(out["labels"]) != n_labels:
        raise ManifestError(f"{where}: {len(out['labels'])} labels, expected {n_labels} (label_names)")
    for b in out["boxes"]:
        if b.get("shape") not in BOX_SHAPES:
            raise ManifestError(f"{where}: box shape {b.get('shape')!r} is not one of {BOX_SHAPES}")
        if any(b.get(k) is None for k in ("x1", "y1", "x2", "y2")):
            raise ManifestError(f"{where}: box {b} lacks one of x1, y1, x2, y2")
        if not (b["x1"] <= b["x2"] and b["y1"] <= b["y2"]):
            raise ManifestError(f"{where}: box {b} is not xyxy with x1 <= x2 and y1 <= y2")
    return out


@dataclass
class SplitCounts:
    """Counts of one split: rows, distinct subjects, per-label value counts, classes, geometry."""

    rows: int = 0
    subjects: set = field(default_factory=set)
    labels: list = field(default_factory=list)  # per label: Counter of "1", "0", "-1", "nan", other
    classes: Counter = field(default_factory=Counter)
    boxes: int = 0
    rows_with_boxes: int = 0
    rows_with_mask: int = 0
    extra_memberships: Counter = field(default_factory=Counter)

    def add_batch(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Count a batch of checked rows of this split (labels counted with numpy)."""
        for row in rows:
            self._add_one(row)
        by_length: dict[int, list] = {}
        for row in rows:
            if row["labels"]:
                by_length.setdefault(len(row["labels"]), []).append(row["labels"])
        for length, values in by_length.items():
            while len(self.labels) < length:
                self.labels.append(Counter())
            a = np.asarray(values, dtype=np.float64)
            for k in range(length):
                col = a[:, k]
                nan = np.isnan(col)
                counter = self.labels[k]
                counter["nan"] += int(nan.sum())
                finite = col[~nan]
                for value, key in ((1.0, "1"), (0.0, "0"), (-1.0, "-1")):
                    counter[key] += int((finite == value).sum())
                for other in finite[(finite != 1.0) & (finite != 0.0) & (finite != -1.0)].tolist():
                    counter[repr(float(other))] += 1

    def _add_one(self, row: Mapping[str, Any]) -> None:
        self.rows += 1
        if row["subject_id"] is not None:
            self.subjects.add(row["subject_id"])
        if row["class_name"] is not None:
            self.classes[row["class_name"]] += 1
        if row["boxes"]:
            self.boxes += len(row["boxes"])
            self.rows_with_boxes += 1
        if row["mask_rle"] is not None and not _rle_is_empty(row["mask_rle"]):
            self.rows_with_mask += 1
        for s in row["subsets"] or []:
            self.extra_memberships[s] += 1

    def as_dict(self, label_names: Sequence[str]) -> dict:
        names = list(label_names) or [f"label_{i}" for i in range(len(self.labels))]
        labels = {}
        for i, name in enumerate(names):
            counter = self.labels[i] if i < len(self.labels) else Counter()
            labels[name] = {k: counter.get(k, 0) for k in ("1", "0", "-1", "nan")}
            labels[name].update({k: v for k, v in sorted(counter.items()) if k not in labels[name]})
        return {
            "rows": self.rows,
            "subjects": len(self.subjects),
            "labels": labels,
            "classes": dict(sorted(self.classes.items())),
            "boxes": self.boxes,
            "rows_with_boxes": self.rows_with_boxes,
            "rows_with_mask": self.rows_with_mask,
            "subsets": dict(sorted(self.extra_memberships.items())),
        }


def _rle_is_empty(rle: str) -> bool:
    parts = rle.split()
    return len(parts) == 3  # "<h> <w> <h*w>": only the background run


@dataclass
class ManifestSummary:
    """What :meth:`ManifestWriter.close` reports: row count, SHA-256 and counts per split."""

    path: Path
    rows: int
    sha256: str
    counts: dict[str, dict]
    subject_overlap: dict[str, int]

    @property
    def fingerprint(self) -> str:
        return "sha256:" + self.sha256


# --------------------------------------------------------------------------------------------
# Writer
# --------------------------------------------------------------------------------------------


class ManifestWriter:
    """Streaming, deterministic Parquet writer for manifest rows.

    ``rows`` are mappings with keys from :data:`COLUMNS` (missing keys are null / empty lists)
    and must arrive with strictly increasing ``sample_id`` (Python string order); a row out of
    order or a repeated ``sample_id`` raises :class:`ManifestError` naming both ids. Rows are
    buffered ``batch_rows`` at a time, each batch becoming one Parquet row group, and written to a
    temporary file beside ``path``. :meth:`close` finishes that file and returns a
    :class:`ManifestSummary`; :meth:`commit` renames it over ``path``; :meth:`abort` (or leaving a
    ``with`` block by an exception) removes it. ``label_names`` fixes the expected length of
    ``labels`` and names the label counts.
    """

    def __init__(self, path: str | os.PathLike, label_names: Sequence[str] = (), batch_rows: int = 4096):
        import pyarrow.parquet as pq

        if batch_rows < 1:
            raise ValueError("batch_rows must be positive")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.label_names = list(label_names)
        self.batch_rows = int(batch_rows)
        self._schema = arrow_schema()
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent)
        os.close(fd)
        self._tmp = Path(tmp)
        self._writer = pq.ParquetWriter(self._tmp, self._schema, **_PARQUET_OPTIONS)
        self._buffer: list[dict] = []
        self._last_id: str | None = None
        self._rows = 0
        self._counts: dict[str, SplitCounts] = {s: SplitCounts() for s in SPLITS}
        self._summary: ManifestSummary | None = None
        self._state = "open"

    def write(self, row: Mapping[str, Any]) -> None:
        if self._state != "open":
            raise ManifestError(f"manifest writer for {self.path} is {self._state}")
        where = f"manifest row {self._rows + 1} (sample_id {row.get('sample_id')!r})"
        checked = _check_row(row, len(self.label_names) if self.label_names else None, where)
        sid = checked["sample_id"]
        if self._last_id is not None and not sid > self._last_id:
            problem = "repeats" if sid == self._last_id else "sorts before"
            raise ManifestError(
                f"{where}: sample_id {problem} the previous one {self._last_id!r}; rows must arrive "
                "sorted by sample_id with no duplicates"
            )
        self._last_id = sid
        self._buffer.append(checked)
        self._rows += 1
        if len(self._buffer) >= self.batch_rows:
            self._flush()

    def write_all(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.write(row)

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._buffer:
            return
        for split, counts in self._counts.items():
            batch = [r for r in self._buffer if r["split"] == split]
            if batch:
                counts.add_batch(batch)
        arrays = [pa.array(list(map(itemgetter(f.name), self._buffer)), type=f.type) for f in self._schema]
        table = pa.Table.from_arrays(arrays, schema=self._schema)
        self._writer.write_table(table, row_group_size=len(self._buffer))
        self._buffer.clear()

    def close(self) -> ManifestSummary:
        """Finish the temporary file (idempotent) and summarize it; ``path`` is not touched yet."""
        if self._summary is not None:
            return self._summary
        if self._state != "open":
            raise ManifestError(f"manifest writer for {self.path} is {self._state}")
        self._flush()
        self._writer.close()
        with open(self._tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        subjects = {s: c.subjects for s, c in self._counts.items()}
        overlap = {}
        for i, a in enumerate(SPLITS):
            for b in SPLITS[i + 1 :]:
                n = len(subjects[a] & subjects[b])
                if n:
                    overlap[f"{a}&{b}"] = n
        self._summary = ManifestSummary(
            path=self.path,
            rows=self._rows,
            sha256=sha256_file(self._tmp),
            counts={s: c.as_dict(self.label_names) for s, c in self._counts.items()},
            subject_overlap=overlap,
        )
        self._state = "closed"
        return self._summary

    def commit(self) -> ManifestSummary:
        """Close if needed, then atomically rename the temporary file over ``path``."""
        summary = self.close()
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self._tmp, 0o666 & ~umask)
        os.replace(self._tmp, self.path)
        self._state = "committed"
        return summary

    def abort(self) -> None:
        """Drop the temporary file; ``path`` keeps its previous content (if any)."""
        if self._state == "open":
            try:
                self._writer.close()
            except Exception:  # pragma: no cover - best effort on an error path
                pass
        if self._state != "committed":
            self._tmp.unlink(missing_ok=True)
            self._state = "aborted"

    def __enter__(self) -> "ManifestWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        elif self._state in ("open", "closed"):
            self.commit()


def write_manifest(
    path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], label_names: Sequence[str] = (),
    batch_rows: int = 4096,
) -> ManifestSummary:
    """Write ``rows`` (sorted by ``sample_id``) to ``path`` atomically; see :class:`ManifestWriter`."""
    writer = ManifestWriter(path, label_names, batch_rows)
    try:
        writer.write_all(rows)
        return writer.commit()
    except BaseException:
        writer.abort()
        raise


# --------------------------------------------------------------------------------------------
# Sidecar
# --------------------------------------------------------------------------------------------


def sidecar_path(manifest_path: str | os.PathLike) -> Path:
    """``<protocol>.json`` beside ``<protocol>.parquet``."""
    return Path(manifest_path).with_suffix(".json")


def dump_sidecar(sidecar: Mapping[str, Any]) -> str:
    """Canonical JSON text of a sidecar: sorted keys, 2-space indent, no NaN, final newline."""
    return json.dumps(sidecar, sort_keys=True, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def write_sidecar(path: str | os.PathLike, sidecar: Mapping[str, Any]) -> None:
    from place_bench.io import atomic_write_text

    atomic_write_text(path, dump_sidecar(sidecar))


def read_sidecar(path: str | os.PathLike) -> dict:
    path = Path(path)
    if path.suffix == ".parquet":
        path = sidecar_path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ManifestError(f"{path}: sidecar not found") from None
    except json.JSONDecodeError as exc:
        raise ManifestError(f"{path}: not valid JSON ({exc})") from None


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def iter_manifest(
    path: str | os.PathLike, columns: Sequence[str] | None = None, batch_rows: int = 4096
) -> Iterator[dict]:
    """Rows of a manifest as dicts, read batch by batch with pyarrow (no ``datasets`` cache)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_rows, columns=list(columns) if columns else None):
        yield from batch.to_pylist()


def read_manifest(path: str | os.PathLike, cache_dir: str | os.PathLike | None = None):
    """Open a manifest as a memory-mapped ``datasets.Dataset``.

    The Parquet file is converted once, batch by batch, into an Arrow stream file
    ``<cache_dir>/<stem>-<sha256[:16]>.arrow`` (default ``cache_dir``: ``.cache`` beside the
    manifest), which ``datasets.Dataset.from_file`` memory-maps. A changed manifest gets a new
    cache file; stale ones for the same stem are removed. The features are the manifest's
    (:func:`manifest_features`), read back from the schema metadata.
    """
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    digest = sha256_file(path)
    cache = Path(cache_dir) if cache_dir is not None else path.parent / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / f"{path.stem}-{digest[:16]}.arrow"
    if not target.is_file():
        pf = pq.ParquetFile(path)
        schema = pf.schema_arrow
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=cache)
        os.close(fd)
        try:
            with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
                for batch in pf.iter_batches(batch_size=4096):
                    writer.write_batch(batch)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for stale in cache.glob(f"{path.stem}-*.arrow"):
            if stale != target and re.fullmatch(re.escape(path.stem) + r"-[0-9a-f]{16}\.arrow", stale.name):
                stale.unlink(missing_ok=True)
    return datasets.Dataset.from_file(str(target))
