"""COVIDx chest X-ray classification (datasets.md section 1.5).

Native root: the COVIDx folder with header-less, space-separated label files (one image per
line: ``patient_id filename class data_source``; three-field lines without ``data_source``, as
in early releases, are accepted; a file name containing spaces is the text between the first
field and the class) and the image folders ``train/``, ``test/`` (and ``val/`` for CXR-4):

* 3-way releases (COVIDx 9A, what MGCA reads): ``train_COVIDx9A.txt``, ``test_COVIDx9A.txt``,
  classes ``normal`` / ``pneumonia`` / ``COVID-19``;
* binary releases (9B, Kaggle CXR-2/3/4, what BenchX reads): ``train.txt``, ``val.txt``,
  ``test.txt``, classes ``negative`` / ``positive``.

Class names are matched case-insensitively. A line that cannot be parsed, an unknown class, a
file name listed twice, or a label set mixing 3-way and binary classes is a
:class:`PrepareError` naming the file and line. Files are read without a header (BenchX's reader
drops each file's first line, datasets.md section 5 item 9; that is not reproduced).

Manifest rows (one per label line):

* ``sample_id`` = ``filename``; ``image_path`` = ``<folder>/<filename>`` where the folder is the
  label file's split (``train`` / ``val`` / ``test``); ``subject_id`` = ``patient_id``;
* ``class_index`` / ``class_name``: 3-way ``normal`` 0, ``pneumonia`` 1, ``COVID-19`` 2 (MGCA's
  mapping); binary ``negative`` 0, ``positive`` 1; ``labels`` = the one-hot vector over the
  sidecar's ``class_names`` (= ``label_names``);
* ``source_row`` = ``{"file": label file, "line": line number, "text": the line}``.

Protocols (the sidecar's ``label_files`` names the files used, section 5 item 14):

* ``mgca`` -- MGCA (``preprocess/covidx.py``): the 3-way files (``train_COVIDx9A.txt`` /
  ``test_COVIDx9A.txt``, else ``train.txt`` / ``test.txt`` when they are 3-way); the train file
  split with sklearn ``train_test_split(train_size=0.8, random_state=0)`` (valid =
  ``n - floor(0.8 n)`` rows) -> 24,104 / 6,026 on 9A; test = the test file. ``frac_rank``:
  ``RandomState(42)`` over the train rows in split order (MGCA's pandas ``sample``).
* ``benchx`` -- the official ``train.txt`` / ``val.txt`` / ``test.txt`` (CXR-4) as they are;
  ``frac_rank`` stratified by class, seed 42 (BenchX's committed 1 % / 10 % lists are not read).
* ``suite`` -- the 3-way files when present, else the binary ones; test = the test file;
  valid = ``val.txt`` when present, else whole patients of the train file drawn with
  ``RandomState(0)`` until 20 % of its rows; a patient who also appears in test (or valid) is
  removed from the later splits (warning ``patient_in_two_splits``), so splits are
  patient-disjoint; ``frac_rank`` stratified by class, seed 42.
"""

from __future__ import annotations

import math
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
    json_record,
    rel_name,
    run_prepare,
)
from place_bench.data.splits import frac_ranks, group_holdout, sklearn_split_indices, stratified_frac_ranks
from place_bench.hookspecs import hookimpl

THREE_WAY: tuple[str, ...] = ("normal", "pneumonia", "COVID-19")
BINARY: tuple[str, ...] = ("negative", "positive")
_CANONICAL = {name.lower(): name for name in THREE_WAY + BINARY}
#: Label sets in order of preference: split -> file name.
LABEL_SETS = {
    "9A": {"train": "train_COVIDx9A.txt", "test": "test_COVIDx9A.txt"},
    "plain": {"train": "train.txt", "val": "val.txt", "test": "test.txt"},
}
#: Published sizes (datasets.md section 1.5): (train, [val,] test) rows -> release.
KNOWN_SIZES = {
    (30_130, 400): "COVIDx 9A",
    (30_482, 400): "COVIDx 9B",
    (14_311, 200): "COVIDx 6",
    (67_863, 8_473, 8_482): "COVIDx CXR-4",
}
IMAGE_FORMATS = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg"}

SPLIT_SEED = 0
FRACTION_SEED = 42
MGCA_TRAIN_SIZE = 0.8
SUITE_VALID_SHARE = 0.2


@dataclass(frozen=True)
class _Entry:
    """One label line."""

    file: str  # label file name, relative to the root
    folder: str  # train / val / test
    line: int
    text: str
    patient: str
    filename: str
    class_name: str  # canonical
    source: str | None


