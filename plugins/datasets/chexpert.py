"""CheXpert v1.0 (small or full) and the CheXpert 5x200 zero-shot set (datasets.md section 1.2).

Native root: the folder holding ``train.csv`` and ``valid.csv`` (``.gz`` / ``.zip`` accepted) and
the ``train/`` and ``valid/`` image folders, e.g. ``CheXpert-v1.0-small/``. Columns: ``Path, Sex,
Age, Frontal/Lateral, AP/PA`` and the 14 observations of :data:`CHEXPERT_LABELS`, values
``1.0 / 0.0 / -1.0 / blank``.

Manifest rows (one per image):

* ``sample_id`` = ``image_path`` = the ``Path`` column without its first component
  (``CheXpert-v1.0-small/train/patient00001/study1/view1_frontal.jpg`` ->
  ``train/patient00001/study1/view1_frontal.jpg``), relative to the native root;
* ``subject_id`` = ``patient00001``, ``study_id`` = ``patient00001/study1``;
* ``view`` = ``AP`` / ``PA`` for frontal rows (``FRONTAL`` when ``AP/PA`` says something else,
  counted as warning ``view_ambiguous``), ``LATERAL`` for lateral rows;
* ``labels`` = the 14 raw values in :data:`CHEXPERT_LABELS` order (blank -> NaN);
* ``sex``, ``age``; ``source_row`` = the native CSV record.

Protocols of ``chexpert`` (all frontal only; test = the frontal rows of ``valid.csv``; the
5x200 images are removed from ``train.csv`` first):

* ``mgca`` -- MGCA's membership with its train/validation overlap removed: ``n_valid`` (5,000)
  rows drawn from the remaining ``train.csv`` rows with ``RandomState(0)`` (MGCA's
  ``np.random.choice``), by position; train = the other rows; frontal filter after. Fractions:
  ``frac_rank`` from ``RandomState(42)`` over the train rows in CSV order (MGCA's pandas
  ``sample(frac, random_state=42)``).
* ``mgca_compat`` -- bug-for-bug MGCA (datasets.md section 5, item 1): the drawn positions are
  removed from training by *index label* (the CSV row number), so most validation rows stay in
  train. Such rows have ``split = "train"`` and ``subsets = ["valid"]`` (warning
  ``compat_split_overlap``); membership of the validation set is ``split == "valid" or "valid" in
  subsets``.
* ``suite`` -- patient-disjoint validation: whole patients drawn (``RandomState(0)`` over sorted
  patient ids) until ``n_valid`` frontal images; ``frac_rank`` stratified by the five competition
  labels (positive or not), seed 42.

``chexpert_5x200`` (protocols ``mgca`` and ``suite``, identical membership): MGCA's rule -- frontal
rows of ``train.csv`` with blanks read as 0; for each competition label exactly that label 1, the
other four 0 and Enlarged Cardiomediastinum, Lung Lesion, Lung Opacity, Pneumonia, Pneumothorax,
Pleural Other, Fracture, Support Devices 0 (No Finding free); ``n_per_class`` (200) rows drawn per
class with ``RandomState(0)`` (pandas ``sample(n=200, random_state=0)``). All rows ``split =
"test"``, ``class_index`` / ``class_name`` the class, ``labels`` the raw five competition values.
"""

from __future__ import annotations

import heapq
from collections import Counter
from pathlib import Path
from typing import Iterator

import numpy as np

from place_bench.data.prepare import (
    ManifestPlan,
    NativeTable,
    PrepareError,
    PrepareResult,
    PrepareWarnings,
    check_protocol,
    find_native_file,
    read_native_csv,
    run_prepare,
)
from place_bench.data.splits import frac_ranks, group_holdout, legacy_permutation, stratified_frac_ranks
from place_bench.hookspecs import hookimpl

