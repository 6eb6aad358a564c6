"""Shared machinery of the native-format emulators (datasets.md §4.7, §4.10).

Contract every emulator follows:

* ``emulate(out_dir, size="tiny", seed=0, image_px=None, *, workers=1, counts=None,
  contrast_gain=1.0)`` writes one native dataset tree into ``out_dir`` and returns an
  :class:`EmulationResult`. ``contrast_gain`` (the §4.9 lesion contrast multiplier, a finite
  number > 0) goes into every study's :class:`~..latent.SampleSpec` (``plan_jobs(...,
  contrast_gain=)`` via :func:`with_contrast_gain`). It scales what the renderer paints for
  lung / pleural findings (consolidation, ground glass, atelectasis, effusion, edema, nodule,
  pneumothorax, pleural thickening; cardiomegaly, widened mediastinum and rib fractures are
  geometry and bone, unchanged), so only pixels near those findings change -- never ids,
  reports, labels, masks or boxes; 1.0 renders exactly what the generator renders without it;
* the tree is built in a staging folder beside ``out_dir`` (``.<name>.emulating``) and
  renamed into place at the end, so ``out_dir`` never holds half a dataset. An existing
  ``out_dir`` is replaced only when it is empty or holds a previous emulation (it has
  ``manifest_of_quirks.json``); anything else is refused;
* studies are generated, encoded and written one at a time (optionally by ``workers``
  processes, results consumed in order), so memory does not grow with the dataset;
* byte-identical output for identical arguments: every id comes from a generator seeded
  by ``(seed, dataset, purpose, index)``, JPEG / PNG use fixed encoder settings and no
  metadata, gzip headers carry ``mtime=0`` and no file name, DICOMs carry no dates or
  times of their own making, JSON is written with sorted keys;
* beside the native files: ``latent.jsonl`` (one line per study: ids, the sample spec with its
  ``contrast_gain``, ``latent.to_dict()``, report template ids and the truth the files were
  built from) and ``manifest_of_quirks.json`` (``size``, ``seed``, ``image_px``,
  ``contrast_gain``, what was planted, and what a correct ``prepare`` should count; a tree
  written before the knob existed has no ``contrast_gain`` key and was made with 1.0).
  Neither is part of the real datasets; readers of the native format ignore them.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import math
import os
import shutil
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional, Sequence

import numpy as np

from ..latent import check_contrast_gain
from ..sizes import SIZES, SizeSpec

QUIRKS_FILE = "manifest_of_quirks.json"
LATENT_FILE = "latent.jsonl"
JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 6

__all__ = [
    "EmulationResult", "LATENT_FILE", "QUIRKS_FILE", "TreeWriter", "csv_text", "dumps", "encode_jpeg", "encode_png",
    "gzip_bytes", "id_rng", "latent_record", "map_ordered", "pick_indices", "recorded_emulation", "resolve_counts",
    "run_emulation", "size_spec", "stable_code", "with_contrast_gain",
]


@dataclass
class EmulationResult:
    """What an emulator wrote.

    ``root``: the dataset folder; ``paths``: every file written, POSIX paths relative to
    ``root``, sorted (``latent.jsonl`` and ``manifest_of_quirks.json`` included);
    ``counts``: studies / images / rows per split or file as the dataset defines them;
    ``quirks``: planted edge cases (name -> details, as in ``manifest_of_quirks.json``);
    ``expected``: the counts a correct ``prepare`` should report; ``seconds``: wall time
    (not written anywhere, so trees stay byte-identical).
    """

    dataset: str
    root: Path
    paths: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    quirks: dict = field(default_factory=dict)
    expected: dict = field(default_factory=dict)
    seconds: float = 0.0


# ------------------------------------------------------------------------- sizes
def size_spec(size: str) -> SizeSpec:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {tuple(SIZES)}")
    return SIZES[size]


def resolve_counts(size: str, counts: Optional[Mapping[str, int]] = None) -> dict[str, int]:
    """Counts of ``size`` (``pretrain``, ``train``, ``valid``, ``test``, ``5xn``,
    ``dicom_images``), with entries of ``counts`` overriding them (tests use this to
    emulate fewer studies). ``dicom_images`` defaults to ``train + valid + test`` when the
    size does not cap it."""
    s = size_spec(size)
    out = {"pretrain": s.pretrain, "train": s.train, "valid": s.valid, "test": s.test, "5xn": s.five_by_n,
           "dicom_images": s.dicom_images if s.dicom_images is not None else s.train + s.valid + s.test}
    for key, value in (counts or {}).items():
        if key not in out:
            raise ValueError(f"unknown count {key!r}; expected some of {sorted(out)}")
        if int(value) < 0:
            raise ValueError(f"count {key!r} must be >= 0, got {value}")
        out[key] = int(value)
    return out


# ------------------------------------------------------------------------ seeding
def stable_code(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def id_rng(seed: int, dataset: str, purpose: str, *keys: int | str) -> np.random.Generator:
    """Generator for ids and file-level choices, a pure function of its arguments
    (independent of the study generators, which hash ``(seed, split, index, profile)``)."""
    words = [int(seed), stable_code(dataset), stable_code(purpose)]
    words += [k if isinstance(k, int) else stable_code(str(k)) for k in keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))


# ----------------------------------------------------------------------- encoding
def encode_jpeg(image: np.ndarray) -> bytes:
    """8-bit grayscale JPEG (baseline, quality 95, no EXIF / JFIF extras beyond the default)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="L").save(
        buf, format="JPEG", quality=JPEG_QUALITY, optimize=False, progressive=False)
    return buf.getvalue()


