"""SIIM-ACR Pneumothorax Segmentation (datasets.md section 1.4).

Native root: the Kaggle folder with ``train-rle.csv`` (stage 1; header ``ImageId, EncodedPixels``
with a leading space, values possibly with leading spaces) or ``stage_2_train.csv`` (``.gz`` /
``.zip`` accepted), and the DICOM trees ``dicom-images-train/<study>/<series>/<ImageId>.dcm``
(and ``dicom-images-test/`` when the table covers the stage-1 test images). Header names and
values are stripped (warnings ``stripped_header`` / ``stripped_values``; ``source_row`` keeps the
untouched values). Images are 1024 x 1024; the RLE is decoded on that grid.

RLE convention: relative SIIM RLE (``place_bench.data.rle``), detected over the whole file: a file
every value of which decodes as relative is read as relative unless its multi-run values all
also read as absolute (strictly increasing starts), which is ambiguous and refused (pass
``SIIMDataset(rle_mode=...)``); a file that only decodes under one absolute convention is read
under it (warning ``rle_mode_absolute``). A value that does not decode is a :class:`PrepareError`
naming the line and ImageId.

Manifest rows (one per ``ImageId``, all its regions merged -- datasets.md section 5 items 2 to 4):

* ``sample_id`` = ``ImageId``; ``subject_id`` null (the table has no patient key; splits are by
  image); ``image_path`` = the DICOM found for it under the trees (null with warning
  ``image_paths_unresolved`` when no tree exists and ``check_images`` is off; an id missing from
  an existing tree is warning ``missing_image`` and its row is left out);
* ``labels = [pneumothorax]`` (1 when any region is not ``-1``);
* ``mask_rle``: canonical RLE of the union of the regions (1024 x 1024); ``mask_source = "rle"``;
* ``boxes``: bounding boxes of the 8-connected components of that mask, ``shape =
  "mask_bbox"``, ``label = "Pneumothorax"``, sorted by ``(x1, y1, x2, y2)``; a component covering
  columns ``c0..c1`` and rows ``r0..r1`` has box ``[c0, r0, c1 + 1, r1 + 1]``;
* ``view``, ``sex``, ``age`` from the DICOM header when ``check_images`` (else ``UNKNOWN`` / null).

Protocols:

* ``mgca`` -- MGCA's 70 / 15 / 15 (sklearn ``train_test_split(test_size=0.3, random_state=0)``,
  held-out part halved with ``test_size=0.5, random_state=0``), applied to distinct ImageIds in
  order of first appearance instead of CSV rows.
* ``mgca_compat`` -- bug-for-bug MGCA: the CSV *rows* (regions) are split, so an image can land in
  several splits with part of its mask. One manifest row per (ImageId, split), the mask being
  the union of that split's regions; ``sample_id`` = ``ImageId`` when the image is in one split,
  ``ImageId#<split>`` otherwise (warning ``compat_image_in_several_splits``).
* ``suite`` -- image-level 70 / 15 / 15 with ``RandomState(0)`` over sorted ImageIds (first 15 %
  test, next 15 % valid); ``frac_rank`` stratified by the label.

Every protocol tags train rows of MGCA's balanced segmentation set with ``subsets =
["seg_balanced"]``: all positive train images plus as many negative ones, drawn with
``RandomState(42)`` over the negative train images in split order. ``mgca`` / ``mgca_compat``
``frac_rank``: ``RandomState(42)`` over the train rows in split order.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from place_bench.data.prepare import (
    ManifestPlan,
    NativeTable,
    PrepareError,
    PrepareResult,
    PrepareWarnings,
    check_protocol,
    find_native_file,
    json_record,
    parse_age,
    read_dicom_tags,
    read_native_csv,
    rel_name,
    run_prepare,
)
from place_bench.data.rle import SIIM_MODES, RLEError, siim_rle_to_mask
from place_bench.data.splits import (
    assign_groups,
    frac_ranks,
    legacy_permutation,
    sklearn_split_indices,
    stratified_frac_ranks,
)
from place_bench.hookspecs import hookimpl

LABEL_NAMES: tuple[str, ...] = ("Pneumothorax",)
IMAGE_SIZE = (1024, 1024)  # (height, width) of every SIIM image; the RLE grid
TABLE_FILES = ("train-rle.csv", "stage_2_train.csv")
IMAGE_DIRS = ("dicom-images-train", "dicom-images-test")
#: Distinct images of the known releases (datasets.md section 1.4): stage-1 train and
#: stage-1 train + test (= the stage-2 training table, and BenchX's 12,047 PNG copy).
KNOWN_IMAGE_COUNTS = {10_675: "stage 1 train", 12_047: "stage 1 train + test (stage 2 train)"}
BALANCED = "seg_balanced"

SPLIT_SEED = 0
FRACTION_SEED = 42
BALANCE_SEED = 42
_HEADER_TAGS = ("ViewPosition", "PatientSex", "PatientAge")
_N_PIXELS = IMAGE_SIZE[0] * IMAGE_SIZE[1]


# --------------------------------------------------------------------------------------------
# RLE -> merged runs -> canonical counts and component boxes
# --------------------------------------------------------------------------------------------


def _runs(value: str, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Half-open pixel intervals ``[start, end)`` (column-major) of one validated SIIM value."""
    pairs = np.array(value.split(), dtype=np.int64).reshape(-1, 2)
    first, lengths = pairs[:, 0], pairs[:, 1]
    if mode == "relative":
        ends = np.cumsum(first + lengths)
        return ends - lengths, ends
    starts = first - (1 if mode == "absolute1" else 0)
    return starts, starts + lengths


