"""Object-CXR foreign-object detection, MIDL 2020 (datasets.md section 1.6).

Native root: the folder with ``train.csv`` and ``dev.csv`` (``image_name, annotation``; the
column may also be called ``image_path``), optionally ``test.csv`` (``image_path,
annotation``, later mirrors), and the unpacked image folders ``train/``, ``dev/``, ``test/``
(``.gz`` / ``.zip`` copies of the CSVs are accepted; zipped image folders are not read).

Annotation strings (:func:`parse_annotation`): empty for an image without objects, else objects
separated by ``;``, each ``T c1 c2 ...`` (space-separated numbers, native pixels):

* ``T = 0`` rectangle ``x1 y1 x2 y2`` -> box ``shape = "rect"``;
* ``T = 1`` ellipse given by its bounding box ``x1 y1 x2 y2`` -> box ``shape = "ellipse"``;
* ``T = 2`` polygon ``x1 y1 ... xn yn`` (n >= 3) -> box ``shape = "polygon_bbox"`` (the tight
  bounding box) and a ``polygons`` entry with the flat points.

Boxes are ``xyxy`` in native pixels, origin at the top-left corner of the top-left pixel, x to the
right, y down, in the order of the string; the k-th ``polygon_bbox`` box belongs to the k-th
polygon. Corners given the wrong way round are reordered (warning ``box_corners_swapped``);
empty objects (``;;``, a trailing ``;``) are skipped (warning ``empty_object``). Anything else
that does not parse -- an unknown type, a token that is not a number, a wrong number of
coordinates -- is a :class:`PrepareError` naming the file, line, object and token.

Manifest rows (one per image): ``sample_id`` = the image file name (``00001.jpg``);
``image_path`` = ``<folder>/<name>`` (``train`` / ``dev`` / ``test``, or the CSV value when it
already holds a folder); ``subject_id`` null (no patient key); ``view = "FRONTAL"``; ``labels =
[has_object]`` (label name ``Foreign Object``); ``mask_source = "shapes"`` (ellipses rasterized
as ellipses, polygons as polygons, at load time); ``source_row`` = the CSV record.

Protocols:

* ``mgca`` -- MGCA (``preprocess/object_cxr.py``): ``train.csv`` split with sklearn
  ``train_test_split(test_size=0.1, random_state=0)`` -> 7,200 / 800; test = ``dev.csv``
  (1,000). ``frac_rank``: ``RandomState(42)`` over the train rows in split order (MGCA's
  detection fractions come from numpy's global generator, not reproduced). MGCA's inflated
  polygon boxes (section 5 item 11) are not stored; they derive from ``polygons``.
* ``benchx`` -- train = ``train.csv``, valid = ``dev.csv``, test = ``test.csv`` (required);
  ``frac_rank`` stratified by ``has_object``.
* ``suite`` -- valid = 10 % of ``train.csv`` (``RandomState(0)`` over sorted names), test =
  ``dev.csv`` as in MGCA; ``frac_rank`` stratified by ``has_object``, seed 42.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator

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
from place_bench.data.splits import assign_groups, frac_ranks, sklearn_split_indices, stratified_frac_ranks
from place_bench.hookspecs import hookimpl

LABEL_NAMES: tuple[str, ...] = ("Foreign Object",)
BOX_LABEL = "Foreign Object"
SHAPES = {"0": "rect", "1": "ellipse", "2": "polygon_bbox"}
TABLES = {"train": "train.csv", "dev": "dev.csv", "test": "test.csv"}
NAME_COLUMNS = ("image_name", "image_path")
#: Published sizes (datasets.md section 1.6).
EXPECTED_ROWS = {"train": 8000, "dev": 1000, "test": 1000}

SPLIT_SEED = 0
FRACTION_SEED = 42
MGCA_VALID = 0.1


def _number(token: str, where: str, k: int) -> float:
    try:
        value = int(token)
    except ValueError:
        try:
            value = float(token)
        except ValueError:
            value = math.nan
    if not math.isfinite(value):
        raise PrepareError(f"{where}: object {k}: {token!r} is not a number")
    return float(value)


def parse_annotation(text: str, where: str, warnings: PrepareWarnings | None = None) -> tuple[list[dict], list[dict]]:
    """``(boxes, polygons)`` of one Object-CXR annotation string (see the module docstring).

    ``where`` names the place in messages (``"train.csv line 5 column 'annotation'"``); objects
    are numbered from 1.
    """
    boxes: list[dict] = []
    polygons: list[dict] = []
    if not text or not text.strip():
        return boxes, polygons
    for k, obj in enumerate(text.split(";"), 1):
        tokens = obj.split()
        if not tokens:
            if warnings is not None:
                warnings.add("empty_object", "empty objects in annotation strings (';;' or a trailing ';'; skipped)",
                             where)
            continue
        kind = tokens[0]
        if kind not in SHAPES:
            raise PrepareError(f"{where}: object {k}: unknown shape type {kind!r} (expected 0, 1 or 2)")
        coords = [_number(t, where, k) for t in tokens[1:]]
        xs, ys = coords[0::2], coords[1::2]
        if kind in ("0", "1"):
            if len(coords) != 4:
                raise PrepareError(
                    f"{where}: object {k}: type {kind} needs 4 coordinates (x1 y1 x2 y2), got {len(coords)} "
                    f"in {obj.strip()!r}"
                )
            if (xs[0] > xs[1] or ys[0] > ys[1]) and warnings is not None:
                warnings.add("box_corners_swapped", "rectangles / ellipses whose corners were reordered", where)
        elif len(coords) < 6 or len(coords) % 2:
            raise PrepareError(
                f"{where}: object {k}: a polygon needs an even number (>= 6) of coordinates, got {len(coords)} "
                f"in {obj.strip()!r}"
            )
        else:
            polygons.append({"label": BOX_LABEL, "points": coords})
        boxes.append(
            {"x1": min(xs), "y1": min(ys), "x2": max(xs), "y2": max(ys), "label": BOX_LABEL, "shape": SHAPES[kind]}
        )
    return boxes, polygons


class _Table:
    """One annotation table: per image its name, path, shapes and CSV row."""

    def __init__(self, root: Path, folder: str, warnings: PrepareWarnings):
        path = find_native_file(root, [TABLES[folder]])
        self.path = path
        head = read_native_csv(path, root, ["annotation"], warnings=warnings)
        column = next((c for c in NAME_COLUMNS if c in head.columns), None)
        if column is None:
            head.index(NAME_COLUMNS[0])  # raises: missing column 'image_name'
        self.table: NativeTable = head
        self.folder = folder
        j_name, j_ann = head.index(column), head.index("annotation")
        self.names: list[str] = []
        self.paths: list[str] = []
        self.shapes: list[tuple[list[dict], list[dict]]] = []
        for i, values in enumerate(head.rows):
            value = values[j_name].strip().replace("\\", "/")
            if not value:
                raise PrepareError(f"{head.where(i, column)}: empty image name")
            name = value.rsplit("/", 1)[-1]
            self.names.append(name)
            self.paths.append(value if "/" in value else f"{folder}/{value}")
            where = f"{head.where(i, 'annotation')} (image {name})"
            self.shapes.append(parse_annotation(values[j_ann], where, warnings))
        expected = EXPECTED_ROWS[folder]
        if len(head) != expected:
            warnings.add(
                "unexpected_row_count",
                "annotation tables whose size differs from the published Object-CXR release",
                f"{head.name}: {len(head)} rows, published {expected}",
            )


class ObjectCXRDataset:
    """Object-CXR manifests (protocols ``mgca``, ``benchx``, ``suite``)."""

    name = "object_cxr"
    protocols = ("mgca", "benchx", "suite")
    label_names = LABEL_NAMES

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        folders = ("train", "dev", "test") if protocol == "benchx" else ("train", "dev")
        inputs = [find_native_file(root, [TABLES[f]]) for f in folders]

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            tables = {f: _Table(root, f, warnings) for f in folders}
            return self._plan(tables, protocol)

        return run_prepare(
            dataset=self.name,
            protocol=protocol,
            root=root,
            out=out,
            input_files=inputs,
            build=build,
            check_images=check_images,
            code_files=[__file__],
            force=force,
        )

    def _plan(self, tables: dict[str, _Table], protocol: str) -> ManifestPlan:
        train_t, dev_t = tables["train"], tables["dev"]
        assigned: list[tuple[_Table, int, str]] = []  # train rows first, in frac order
        n = len(train_t.names)
        if protocol == "mgca":
            train_idx, valid_idx = sklearn_split_indices(n, MGCA_VALID, SPLIT_SEED)
            assigned += [(train_t, i, "train") for i in train_idx.tolist()]
            assigned += [(train_t, i, "valid") for i in valid_idx.tolist()]
            assigned += [(dev_t, i, "test") for i in range(len(dev_t.names))]
            split_rule = (
                f"train.csv split with sklearn train_test_split(test_size={MGCA_VALID}, random_state={SPLIT_SEED}); "
                "test = dev.csv"
            )
        elif protocol == "benchx":
            test_t = tables["test"]
            assigned += [(train_t, i, "train") for i in range(n)]
            assigned += [(dev_t, i, "valid") for i in range(len(dev_t.names))]
            assigned += [(test_t, i, "test") for i in range(len(test_t.names))]
            split_rule = "train = train.csv, valid = dev.csv, test = test.csv"
        else:
            order = sorted(range(n), key=lambda i: train_t.names[i])
            split = assign_groups([train_t.names[i] for i in order], [("valid", MGCA_VALID)], SPLIT_SEED)
            assigned += [(train_t, i, s) for i, s in zip(order, split) if s == "train"]
            assigned += [(train_t, i, s) for i, s in zip(order, split) if s == "valid"]
            assigned += [(dev_t, i, "test") for i in range(len(dev_t.names))]
            split_rule = (
                f"valid = {MGCA_VALID:.0%} of train.csv (RandomState({SPLIT_SEED}) over sorted image names); "
                "test = dev.csv"
            )
        train = [(t, i) for t, i, s in assigned if s == "train"]
        if protocol == "mgca":
            ranks = frac_ranks(len(train), FRACTION_SEED)
            frac_order = f"RandomState({FRACTION_SEED}).permutation over the train rows in split order"
        else:
            ranks = stratified_frac_ranks([int(bool(t.shapes[i][0])) for t, i in train], FRACTION_SEED)
            frac_order = "stratified by has_object"
        rank_of = {(id(t), i): int(r) for (t, i), r in zip(train, ranks.tolist())}
        seen: dict[str, tuple[_Table, int]] = {}
        for t, i, _ in assigned:
            name = t.names[i]
            if name in seen:
                other, j = seen[name]
                raise PrepareError(
                    f"{t.table.where(i)}: image {name!r} also listed in {other.table.where(j)}"
                )
            seen[name] = (t, i)
        info = {
            "native_version": "Object-CXR (MIDL 2020)",
            "seeds": {"split": SPLIT_SEED, "fraction": FRACTION_SEED},
            "split_rule": split_rule,
            "frac_order": frac_order,
            "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
            "frac_base": len(train),
            "box_label": BOX_LABEL,
            "shape_types": {"0": "rect", "1": "ellipse (bounding box)", "2": "polygon (polygon_bbox + polygons)"},
        }

        def rows() -> Iterator[dict]:
            for t, i, split in sorted(assigned, key=lambda a: a[0].names[a[1]]):
                boxes, polygons = t.shapes[i]
                yield {
                    "dataset": self.name,
                    "sample_id": t.names[i],
                    "image_path": t.paths[i],
                    "image_format": "png" if t.names[i].lower().endswith(".png") else "jpg",
                    "view": "FRONTAL",
                    "split": split,
                    "frac_rank": rank_of.get((id(t), i)),
                    "labels": [1.0 if boxes else 0.0],
                    "boxes": boxes,
                    "polygons": polygons,
                    "mask_source": "shapes",
                    "source_row": t.table.record_json(i),
                }

        return ManifestPlan(rows=rows(), label_names=LABEL_NAMES, info=info)


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "object_cxr", ObjectCXRDataset)