def read_label_file(path: Path, root: Path, folder: str) -> list[_Entry]:
    """Parse one COVIDx label file (see the module docstring); blank lines are skipped."""
    name = rel_name(root, path)
    entries = []
    with open(path, encoding="utf-8-sig") as fh:
        for number, raw in enumerate(fh, 1):
            text = raw.rstrip("\r\n")
            fields = text.split()
            if not fields:
                continue
            if len(fields) < 3:
                raise PrepareError(
                    f"{name} line {number}: expected 'patient_id filename class [data_source]', got {text!r}"
                )
            if fields[-1].lower() in _CANONICAL:
                class_token, source, middle = fields[-1], None, fields[1:-1]
            else:
                class_token, source, middle = fields[-2], fields[-1], fields[1:-2]
            canonical = _CANONICAL.get(class_token.lower())
            if canonical is None or not middle:
                raise PrepareError(
                    f"{name} line {number}: unknown class {class_token!r} (expected one of "
                    f"{', '.join(THREE_WAY + BINARY)})"
                )
            entries.append(_Entry(name, folder, number, text, fields[0], " ".join(middle), canonical, source))
    return entries


def _find_set(root: Path, protocol: str) -> dict[str, Path]:
    """Split -> label file for the protocol (see the module docstring)."""
    def present(files: dict[str, str]) -> dict[str, Path]:
        return {split: root / f for split, f in files.items() if (root / f).is_file()}

    nine_a, plain = present(LABEL_SETS["9A"]), present(LABEL_SETS["plain"])
    if protocol == "benchx":
        candidates = [plain] if len(plain) == 3 else []
        wanted = "train.txt, val.txt and test.txt"
    elif protocol == "mgca":
        candidates = [s for s in (nine_a, plain) if "train" in s and "test" in s]
        candidates = [{k: v for k, v in s.items() if k != "val"} for s in candidates]
        wanted = "train_COVIDx9A.txt and test_COVIDx9A.txt (or 3-way train.txt and test.txt)"
    else:
        candidates = [s for s in (nine_a, plain) if "train" in s and "test" in s]
        wanted = "train_COVIDx9A.txt and test_COVIDx9A.txt, or train.txt and test.txt"
    if not candidates:
        raise PrepareError(f"{root}: COVIDx label files not found (protocol {protocol} needs {wanted})")
    return candidates[0]


class _Native:
    """The label files of one set, parsed and checked."""

    def __init__(self, root: Path, files: dict[str, Path], warnings: PrepareWarnings):
        self.files = files
        self.entries: dict[str, list[_Entry]] = {
            split: read_label_file(path, root, split) for split, path in files.items()
        }
        seen: dict[str, _Entry] = {}
        classes: dict[str, _Entry] = {}
        for split in ("train", "val", "test"):
            for e in self.entries.get(split, []):
                if e.filename in seen:
                    first = seen[e.filename]
                    raise PrepareError(
                        f"{e.file} line {e.line}: file name {e.filename!r} also listed in {first.file} line {first.line}"
                    )
                seen[e.filename] = e
                classes.setdefault(e.class_name, e)
        kinds = {("3-way" if c in THREE_WAY else "binary"): e for c, e in classes.items()}
        if len(kinds) > 1:
            a, b = kinds["3-way"], kinds["binary"]
            raise PrepareError(
                f"{b.file} line {b.line}: class {b.class_name!r} is binary but {a.file} line {a.line} has the "
                f"3-way class {a.class_name!r}"
            )
        self.class_names = THREE_WAY if "3-way" in kinds else BINARY
        sizes = tuple(len(self.entries[s]) for s in ("train", "val", "test") if s in self.entries)
        self.release = KNOWN_SIZES.get(sizes)
        if self.release is None:
            warnings.add(
                "unexpected_row_count",
                "label files whose sizes match no known COVIDx release",
                f"{', '.join(rel_name(root, p) for p in files.values())}: {sizes} rows",
            )


