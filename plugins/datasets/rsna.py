"""RSNA Pneumonia Detection, Kaggle stage 2 (datasets.md section 1.3).

Native root: the Kaggle folder with ``stage_2_train_labels.csv`` (``patientId, x, y, width,
height, Target``; one row per box, blank box columns when ``Target = 0``), optionally
``stage_2_detailed_class_info.csv`` (``patientId, class``) and the images
``stage_2_train_images/<patientId>.dcm`` (1024 x 1024). ``.gz`` / ``.zip`` copies of the CSVs are
accepted. View, sex and age come from a DICOM header table when one is present
(``stage_2_train_images_dicom_headers.csv`` or torchxrayvision's
``kaggle_stage_2_train_images_dicom_headers.csv``: ``PatientID, ViewPosition, PatientSex,
PatientAge``), else from each DICOM header when ``check_images``, else ``view = "UNKNOWN"``
(warning ``view_unknown``).

Manifest rows (one per ``patientId``, which is per image):

* ``sample_id`` = ``subject_id`` = ``patientId``; ``image_path`` =
  ``stage_2_train_images/<patientId>.dcm``; ``image_format = "dcm"``;
* ``labels = [Target]`` with label name ``Pneumonia``;
* ``boxes``: one per positive CSV row, ``[x, y, x + width, y + height]`` in native pixels,
  ``label = "Lung Opacity"``, ``shape = "rect"``, in CSV order; ``mask_source = "boxes"`` (box
  masks are rasterized at load time);
* ``source_row``: JSON ``{"labels": [native label rows], "class": [detailed class rows]}``.

Protocols (``patientId`` order = sorted, as pandas ``groupby``):

* ``mgca`` -- MGCA detection / segmentation split (``prepare_detection_data``): sklearn
  ``train_test_split(test_size=10674, random_state=0)``, the held-out part halved with
  ``test_size=0.5, random_state=0`` (sklearn's "train" half is the test split) ->
  16,010 / 5,337 / 5,337 on the full data.
* ``gloria`` -- GLoRIA classification / MGCA ``preprocess_rsna_data``: the same with
  ``test_size=0.3`` -> 18,678 / 4,003 / 4,003.
* ``suite`` -- image-level 70 / 15 / 15: ``RandomState(0)`` over sorted ids, first 15 % test,
  next 15 % valid; ``frac_rank`` stratified by ``Target``.

``mgca`` / ``gloria`` ``frac_rank``: ``RandomState(42)`` over the train rows in split order (pandas
``sample(frac, random_state=42)`` in MGCA's classification dataset; its detection dataset draws
from numpy's global generator instead, which is not reproduced).
"""

from __future__ import annotations

import math
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
    json_record,
    parse_age,
    read_dicom_tags,
    read_native_csv,
    run_prepare,
)
from place_bench.data.splits import assign_groups, frac_ranks, sklearn_split_indices, stratified_frac_ranks
from place_bench.hookspecs import hookimpl

LABEL_NAMES: tuple[str, ...] = ("Pneumonia",)
BOX_LABEL = "Lung Opacity"
IMAGE_DIR = "stage_2_train_images"
IMAGE_SIZE = 1024  # every stage-2 image; boxes are checked against it
LABEL_FILE = "stage_2_train_labels.csv"
CLASS_FILE = "stage_2_detailed_class_info.csv"
HEADER_FILES = ("stage_2_train_images_dicom_headers.csv", "kaggle_stage_2_train_images_dicom_headers.csv")
#: Published sizes (datasets.md section 1.3): label rows and distinct images of stage 2.
EXPECTED = {"rows": 30_227, "images": 26_684}

SPLIT_SEED = 0
FRACTION_SEED = 42
MGCA_HELD_OUT = 5337 * 2
_HEADER_TAGS = ("ViewPosition", "PatientSex", "PatientAge")


