"""A manifest of synthetic image-report pairs written straight from the generator.

DESIGN's data flow has two ways into a manifest: native files through ``prepare``,
and the synthetic generator directly. This is the direct one: PNG frontal images
and MIMIC-style reports, without native-format emulation, for engine tests and
benchmarks that must not depend on any ``prepare``.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from .render import to_uint8
from .study import generate_study


def write_pairs_manifest(
    folder: str | Path, n_train: int = 8, n_test: int = 4, image_px: int = 80, seed: int = 0
) -> Path:
    """Write ``folder/images/*.png`` and ``folder/pairs.parquet`` (+ sidecar); return the manifest.

    Study ``i`` of split ``s`` is ``generate_study(seed, s, i, image_px)``; its report is
    the ``mimic`` style with its generated findings and impression sections.
    """
    from place_bench.data.manifest import write_manifest, write_sidecar

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for split, count in (("train", n_train), ("test", n_test)):
        for index in range(count):
            study = generate_study(seed, split, index, image_px, with_lateral=False)
            report = study.reports["mimic"]
            sample_id = f"{split}_{index:06d}"
            rel = f"images/{sample_id}.png"
            Image.fromarray(to_uint8(study.frontal)).save(folder / rel)
            rows.append(dict(
                dataset="synthetic_pairs", sample_id=sample_id, subject_id=f"{split}_{index:06d}",
                image_path=rel, image_format="png", split=split, report=report.text,
                findings=report.sections.get("findings"), impression=report.sections.get("impression"),
            ))
    manifest = folder / "pairs.parquet"
    summary = write_manifest(manifest, sorted(rows, key=lambda r: r["sample_id"]))
    write_sidecar(manifest.with_suffix(".json"), {
        "dataset": "synthetic_pairs",
        "protocol": "direct",
        "native_root": str(folder.resolve()),
        "generator": {"seed": seed, "image_px": image_px, "n_train": n_train, "n_test": n_test},
        "manifest": {"file": manifest.name, "rows": summary.rows, "sha256": summary.sha256, "fingerprint": summary.fingerprint},
    })
    return manifest