class COVIDxDataset:
    """COVIDx classification manifests (protocols ``mgca``, ``benchx``, ``suite``)."""

    name = "covidx"
    protocols = ("mgca", "benchx", "suite")
    label_names = THREE_WAY  # of 3-way releases; binary ones use BINARY (the sidecar says which)

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        files = _find_set(root, protocol)

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            native = _Native(root, files, warnings)
            if protocol == "mgca" and native.class_names != THREE_WAY:
                e = native.entries["train"][0]
                raise PrepareError(
                    f"{e.file}: protocol mgca needs the 3-way classes ({', '.join(THREE_WAY)}); this file is binary"
                )
            return self._plan(native, protocol, warnings)

        return run_prepare(
            dataset=self.name,
            protocol=protocol,
            root=root,
            out=out,
            input_files=list(files.values()),
            build=build,
            check_images=check_images,
            code_files=[__file__],
            force=force,
        )

    def _plan(self, native: _Native, protocol: str, warnings: PrepareWarnings) -> ManifestPlan:
        train_file = native.entries["train"]
        assigned: list[tuple[_Entry, str]] = []  # (entry, split) with train rows in frac order
        if protocol == "mgca":
            n = len(train_file)
            n_valid = n - math.floor(MGCA_TRAIN_SIZE * n)
            train_idx, valid_idx = sklearn_split_indices(n, n_valid, SPLIT_SEED)
            assigned += [(train_file[i], "train") for i in train_idx.tolist()]
            assigned += [(train_file[i], "valid") for i in valid_idx.tolist()]
            split_rule = (
                f"{train_file[0].file} split with sklearn train_test_split(train_size={MGCA_TRAIN_SIZE}, "
                f"random_state={SPLIT_SEED}); test = the test file"
            )
        elif protocol == "benchx":
            assigned += [(e, "train") for e in train_file] + [(e, "valid") for e in native.entries["val"]]
            split_rule = "official train / val / test files"
        else:
            assigned, split_rule = self._suite_split(native, warnings)
        assigned += [(e, "test") for e in native.entries["test"]]

        train = [e for e, s in assigned if s == "train"]
        class_index = {name: i for i, name in enumerate(native.class_names)}
        if protocol == "mgca":
            ranks = frac_ranks(len(train), FRACTION_SEED)
            frac_order = f"RandomState({FRACTION_SEED}).permutation over the train rows in split order"
        else:
            ranks = stratified_frac_ranks([class_index[e.class_name] for e in train], FRACTION_SEED)
            frac_order = "stratified by class"
        rank_of = {e.filename: int(r) for e, r in zip(train, ranks.tolist())}
        info = {
            "native_version": native.release or "unknown COVIDx release",
            "label_files": {split: Path(p).name for split, p in native.files.items()},
            "seeds": {"split": SPLIT_SEED, "fraction": FRACTION_SEED},
            "split_rule": split_rule,
            "frac_order": frac_order,
            "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
            "frac_base": len(train),
        }

        def rows() -> Iterator[dict]:
            for e, split in sorted(assigned, key=lambda a: a[0].filename):
                c = class_index[e.class_name]
                yield {
                    "dataset": self.name,
                    "sample_id": e.filename,
                    "subject_id": e.patient,
                    "image_path": f"{e.folder}/{e.filename}",
                    "image_format": IMAGE_FORMATS.get(Path(e.filename).suffix.lower()),
                    "view": "UNKNOWN",
                    "split": split,
                    "frac_rank": rank_of.get(e.filename) if split == "train" else None,
                    "labels": np.eye(len(native.class_names), dtype=np.float32)[c].tolist(),
                    "class_index": c,
                    "class_name": e.class_name,
                    "source_row": json_record({"file": e.file, "line": e.line, "text": e.text}),
                }

        return ManifestPlan(
            rows=rows(),
            label_names=native.class_names,
            class_names=native.class_names,
            info=info,
            disjoint_subjects=protocol == "suite",
        )

    @staticmethod
    def _suite_split(native: _Native, warnings: PrepareWarnings) -> tuple[list[tuple[_Entry, str]], str]:
        taken = {e.patient for e in native.entries["test"]}

        def keep(entries: list[_Entry]) -> list[_Entry]:
            out = []
            for e in entries:
                if e.patient in taken:
                    warnings.add(
                        "patient_in_two_splits",
                        "rows whose patient also appears in an earlier split (test, then valid) were left out",
                        f"{e.file} line {e.line}: patient {e.patient}",
                    )
                else:
                    out.append(e)
            return out

        if "val" in native.entries:
            valid = keep(native.entries["val"])
            taken |= {e.patient for e in valid}
            train = keep(native.entries["train"])
            rule = "official val and test files; patients of test removed from val and train, of val from train"
        else:
            candidates = keep(native.entries["train"])
            held = group_holdout(
                [e.patient for e in candidates], round(SUITE_VALID_SHARE * len(candidates)), SPLIT_SEED
            )
            valid = [e for e, h in zip(candidates, held.tolist()) if h]
            train = [e for e, h in zip(candidates, held.tolist()) if not h]
            rule = (
                f"test = the test file; valid = whole patients of the train file drawn with RandomState({SPLIT_SEED}) "
                f"over sorted patient ids until >= {SUITE_VALID_SHARE:.0%} of its rows; patients of test removed"
            )
        return [(e, "train") for e in train] + [(e, "valid") for e in valid], rule


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "covidx", COVIDxDataset)