def merge_runs(starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union of half-open intervals: sorted, disjoint, non-touching ``(starts, ends)``."""
    if starts.size == 0:
        return starts, ends
    order = np.argsort(starts, kind="stable")
    s, e = starts[order], ends[order]
    reach = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] > reach[:-1]  # an interval starting at or before the reach joins it
    heads = np.flatnonzero(new)
    return s[heads], np.maximum.reduceat(e, heads)


def runs_to_rle(starts: np.ndarray, ends: np.ndarray, shape: tuple[int, int]) -> str:
    """Canonical RLE (``place_bench.data.rle``) of a mask given by merged runs."""
    h, w = shape
    n = h * w
    counts = np.empty(2 * starts.size + 1, dtype=np.int64)
    prev_end = np.concatenate([[0], ends])
    counts[0::2] = np.concatenate([starts, [n]]) - prev_end
    counts[1::2] = ends - starts
    if counts[-1] == 0 and counts.size > 1:
        counts = counts[:-1]
    return " ".join(map(str, [h, w, *counts.tolist()]))


def runs_to_boxes(starts: np.ndarray, ends: np.ndarray, height: int) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(x1, y1, x2, y2)`` (pixel edges) of the 8-connected components of the
    mask given by merged column-major runs on a grid of ``height`` rows, sorted."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if starts.size == 0:
        return []
    # split runs at column boundaries: one piece per (column, run)
    c0, c1 = starts // height, (ends - 1) // height
    span = c1 - c0 + 1
    run = np.repeat(np.arange(starts.size), span)
    col = np.repeat(c0, span) + (np.arange(run.size) - np.repeat(np.cumsum(span) - span, span))
    r0 = np.where(col == c0[run], starts[run] - col * height, 0)
    r1 = np.where(col == c1[run], ends[run] - col * height, height)
    # pieces are ordered by (column, first row); within a column they are disjoint, so both
    # composite keys below increase monotonically and searchsorted finds, for each piece, the
    # pieces of the previous column whose rows overlap or touch it diagonally (8-connectivity)
    big = height + 2
    key_start, key_end = col * big + r0, col * big + r1
    lo = np.searchsorted(key_end, (col - 1) * big + r0, side="left")
    hi = np.searchsorted(key_start, (col - 1) * big + r1, side="right")
    count = np.maximum(hi - lo, 0)
    src = np.repeat(np.arange(col.size), count)
    dst = np.repeat(lo, count) + (np.arange(src.size) - np.repeat(np.cumsum(count) - count, count))
    graph = coo_matrix((np.ones(src.size, dtype=np.int8), (src, dst)), shape=(col.size, col.size))
    n_comp, comp = connected_components(graph, directed=False)
    x1 = np.full(n_comp, np.iinfo(np.int64).max)
    y1 = np.full(n_comp, np.iinfo(np.int64).max)
    x2 = np.zeros(n_comp, dtype=np.int64)
    y2 = np.zeros(n_comp, dtype=np.int64)
    np.minimum.at(x1, comp, col)
    np.minimum.at(y1, comp, r0)
    np.maximum.at(x2, comp, col + 1)
    np.maximum.at(y2, comp, r1)
    return sorted(zip(x1.tolist(), y1.tolist(), x2.tolist(), y2.tolist()))


_RLE_TEXT = re.compile(r"[0-9]+(?:\s+[0-9]+)*\Z")


def plausible_modes(value: str, n_pixels: int) -> frozenset[str]:
    """Fast equivalent of :func:`place_bench.data.rle.plausible_siim_modes` for a stripped value
    other than ``"-1"``: the conventions under which it decodes into ``n_pixels`` pixels."""
    if not _RLE_TEXT.match(value):
        return frozenset()
    nums = np.array(value.split(), dtype=np.int64)
    if nums.size % 2:
        return frozenset()
    first, lengths = nums[0::2], nums[1::2]
    if (lengths <= 0).any():
        return frozenset()
    modes = set()
    if int(np.sum(first + lengths)) <= n_pixels:
        modes.add("relative")
    if (first[1:] >= first[:-1] + lengths[:-1]).all():
        if first[-1] + lengths[-1] <= n_pixels:
            modes.add("absolute0")
        if first[0] >= 1 and first[-1] - 1 + lengths[-1] <= n_pixels:
            modes.add("absolute1")
    return frozenset(modes)


# --------------------------------------------------------------------------------------------
# Native table
# --------------------------------------------------------------------------------------------


class _Native:
    """The RLE table: values stripped, rows grouped by ImageId, RLE convention decided."""

    def __init__(self, table: NativeTable, warnings: PrepareWarnings, rle_mode: str | None):
        self.table = table
        j_id, j_rle = table.index("ImageId"), table.index("EncodedPixels")
        self.ids: list[str] = []  # per CSV row
        self.values: list[str] = []
        self.rows_of: dict[str, list[int]] = {}
        stripped = 0
        for i, row in enumerate(table.rows):
            image_id, value = row[j_id].strip(), row[j_rle].strip()
            stripped += (image_id != row[j_id]) + (value != row[j_rle])
            if not image_id:
                raise PrepareError(f"{table.where(i, 'ImageId')}: empty ImageId")
            if not value:
                raise PrepareError(f"{table.where(i, 'EncodedPixels')}: empty value (an empty mask is written -1)")
            self.ids.append(image_id)
            self.values.append(value)
            self.rows_of.setdefault(image_id, []).append(i)
        if stripped:
            warnings.add("stripped_values", f"{table.name}: stripped whitespace around values", count=stripped)
        self.first_seen = list(self.rows_of)  # ImageIds in order of first appearance
        self.mode = self._decide_mode(warnings, rle_mode)
        n_images = len(self.rows_of)
        self.release = KNOWN_IMAGE_COUNTS.get(n_images)
        if self.release is None:
            warnings.add(
                "unexpected_row_count",
                "native table size differs from the known SIIM releases",
                f"{table.name}: {n_images} images; known: {', '.join(f'{k} ({v})' for k, v in KNOWN_IMAGE_COUNTS.items())}",
            )

    def where(self, i: int) -> str:
        return f"{self.table.where(i, 'EncodedPixels')} (ImageId {self.ids[i]})"

    def _fail(self, i: int, mode: str):
        try:
            siim_rle_to_mask(self.values[i], IMAGE_SIZE, where=self.where(i), mode=mode)
        except RLEError as exc:
            return PrepareError(str(exc))
        return PrepareError(f"{self.where(i)}: does not decode as {mode} RLE")  # pragma: no cover

    def _decide_mode(self, warnings: PrepareWarnings, rle_mode: str | None) -> str:
        positive = [i for i, v in enumerate(self.values) if v != "-1"]
        if rle_mode is not None:
            if rle_mode not in SIIM_MODES:
                raise PrepareError(f"unknown rle_mode {rle_mode!r}; expected one of {SIIM_MODES}")
            for i in positive:
                if rle_mode not in plausible_modes(self.values[i], _N_PIXELS):
                    raise self._fail(i, rle_mode)
            return rle_mode
        common = set(SIIM_MODES)
        for i in positive:
            modes = set(plausible_modes(self.values[i], _N_PIXELS))
            if not modes & common:
                # nothing fits every row: report this row under the convention that fitted so far
                raise self._fail(i, "relative" if "relative" in common else sorted(common)[0])
            common &= modes
        if "relative" in common:
            if len(common) > 1 and any(len(self.values[i].split()) > 2 for i in positive):
                raise PrepareError(
                    f"{self.table.name}: cannot tell relative from absolute RLE (every value decodes as "
                    f"{', '.join(sorted(common))}); pass rle_mode"
                )
            return "relative"  # single-run files: relative and absolute0 decode alike
        if len(common) == 1:
            mode = common.pop()
            warnings.add("rle_mode_absolute", f"{self.table.name}: RLE read as {mode} (not relative)")
            return mode
        raise PrepareError(f"{self.table.name}: RLE could be {' or '.join(sorted(common))}; pass rle_mode")

    def target(self, rows: Sequence[int], warnings: PrepareWarnings) -> dict:
        """Label, canonical RLE and boxes of the union of ``rows`` (CSV row indices of one image)."""
        values = [self.values[i] for i in rows]
        regions = [i for i, v in zip(rows, values) if v != "-1"]
        if regions and len(regions) != len(rows):
            warnings.add("mixed_negative_rows", "images with both -1 and mask rows (union of the masks kept)",
                         self.ids[rows[0]])
        if not regions:
            return {"labels": [0.0], "mask_rle": runs_to_rle(np.zeros(0, np.int64), np.zeros(0, np.int64), IMAGE_SIZE),
                    "boxes": []}
        parts = [_runs(self.values[i], self.mode) for i in regions]
        starts, ends = merge_runs(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
        boxes = [
            {"x1": float(x1), "y1": float(y1), "x2": float(x2), "y2": float(y2), "label": "Pneumothorax",
             "shape": "mask_bbox"}
            for x1, y1, x2, y2 in runs_to_boxes(starts, ends, IMAGE_SIZE[0])
        ]
        return {"labels": [1.0], "mask_rle": runs_to_rle(starts, ends, IMAGE_SIZE), "boxes": boxes}


def _image_index(root: Path) -> dict[str, str] | None:
    """``ImageId -> relative path`` of every ``*.dcm`` under the image trees; ``None`` if no tree."""
    found: dict[str, str] = {}
    any_tree = False
    for name in IMAGE_DIRS:
        top = root / name
        if not top.is_dir():
            continue
        any_tree = True
        for folder, dirs, files in os.walk(top):
            dirs.sort()
            for f in sorted(files):
                if not f.lower().endswith(".dcm"):
                    continue
                rel = rel_name(root, Path(folder) / f)
                stem = f[:-4]
                if stem in found:
                    raise PrepareError(f"{root}: two DICOM files for ImageId {stem}: {found[stem]} and {rel}")
                found[stem] = rel
    return found if any_tree else None


class SIIMDataset:
    """SIIM-ACR pneumothorax manifests (protocols ``mgca``, ``mgca_compat``, ``suite``)."""

    name = "siim"
    protocols = ("mgca", "mgca_compat", "suite")
    label_names = LABEL_NAMES

    def __init__(self, rle_mode: str | None = None):
        if rle_mode is not None and rle_mode not in SIIM_MODES:
            raise ValueError(f"rle_mode must be one of {SIIM_MODES} or None, got {rle_mode!r}")
        self.rle_mode = rle_mode

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        table_file = find_native_file(root, list(TABLE_FILES))

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            table = read_native_csv(table_file, root, ["ImageId", "EncodedPixels"], warnings=warnings)
            native = _Native(table, warnings, self.rle_mode)
            images = _image_index(root)
            if images is None and check_images:
                raise PrepareError(
                    f"{root}: no image folder ({' or '.join(IMAGE_DIRS)}); pass check_images=False "
                    "to prepare labels only"
                )
            return self._plan(root, native, images, protocol, check_images, warnings)

        return run_prepare(
            dataset=self.name,
            protocol=protocol,
            root=root,
            out=out,
            input_files=[table_file],
            build=build,
            check_images=check_images,
            code_files=[__file__],
            options={"rle_mode": self.rle_mode},
            force=force,
        )

    def _plan(self, root: Path, native: _Native, images: dict[str, str] | None, protocol: str,
              check_images: bool, warnings: PrepareWarnings) -> ManifestPlan:
        # groups: (sample_id, ImageId, CSV rows, split), listed in split order
        groups: list[tuple[str, str, list[int], str]] = []
        if protocol == "mgca_compat":
            n_rows = len(native.values)
            train, rest = sklearn_split_indices(n_rows, 0.3, SPLIT_SEED)
            test_part, valid_part = sklearn_split_indices(rest.size, 0.5, SPLIT_SEED)
            split_of_row = np.empty(n_rows, dtype=object)
            split_of_row[train], split_of_row[rest[valid_part]], split_of_row[rest[test_part]] = "train", "valid", "test"
            order = np.concatenate([train, rest[valid_part], rest[test_part]])
            by_key: dict[tuple[str, str], list[int]] = {}
            for i in order.tolist():
                by_key.setdefault((native.ids[i], split_of_row[i]), []).append(i)
            splits_of_image: dict[str, int] = {}
            for image_id, _ in by_key:
                splits_of_image[image_id] = splits_of_image.get(image_id, 0) + 1
            for (image_id, split), rows in by_key.items():
                sid = image_id if splits_of_image[image_id] == 1 else f"{image_id}#{split}"
                groups.append((sid, image_id, sorted(rows), split))
            several = sum(1 for v in splits_of_image.values() if v > 1)
            if several:
                warnings.add(
                    "compat_image_in_several_splits",
                    "MGCA-compatible row-level split: images in several splits, each with part of its mask "
                    "(sample_id ImageId#split)",
                    count=several,
                )
            split_rule = (
                f"MGCA defect reproduced: CSV rows split with sklearn train_test_split(test_size=0.3, "
                f"random_state={SPLIT_SEED}), held-out rows halved (test_size=0.5; 'train' half = test)"
            )
        elif protocol == "mgca":
            ids = native.first_seen
            train, rest = sklearn_split_indices(len(ids), 0.3, SPLIT_SEED)
            test_part, valid_part = sklearn_split_indices(rest.size, 0.5, SPLIT_SEED)
            for idx, split in ((train, "train"), (rest[valid_part], "valid"), (rest[test_part], "test")):
                for k in idx.tolist():
                    groups.append((ids[k], ids[k], native.rows_of[ids[k]], split))
            split_rule = (
                f"distinct ImageIds in first-appearance order split with sklearn train_test_split(test_size=0.3, "
                f"random_state={SPLIT_SEED}), held-out part halved (test_size=0.5; 'train' half = test)"
            )
        else:
            ids = sorted(native.rows_of)
            assigned = assign_groups(ids, [("test", 0.15), ("valid", 0.15)], SPLIT_SEED)
            for split in ("train", "valid", "test"):
                for image_id, s in zip(ids, assigned):
                    if s == split:
                        groups.append((image_id, image_id, native.rows_of[image_id], split))
            split_rule = f"RandomState({SPLIT_SEED}) permutation of sorted ImageIds: 15 % test, 15 % valid, rest train"

        targets = [native.target(rows, warnings) for _, _, rows, _ in groups]
        train_k = [k for k, g in enumerate(groups) if g[3] == "train"]
        if protocol == "suite":
            ranks = stratified_frac_ranks([int(targets[k]["labels"][0]) for k in train_k], FRACTION_SEED)
            frac_order = "stratified by the pneumothorax label"
        else:
            ranks = frac_ranks(len(train_k), FRACTION_SEED)
            frac_order = f"RandomState({FRACTION_SEED}).permutation over the train rows in split order"
        rank_of = dict(zip(train_k, ranks.tolist()))
        positives = [k for k in train_k if targets[k]["labels"][0] == 1.0]
        negatives = [k for k in train_k if targets[k]["labels"][0] == 0.0]
        take = min(len(positives), len(negatives))
        chosen = [negatives[j] for j in legacy_permutation(len(negatives), BALANCE_SEED)[:take].tolist()]
        balanced = set(positives) | set(chosen)

        info = {
            "native_version": f"SIIM-ACR {native.release or 'unknown release'} ({native.table.name})",
            "rle_mode": native.mode,
            "seeds": {"split": SPLIT_SEED, "fraction": FRACTION_SEED, "seg_balanced": BALANCE_SEED},
            "split_rule": split_rule,
            "frac_order": frac_order,
            "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
            "frac_base": len(train_k),
            "subsets_rule": f"{BALANCED}: all positive train images + as many negatives (RandomState({BALANCE_SEED}))",
            "image_size": list(IMAGE_SIZE),
        }

        def rows() -> Iterator[dict]:
            for k in sorted(range(len(groups)), key=lambda k: groups[k][0]):
                sid, image_id, csv_rows, split = groups[k]
                image_path = None
                if images is None:
                    warnings.add("image_paths_unresolved", "no image folder: image_path left null", image_id)
                else:
                    image_path = images.get(image_id)
                    if image_path is None:
                        warnings.add(
                            "missing_image",
                            "images named by the native tables are not on disk; their rows were left out",
                            image_id,
                        )
                        continue
                facts = read_dicom_tags(root / image_path, _HEADER_TAGS) if (check_images and image_path) else {}
                view = (facts.get("ViewPosition") or "").upper()
                yield {
                    "dataset": self.name,
                    "sample_id": sid,
                    "image_path": image_path,
                    "image_format": "dcm",
                    "view": view if view in ("AP", "PA") else "UNKNOWN",
                    "split": split,
                    "frac_rank": rank_of.get(k),
                    "subsets": [BALANCED] if k in balanced else [],
                    "mask_source": "rle",
                    "sex": facts.get("PatientSex") or None,
                    "age": parse_age(facts.get("PatientAge")),
                    "source_row": json_record([native.table.record(i) for i in csv_rows]),
                    **targets[k],
                }

        return ManifestPlan(rows=rows(), label_names=LABEL_NAMES, info=info)


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "siim", SIIMDataset)