class _Native:
    """Label rows grouped by ``patientId`` (sorted), boxes, classes and header facts."""

    def __init__(self, labels: NativeTable, classes: NativeTable | None, header: NativeTable | None,
                 warnings: PrepareWarnings):
        self.labels = labels
        by_id: dict[str, list[int]] = {}
        j_id = labels.index("patientId")
        for i, values in enumerate(labels.rows):
            pid = values[j_id].strip()
            if not pid:
                raise PrepareError(f"{labels.where(i, 'patientId')}: empty patientId")
            by_id.setdefault(pid, []).append(i)
        self.ids = sorted(by_id)
        self.rows_of = by_id
        target = labels.float_column("Target", (0.0, 1.0))
        self.target = np.zeros(len(self.ids), dtype=np.int64)
        self.boxes: list[list[dict]] = []
        for k, pid in enumerate(self.ids):
            rows = by_id[pid]
            values = {int(target[i]) for i in rows}
            if len(values) > 1:
                raise PrepareError(f"{labels.where(rows[-1], 'Target')}: patientId {pid} has both Target 0 and 1 rows")
            self.target[k] = values.pop()
            self.boxes.append([b for b in (self._box(i, warnings) for i in rows) if b is not None])
            if self.target[k] == 1 and not self.boxes[-1]:
                raise PrepareError(f"{labels.where(rows[0])}: patientId {pid} has Target 1 but no box")
        n_rows, n_images = len(labels), len(self.ids)
        if (n_rows, n_images) != (EXPECTED["rows"], EXPECTED["images"]):
            warnings.add(
                "unexpected_row_count",
                "native table size differs from the published stage-2 size",
                f"{labels.name}: {n_rows} rows / {n_images} images, published {EXPECTED['rows']} / {EXPECTED['images']}",
            )
        self.classes: dict[str, list[dict]] = {}
        if classes is not None:
            j_cid = classes.index("patientId")
            classes.index("class")
            for i, values in enumerate(classes.rows):
                self.classes.setdefault(values[j_cid].strip(), []).append(classes.record(i))
                if values[j_cid].strip() not in by_id:
                    warnings.add("class_without_label", f"{classes.name}: patientIds absent from {labels.name}",
                                 values[j_cid].strip())
            for k, pid in enumerate(self.ids):
                names = {r["class"].strip() for r in self.classes.get(pid, [])}
                if not names:
                    warnings.add("class_missing", f"patientIds without a row in {classes.name}", pid)
                elif (names == {"Lung Opacity"}) != bool(self.target[k]):
                    warnings.add("class_target_mismatch", "Target disagrees with the detailed class", pid)
        self.header: dict[str, dict] = {}
        if header is not None:
            j_hid = header.index("PatientID")
            cols = [c for c in ("ViewPosition", "PatientSex", "PatientAge") if c in header.columns]
            for i, values in enumerate(header.rows):
                rec = header.record(i)
                self.header[values[j_hid].strip()] = {c: rec[c].strip() for c in cols}

    def _box(self, i: int, warnings: PrepareWarnings) -> dict | None:
        t = self.labels
        x, y, w, h = (t.float_value(i, c) for c in ("x", "y", "width", "height"))
        has = [not math.isnan(v) for v in (x, y, w, h)]
        target = t.float_value(i, "Target")
        if target == 0:
            if any(has):
                warnings.add("box_on_negative", f"{t.name}: Target 0 rows with box values (ignored)", t.where(i))
            return None
        if not all(has):
            missing = [c for c, ok in zip(("x", "y", "width", "height"), has) if not ok][0]
            raise PrepareError(f"{t.where(i, missing)}: blank on a Target 1 row")
        if w <= 0 or h <= 0:
            raise PrepareError(f"{t.where(i, 'width' if w <= 0 else 'height')}: box of size {w} x {h}")
        if x < 0 or y < 0 or x + w > IMAGE_SIZE or y + h > IMAGE_SIZE:
            warnings.add("box_outside_image", f"boxes reaching outside the {IMAGE_SIZE} x {IMAGE_SIZE} image (kept)",
                         t.where(i))
        return {"x1": x, "y1": y, "x2": x + w, "y2": y + h, "label": BOX_LABEL, "shape": "rect"}


