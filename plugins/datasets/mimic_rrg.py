"""MIMIC-CXR report generation with R2Gen's split file (datasets.md section 1.7).

Native root: the folder with R2Gen's MIMIC ``annotation.json`` (``{"train": [...], "val": [...],
"test": [...]}``, entries ``{"id": <dicom_id>, "study_id", "subject_id", "report",
"image_path": ["p10/p10000032/s50414267/<dicom_id>.jpg"], "split"}``; read with
:func:`place_bench.plugins.datasets.iu_xray.read_r2gen_annotation`, so a malformed entry is a
:class:`PrepareError` naming it) and the images below an image folder: ``images/`` (R2Gen's
layout), else ``files/`` (the annotation placed in a MIMIC-CXR-JPG root), else whatever
``MimicRRGDataset(image_dir=...)`` names (relative to the root; ``..`` allowed). When a
MIMIC-CXR-JPG metadata table (``mimic-cxr-2.0.0-metadata.csv[.gz]``) sits in the root, the
view of each image is taken from it; else ``view = "UNKNOWN"``.

Manifest rows (protocol ``r2gen``, one per annotation entry, R2Gen's split with ``val`` ->
``valid``): ``sample_id`` = ``id``; ``subject_id`` / ``study_id`` as strings; ``image_path`` =
``<image_dir>/<image_path[0]>`` (further paths in ``aux_image_paths``); ``report`` =
``findings`` = the entry's report (the R2Gen target); ``impression`` null; ``source_row`` = the
entry. Entries with an empty report are left out (warning ``empty_report``). ``frac_rank``:
``RandomState(42)`` over the train rows in id order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from place_bench.data.prepare import (
    ManifestPlan,
    PrepareError,
    PrepareResult,
    PrepareWarnings,
    check_protocol,
    find_native_file,
    json_record,
    read_native_csv,
    run_prepare,
)
from place_bench.hookspecs import hookimpl
from place_bench.plugins.datasets import iu_xray
from place_bench.plugins.datasets.iu_xray import (
    ANNOTATION,
    R2GEN_SPLITS,
    check_r2gen_sizes,
    r2gen_split_plan,
    read_r2gen_annotation,
)

#: Published sizes of R2Gen's MIMIC-CXR annotation (datasets.md section 1.7).
EXPECTED = {"train": 270_790, "val": 2_130, "test": 3_858}
IMAGE_DIRS = ("images", "files")
METADATA = ("mimic-cxr-2.0.0-metadata.csv", "mimic-cxr-2.1.0-metadata.csv")
VIEWS = ("PA", "AP", "LATERAL", "LL")


def _id_text(value) -> str | None:
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    return text or None


class MimicRRGDataset:
    """MIMIC-CXR report-generation manifest (protocol ``r2gen``)."""

    name = "mimic_rrg"
    protocols = ("r2gen",)
    label_names: tuple[str, ...] = ()

    def __init__(self, image_dir: str | None = None):
        self.image_dir = image_dir

    def _image_dir(self, root: Path) -> str:
        if self.image_dir is not None:
            return Path(self.image_dir).as_posix().rstrip("/")
        return next((d for d in IMAGE_DIRS if (root / d).is_dir()), IMAGE_DIRS[0])

    def prepare(self, root, protocol: str, out, check_images: bool = True, force: bool = False) -> PrepareResult:
        check_protocol(self.name, self.protocols, protocol)
        root = Path(root)
        annotation = root / ANNOTATION
        if not annotation.is_file():
            raise PrepareError(f"{root}: required native file not found ({ANNOTATION})")
        metadata = find_native_file(root, METADATA, required=False)
        image_dir = self._image_dir(root)
        inputs = [p for p in (annotation, metadata) if p is not None]

        def build(warnings: PrepareWarnings) -> ManifestPlan:
            entries = read_r2gen_annotation(annotation, root, required=("study_id", "subject_id"), warnings=warnings)
            sizes = check_r2gen_sizes(entries, EXPECTED, ANNOTATION, warnings)
            views = self._views(metadata, root, warnings) if metadata is not None else {}
            kept = []
            for e in entries:
                if not e.report.strip():
                    warnings.add("empty_report", "annotation entries with an empty report (left out)", e.where)
                else:
                    kept.append(e)
            rank = r2gen_split_plan([(e.id, R2GEN_SPLITS[e.split]) for e in kept])
            info = {
                "native_version": "R2Gen mimic_cxr annotation.json",
                "image_dir": image_dir,
                "view_source": "metadata table" if views else "none",
                "seeds": {"fraction": iu_xray.FRACTION_SEED},
                "split_rule": "R2Gen annotation.json lists (val -> valid)",
                "frac_order": f"RandomState({iu_xray.FRACTION_SEED}).permutation over the train rows in id order",
                "frac_rule": "fraction p = train rows with frac_rank < round(p * frac_base)",
                "frac_base": len(rank),
                "annotation_sizes": sizes,
            }

            def rows() -> Iterator[dict]:
                for e in sorted(kept, key=lambda e: e.id):
                    view = views.get(Path(e.image_paths[0]).stem, "UNKNOWN") if views else "UNKNOWN"
                    yield {
                        "dataset": self.name,
                        "sample_id": e.id,
                        "subject_id": _id_text(e.record.get("subject_id")),
                        "study_id": _id_text(e.record.get("study_id")),
                        "image_path": f"{image_dir}/{e.image_paths[0]}",
                        "aux_image_paths": [f"{image_dir}/{p}" for p in e.image_paths[1:]],
                        "image_format": "jpg" if e.image_paths[0].lower().endswith(".jpg") else None,
                        "view": view,
                        "split": R2GEN_SPLITS[e.split],
                        "frac_rank": rank.get(e.id),
                        "report": e.report,
                        "findings": e.report.strip(),
                        "source_row": json_record(e.record),
                    }

            return ManifestPlan(rows=rows(), info=info)

        return run_prepare(
            dataset=self.name,
            protocol=protocol,
            root=root,
            out=out,
            input_files=inputs,
            build=build,
            check_images=check_images,
            code_files=[__file__, iu_xray.__file__],
            options={"image_dir": image_dir},
            force=force,
        )

    @staticmethod
    def _views(metadata: Path, root: Path, warnings: PrepareWarnings) -> dict[str, str]:
        table = read_native_csv(metadata, root, ["dicom_id", "ViewPosition"], warnings=warnings)
        j_d, j_v = table.index("dicom_id"), table.index("ViewPosition")
        out = {}
        for values in table.rows:
            view = values[j_v].strip().upper()
            out[values[j_d].strip()] = view if view in VIEWS else "UNKNOWN"
        return out


@hookimpl
def place_bench_register(registrar):
    registrar.add("dataset", "mimic_rrg", MimicRRGDataset)