CHEXPERT_LABELS: tuple[str, ...] = (
    "No Finding",
    "Enlarged Cardiomediastinum",
    "Cardiomegaly",
    "Lung Opacity",
    "Lung Lesion",
    "Edema",
    "Consolidation",
    "Pneumonia",
    "Atelectasis",
    "Pneumothorax",
    "Pleural Effusion",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
COMPETITION_LABELS: tuple[str, ...] = ("Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion")
#: Observations that must be 0 (after blank -> 0) in a 5x200 image, besides the four other classes.
FIVE_X_200_ZERO: tuple[str, ...] = (
    "Enlarged Cardiomediastinum",
    "Lung Lesion",
    "Lung Opacity",
    "Pneumonia",
    "Pneumothorax",
    "Pleural Other",
    "Fracture",
    "Support Devices",
)
META_COLUMNS: tuple[str, ...] = ("Path", "Sex", "Age", "Frontal/Lateral", "AP/PA")
#: Published size of the CheXpert v1.0 ``train.csv`` / ``valid.csv`` (datasets.md section 1.2).
EXPECTED_ROWS = {"train.csv": 223_414, "valid.csv": 234}

SPLIT_SEED = 0
FRACTION_SEED = 42
FIVE_X_200_SEED = 0

_LABEL_VALUES = (1.0, 0.0, -1.0)


class _Native:
    """Parsed ``train.csv`` or ``valid.csv``: ids, views, raw labels (float32, NaN = blank)."""

    def __init__(self, table: NativeTable, warnings: PrepareWarnings):
        self.table = table
        n = len(table)
        self.sample_id: list[str] = []
        self.subject: list[str] = []
        self.study: list[str] = []
        self.view: list[str] = []
        self.frontal = np.zeros(n, dtype=bool)
        self.labels = np.full((n, len(CHEXPERT_LABELS)), np.nan, dtype=np.float32)
        self.prefix = Counter()
        j_path, j_fl, j_appa = (table.index(c) for c in ("Path", "Frontal/Lateral", "AP/PA"))
        for k, name in enumerate(CHEXPERT_LABELS):
            self.labels[:, k] = table.float_column(name, _LABEL_VALUES)
        seen: dict[str, int] = {}
        for i, values in enumerate(table.rows):
            raw = values[j_path].strip()
            parts = [p for p in raw.split("/") if p]
            if parts and parts[0] not in ("train", "valid", "test"):
                self.prefix[parts[0]] += 1
                parts = parts[1:]
            if len(parts) < 4:
                raise PrepareError(
                    f"{table.where(i, 'Path')}: {raw!r} is not '<root>/<train|valid>/patientN/studyN/<view>.jpg'"
                )
            rel = "/".join(parts)
            if rel in seen:
                raise PrepareError(f"{table.where(i, 'Path')}: {raw!r} repeats line {table.lines[seen[rel]]}")
            seen[rel] = i
            self.sample_id.append(rel)
            self.subject.append(parts[-3])
            self.study.append(f"{parts[-3]}/{parts[-2]}")
            fl, appa = values[j_fl].strip(), values[j_appa].strip()
            if fl == "Frontal":
                self.frontal[i] = True
                if appa in ("AP", "PA"):
                    self.view.append(appa)
                else:
                    self.view.append("FRONTAL")
                    warnings.add(
                        "view_ambiguous",
                        f"{table.name}: frontal rows whose AP/PA value is not AP or PA (view stored as FRONTAL)",
                        f"line {table.lines[i]}: AP/PA={appa!r}",
                    )
            elif fl == "Lateral":
                self.view.append("LATERAL")
            else:
                raise PrepareError(f"{table.where(i, 'Frontal/Lateral')}: {fl!r} is neither 'Frontal' nor 'Lateral'")
        self._j_sex, self._j_age = table.index("Sex"), table.index("Age")

    def __len__(self) -> int:
        return len(self.sample_id)

    @property
    def native_version(self) -> str | None:
        return self.prefix.most_common(1)[0][0] if self.prefix else None

    def row(self, i: int, dataset: str, split: str, frac_rank=None, subsets=(), labels=None, **extra) -> dict:
        values = self.table.rows[i]
        sex = values[self._j_sex].strip() or None
        age_text = values[self._j_age].strip()
        try:
            age = int(float(age_text)) if age_text else None
        except ValueError:
            raise PrepareError(f"{self.table.where(i, 'Age')}: {age_text!r} is not a number") from None
        rel = self.sample_id[i]
        lab = self.labels[i] if labels is None else labels
        return {
            "dataset": dataset,
            "sample_id": rel,
            "subject_id": self.subject[i],
            "study_id": self.study[i],
            "image_path": rel,
            "image_format": "png" if rel.lower().endswith(".png") else "jpg",
            "view": self.view[i],
            "split": split,
            "frac_rank": None if frac_rank is None else int(frac_rank),
            "subsets": list(subsets),
            "labels": np.asarray(lab, dtype=np.float32).tolist(),
            "sex": sex,
            "age": age,
            "source_row": self.table.record_json(i),
            **extra,
        }


def _read(root: Path, name: str, warnings: PrepareWarnings) -> _Native:
    path = find_native_file(root, [name])
    table = read_native_csv(path, root, META_COLUMNS + CHEXPERT_LABELS, warnings=warnings)
    expected = EXPECTED_ROWS.get(name)
    if expected is not None and len(table) != expected:
        warnings.add(
            "unexpected_row_count",
            "native tables whose row count differs from CheXpert v1.0's published size",
            f"{table.name}: {len(table)} rows, published {expected}",
        )
    return _Native(table, warnings)


def select_5x200(native: _Native, n_per_class: int = 200, seed: int = FIVE_X_200_SEED) -> list[np.ndarray]:
    """Row indices of the 5xN set, one array per :data:`COMPETITION_LABELS` class (see module doc)."""
    filled = np.nan_to_num(native.labels, nan=0.0)
    col = {name: k for k, name in enumerate(CHEXPERT_LABELS)}
    comp = filled[:, [col[c] for c in COMPETITION_LABELS]]
    zero_ok = (filled[:, [col[c] for c in FIVE_X_200_ZERO]] == 0).all(axis=1)
    picked = []
    for c, name in enumerate(COMPETITION_LABELS):
        onehot = np.zeros(len(COMPETITION_LABELS), dtype=np.float32)
        onehot[c] = 1.0
        candidates = np.flatnonzero(native.frontal & zero_ok & (comp == onehot).all(axis=1))
        if candidates.size < n_per_class:
            raise PrepareError(
                f"{native.table.name}: only {candidates.size} frontal images qualify for the 5x{n_per_class} "
                f"class {name!r}; {n_per_class} are needed"
            )
        picked.append(candidates[legacy_permutation(candidates.size, seed)[:n_per_class]])
    return picked


def _sorted_rows(native: _Native, entries: list[tuple[int, dict]]) -> Iterator[dict]:
    """Rows for ``(table index, fields)`` entries, in ``sample_id`` order."""
    entries.sort(key=lambda e: native.sample_id[e[0]])
    for i, fields in entries:
        yield native.row(i, **fields)


class CheXpertDataset:
    """CheXpert v1.0 classification manifests (protocols ``mgca``, ``mgca_compat``, ``suite``)."""

    name = "chexpert"
    protocols = ("mgca", "mgca_compat", "suite")
    label_names = CHEXPERT_LABELS

    def __init__(self, n_valid: int = 5000, n_per_class: int = 200):
        self.n_valid = int(n_valid)
        self.n_per_class = int(n_per_class)

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        inputs = [find_native_file(root, ["train.csv"]), find_native_file(root, ["valid.csv"])]

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            train = _read(root, "train.csv", warnings)
            valid = _read(root, "valid.csv", warnings)
            return self._plan(train, valid, protocol, warnings)

        return run_prepare(
            dataset=self.name,
            protocol=protocol,
            root=root,
            out=out,
            input_files=inputs,
            build=build,
            check_images=check_images,
            code_files=[__file__],
            options={"n_valid": self.n_valid, "n_per_class": self.n_per_class},
            force=force,
        )

    def _plan(self, train: _Native, valid: _Native, protocol: str, warnings: PrepareWarnings) -> ManifestPlan:
        overlap = set(train.sample_id) & set(valid.sample_id)
        if overlap:
            raise PrepareError(f"{valid.table.name}: image {sorted(overlap)[0]!r} is also in {train.table.name}")
        five = np.concatenate(select_5x200(train, self.n_per_class))
        remaining = np.setdiff1d(np.arange(len(train)), five)  # CSV order
        info = {
            "native_version": train.native_version,
            "seeds": {"5x200": FIVE_X_200_SEED, "split": SPLIT_SEED, "fraction": FRACTION_SEED},
            "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
            "excluded": {"chexpert_5x200": int(five.size), "lateral": int((~train.frontal).sum() + (~valid.frontal).sum())},
            "native_counts": {
                name: {"rows": len(t), "frontal": int(t.frontal.sum()), "subjects": len(set(t.subject))}
                for name, t in (("train.csv", train), ("valid.csv", valid))
            },
        }
        entries: list[tuple[int, dict]] = []
        if protocol in ("mgca", "mgca_compat"):
            if self.n_valid >= remaining.size:
                raise PrepareError(f"{train.table.name}: {remaining.size} rows left, cannot draw {self.n_valid} for validation")
            drawn = legacy_permutation(remaining.size, SPLIT_SEED)[: self.n_valid]
            valid_rows = remaining[drawn]
            if protocol == "mgca":
                in_train = np.setdiff1d(remaining, valid_rows)
            else:
                # MGCA drops the drawn *positions* as index *labels* (CSV row numbers)
                in_train = np.setdiff1d(remaining, drawn)
            train_rows = in_train[train.frontal[in_train]]  # CSV order
            valid_rows = np.sort(valid_rows[train.frontal[valid_rows]])
            ranks = frac_ranks(train_rows.size, FRACTION_SEED)
            both = set(train_rows.tolist()) & set(valid_rows.tolist())
            for i, r in zip(train_rows.tolist(), ranks.tolist()):
                subsets = ["valid"] if i in both else []
                entries.append((i, {"dataset": self.name, "split": "train", "frac_rank": r, "subsets": subsets}))
            for i in valid_rows.tolist():
                if i not in both:
                    entries.append((i, {"dataset": self.name, "split": "valid"}))
            if both:
                warnings.add(
                    "compat_split_overlap",
                    "MGCA-compatible split: validation images that MGCA also trains on (split='train', "
                    "subsets=['valid'])",
                    count=len(both),
                )
            info["split_rule"] = (
                f"5x200 removed; {self.n_valid} train.csv rows drawn by position with RandomState({SPLIT_SEED}) "
                + ("and removed from train by position" if protocol == "mgca" else "but removed from train by CSV row number (MGCA defect)")
                + "; frontal only; test = valid.csv frontal"
            )
            info["frac_order"] = f"RandomState({FRACTION_SEED}).permutation over train rows in train.csv order"
        else:
            candidates = remaining[train.frontal[remaining]]
            held = group_holdout([train.subject[i] for i in candidates.tolist()], self.n_valid, SPLIT_SEED)
            train_rows = candidates[~held]
            valid_rows = candidates[held]
            if train_rows.size == 0:
                raise PrepareError(
                    f"{train.table.name}: {candidates.size} frontal images left after the 5x200 removal; holding out "
                    f"n_valid={self.n_valid} for validation leaves none to train on (lower n_valid)")
            col = [CHEXPERT_LABELS.index(c) for c in COMPETITION_LABELS]
            strata = [tuple(int(v == 1.0) for v in train.labels[i, col]) for i in train_rows.tolist()]
            ranks = stratified_frac_ranks(strata, FRACTION_SEED)
            for i, r in zip(train_rows.tolist(), ranks.tolist()):
                entries.append((i, {"dataset": self.name, "split": "train", "frac_rank": r}))
            for i in valid_rows.tolist():
                entries.append((i, {"dataset": self.name, "split": "valid"}))
            info["split_rule"] = (
                f"5x200 removed; frontal only; valid = whole patients drawn with RandomState({SPLIT_SEED}) over "
                f"sorted patient ids until >= {self.n_valid} images; test = valid.csv frontal"
            )
            info["frac_order"] = "stratified by the positive pattern of " + ", ".join(COMPETITION_LABELS)
        info["frac_base"] = int(train_rows.size)
        test_rows = np.flatnonzero(valid.frontal)

        test_entries = [(i, {"dataset": self.name, "split": "test"}) for i in test_rows.tolist()]
        rows = heapq.merge(
            _sorted_rows(train, entries), _sorted_rows(valid, test_entries), key=lambda r: r["sample_id"]
        )
        return ManifestPlan(
            rows=rows,
            label_names=CHEXPERT_LABELS,
            info=info,
            disjoint_subjects=protocol == "suite",
        )


class CheXpert5x200Dataset:
    """The CheXpert 5x200 zero-shot classification set (protocols ``mgca``, ``suite``: same rows)."""

    name = "chexpert_5x200"
    protocols = ("mgca", "suite")
    label_names = COMPETITION_LABELS

    def __init__(self, n_per_class: int = 200):
        self.n_per_class = int(n_per_class)

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        inputs = [find_native_file(root, ["train.csv"])]

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            train = _read(root, "train.csv", warnings)
            col = [CHEXPERT_LABELS.index(c) for c in COMPETITION_LABELS]
            entries = []
            for c, rows in enumerate(select_5x200(train, self.n_per_class)):
                for i in rows.tolist():
                    fields = {
                        "dataset": self.name,
                        "split": "test",
                        "labels": train.labels[i, col],
                        "class_index": c,
                        "class_name": COMPETITION_LABELS[c],
                    }
                    entries.append((i, fields))
            info = {
                "native_version": train.native_version,
                "seeds": {"5x200": FIVE_X_200_SEED},
                "split_rule": (
                    f"MGCA 5x{self.n_per_class}: frontal train.csv rows, blanks read as 0, exactly one competition "
                    f"label positive and {', '.join(FIVE_X_200_ZERO)} all 0; {self.n_per_class} per class drawn "
                    f"with RandomState({FIVE_X_200_SEED}) in train.csv order"
                ),
            }
            return ManifestPlan(
                rows=_sorted_rows(train, entries),
                label_names=COMPETITION_LABELS,
                class_names=COMPETITION_LABELS,
                info=info,
            )

        return run_prepare(
            dataset=self.name,
            protocol=protocol,
            root=root,
            out=out,
            input_files=inputs,
            build=build,
            check_images=check_images,
            code_files=[__file__],
            options={"n_per_class": self.n_per_class},
            force=force,
        )


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "chexpert", CheXpertDataset)
    registrar.add("dataset", "chexpert_5x200", CheXpert5x200Dataset)