class RSNADataset:
    """RSNA Pneumonia manifests (protocols ``mgca``, ``gloria``, ``suite``)."""

    name = "rsna"
    protocols = ("mgca", "gloria", "suite")
    label_names = LABEL_NAMES

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        label_file = find_native_file(root, [LABEL_FILE])
        class_file = find_native_file(root, [CLASS_FILE], required=False)
        header_file = find_native_file(root, list(HEADER_FILES), required=False)
        inputs = [p for p in (label_file, class_file, header_file) if p is not None]

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            labels = read_native_csv(label_file, root, ["patientId", "x", "y", "width", "height", "Target"], warnings=warnings)
            classes = read_native_csv(class_file, root, ["patientId", "class"], warnings=warnings) if class_file else None
            header = read_native_csv(header_file, root, ["PatientID", "ViewPosition"], warnings=warnings) if header_file else None
            native = _Native(labels, classes, header, warnings)
            return self._plan(root, native, protocol, check_images, warnings)

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

    def _plan(self, root: Path, native: _Native, protocol: str, check_images: bool,
              warnings: PrepareWarnings) -> ManifestPlan:
        n = len(native.ids)
        split = np.empty(n, dtype=object)
        rank = np.full(n, -1, dtype=np.int64)
        if protocol in ("mgca", "gloria"):
            held_out = MGCA_HELD_OUT if protocol == "mgca" else 0.3
            if protocol == "mgca" and n <= MGCA_HELD_OUT + 1:
                raise PrepareError(
                    f"{native.labels.name}: {n} images; the mgca protocol holds out {MGCA_HELD_OUT} and needs more "
                    "(use gloria or suite on small copies)"
                )
            train, rest = sklearn_split_indices(n, held_out, SPLIT_SEED)
            test_part, valid_part = sklearn_split_indices(rest.size, 0.5, SPLIT_SEED)
            split[train], split[rest[valid_part]], split[rest[test_part]] = "train", "valid", "test"
            rank[train] = frac_ranks(train.size, FRACTION_SEED)
            split_rule = (
                f"sklearn train_test_split(test_size={held_out!r}, random_state={SPLIT_SEED}) over sorted patientIds; "
                f"held-out part split with test_size=0.5 (its 'train' half = test, 'test' half = valid)"
            )
            frac_order = f"RandomState({FRACTION_SEED}).permutation over the train rows in split order"
        else:
            split[:] = assign_groups(native.ids, [("test", 0.15), ("valid", 0.15)], SPLIT_SEED)
            train = np.flatnonzero(split == "train")
            rank[train] = stratified_frac_ranks([int(native.target[k]) for k in train.tolist()], FRACTION_SEED)
            split_rule = f"RandomState({SPLIT_SEED}) permutation of sorted patientIds: 15 % test, 15 % valid, rest train"
            frac_order = "stratified by Target"
        info = {
            "native_version": "RSNA Pneumonia Detection Challenge stage 2",
            "seeds": {"split": SPLIT_SEED, "fraction": FRACTION_SEED},
            "split_rule": split_rule,
            "frac_order": frac_order,
            "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
            "frac_base": int(train.size),
            "box_label": BOX_LABEL,
            "view_source": "header table" if native.header else ("DICOM headers" if check_images else "none"),
        }

        def rows() -> Iterator[dict]:
            for k, pid in enumerate(native.ids):  # already sorted
                image_path = f"{IMAGE_DIR}/{pid}.dcm"
                if native.header:
                    facts = native.header.get(pid)
                    if facts is None:
                        warnings.add("header_missing", "patientIds absent from the DICOM header table", pid)
                        facts = {}
                elif check_images:
                    facts = read_dicom_tags(root / image_path, _HEADER_TAGS)
                else:
                    facts = {}
                view = (facts.get("ViewPosition") or "").upper()
                if view not in ("AP", "PA"):
                    warnings.add("view_unknown", "images whose view position is unknown (view stored as UNKNOWN)", pid)
                    view = "UNKNOWN"
                source = {
                    "labels": [native.labels.record(i) for i in native.rows_of[pid]],
                    "class": native.classes.get(pid, []),
                }
                yield {
                    "dataset": self.name,
                    "sample_id": pid,
                    "subject_id": pid,
                    "image_path": image_path,
                    "image_format": "dcm",
                    "view": view,
                    "split": split[k],
                    "frac_rank": int(rank[k]) if split[k] == "train" else None,
                    "labels": [float(native.target[k])],
                    "boxes": native.boxes[k],
                    "mask_source": "boxes",
                    "sex": facts.get("PatientSex") or None,
                    "age": parse_age(facts.get("PatientAge")),
                    "source_row": json_record(source),
                }

        return ManifestPlan(rows=rows(), label_names=LABEL_NAMES, info=info, disjoint_subjects=True)


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "rsna", RSNADataset)