def encode_png(image: np.ndarray) -> bytes:
    """Grayscale PNG: 8-bit for ``uint8`` input, 16-bit for ``uint16``; no text chunks."""
    from PIL import Image

    arr = np.ascontiguousarray(image)
    buf = io.BytesIO()
    if arr.dtype == np.uint16:
        im = Image.fromarray(arr.astype("<u2"), mode="I;16")
    else:
        im = Image.fromarray(arr.astype(np.uint8), mode="L")
    im.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()


def gzip_bytes(data: bytes) -> bytes:
    """gzip with a zero timestamp and no embedded file name (byte-identical reruns)."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=6) as gz:
        gz.write(data)
    return buf.getvalue()


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """CSV with ``\\n`` line ends, minimal quoting; ``None`` -> empty field."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow(["" if v is None else v for v in row])
    return buf.getvalue()


# ------------------------------------------------------------------- latent lines
def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (frozenset, set)):
        return sorted(_jsonable(v) for v in obj)
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any, indent: Optional[int] = None) -> str:
    return json.dumps(_jsonable(obj), sort_keys=True, indent=indent, separators=None if indent else (",", ":"),
                      ensure_ascii=False)


def latent_record(spec, latent, reports: Mapping[str, Any], ids: Mapping[str, Any], **truth: Any) -> str:
    """One ``latent.jsonl`` line: ``ids`` (native identifiers and paths of the study),
    ``spec`` (regenerate with ``generate_from_spec``; ``contrast_gain`` included), ``latent``
    (``latent.to_dict()``), ``template_ids`` (report style -> sentence template ids),
    ``report_variant`` (MIMIC structural choices) and any dataset-specific ``truth`` (boxes,
    RLE rows ... as written)."""
    record = {
        "ids": dict(ids),
        "spec": {"seed": spec.seed, "split": spec.split, "index": spec.index, "profile": spec.profile,
                 "attempt": spec.attempt, "constraints": spec.constraints, "tags": dict(spec.tags),
                 "contrast_gain": spec.contrast_gain},
        "latent": latent.to_dict(),
        "template_ids": {style: list(rep.template_ids) for style, rep in sorted(reports.items())},
        "report_variant": reports["mimic"].variant if "mimic" in reports else None,
        **truth,
    }
    return dumps(record)


def with_contrast_gain(jobs: Sequence, contrast_gain: float) -> list:
    """``jobs`` (dataclasses with a ``spec`` field, None for a job without a study) with every
    ``spec.contrast_gain`` set to ``contrast_gain`` (checked: a finite number > 0). The gain does
    not enter the study seeds, so ids, latents and reports planned from the specs stay valid."""
    gain = check_contrast_gain(contrast_gain)

    def one(job):
        if job.spec is None:
            return job
        return dataclasses.replace(job, spec=dataclasses.replace(job.spec, contrast_gain=gain))

    return [one(job) for job in jobs]


# ------------------------------------------------------------------ parallel map
def map_ordered(fn: Callable, jobs: Sequence, workers: int = 1) -> Iterator:
    """``map(fn, jobs)`` in order; with ``workers > 1`` the calls run in that many processes
    (``fn`` and the jobs must be picklable) while results are consumed in order.

    Linux forks the workers (they inherit the loaded modules; the emulators start no threads);
    elsewhere they are spawned, which needs the calling script's ``if __name__ == "__main__"``
    guard as usual."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield fn(job)
        return
    method = "fork" if sys.platform.startswith("linux") and "fork" in get_all_start_methods() else "spawn"
    chunk = max(1, min(16, len(jobs) // (workers * 4)))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context(method)) as pool:
        yield from pool.map(fn, jobs, chunksize=chunk)


# ------------------------------------------------------------------------ writer
class TreeWriter:
    """Writes a dataset tree into a staging folder and moves it to ``out_dir`` on
    :meth:`finish`. Paths are POSIX, relative to the dataset root."""

    def __init__(self, out_dir: os.PathLike | str, dataset: str):
        self.out_dir = Path(out_dir)
        self.dataset = dataset
        self.t0 = time.perf_counter()
        if self.out_dir.exists():
            if not self.out_dir.is_dir():
                raise FileExistsError(f"{self.out_dir}: exists and is not a folder")
            if any(self.out_dir.iterdir()) and not (self.out_dir / QUIRKS_FILE).is_file():
                raise FileExistsError(
                    f"{self.out_dir}: folder is not empty and holds no previous emulation ({QUIRKS_FILE}); "
                    "refusing to replace it")
        self.stage = self.out_dir.parent / f".{self.out_dir.name}.emulating"
        if self.stage.exists():
            shutil.rmtree(self.stage)
        self.stage.mkdir(parents=True)
        self.paths: list[str] = []
        self._latent = open(self.stage / LATENT_FILE, "w", encoding="utf-8", newline="\n")
        self.paths.append(LATENT_FILE)

    def write_bytes(self, rel: str, data: bytes) -> None:
        path = self.stage / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)
        self.paths.append(rel)

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def write_csv(self, rel: str, header: Sequence[str], rows: Iterable[Sequence[Any]], gz: bool = False) -> None:
        data = csv_text(header, rows).encode("utf-8")
        self.write_bytes(rel, gzip_bytes(data) if gz else data)

    def latent_line(self, line: str) -> None:
        self._latent.write(line + "\n")

    def abort(self) -> None:
        self._latent.close()
        shutil.rmtree(self.stage, ignore_errors=True)

    def finish(self, *, counts: dict, quirks: dict, expected: dict, info: dict) -> EmulationResult:
        """Write ``manifest_of_quirks.json`` and move the tree into place."""
        self._latent.close()
        manifest = {"dataset": self.dataset, **info, "counts": counts, "quirks": quirks, "expected_prepare": expected}
        self.write_text(QUIRKS_FILE, dumps(manifest, indent=2) + "\n")
        if self.out_dir.exists():
            shutil.rmtree(self.out_dir)
        os.replace(self.stage, self.out_dir)
        return EmulationResult(self.dataset, self.out_dir, sorted(self.paths), counts, quirks, expected,
                               time.perf_counter() - self.t0)


def run_emulation(out_dir, dataset: str,
                  body: Callable[[TreeWriter], tuple[dict, dict, dict, dict]]) -> EmulationResult:
    """Run ``body(writer) -> (counts, quirks, expected, info)`` and finish, or clean up on error."""
    writer = TreeWriter(out_dir, dataset)
    try:
        counts, quirks, expected, info = body(writer)
    except BaseException:
        writer.abort()
        raise
    return writer.finish(counts=counts, quirks=quirks, expected=expected, info=info)


def recorded_emulation(root: os.PathLike | str) -> Optional[dict]:
    """What ``root/manifest_of_quirks.json`` records (``dataset``, ``size``, ``seed``, ``image_px``,
    ``contrast_gain`` ...), with ``contrast_gain`` 1.0 when absent (trees written before it was
    recorded); None when ``root`` holds no readable emulation."""
    try:
        info = json.loads((Path(root) / QUIRKS_FILE).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    return {**info, "contrast_gain": info.get("contrast_gain", 1.0)}


def pick_indices(rng: np.random.Generator, n: int, k: int, exclude: Iterable[int] = ()) -> list[int]:
    """``k`` distinct indices in ``range(n)`` outside ``exclude``, sorted (fewer if not enough)."""
    pool = np.array(sorted(set(range(n)) - set(exclude)), dtype=np.int64)
    if pool.size == 0 or k <= 0:
        return []
    return sorted(int(i) for i in rng.choice(pool, size=min(k, pool.size), replace=False))
