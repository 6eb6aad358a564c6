"""Fixtures for end-to-end runs on tiny synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def write_pairs_manifest(folder: Path, n_train: int = 8, n_test: int = 4, image_px: int = 80, seed: int = 0) -> Path:
    """A manifest of synthetic MIMIC-style studies (PNG images + reports) under ``folder``.

    Built straight from the synthetic world, without the native-format emulators,
    so engine tests do not depend on ``prepare``.
    """
    from place_bench.data.manifest import write_manifest, write_sidecar
    from place_bench.plugins.datasets.synthetic import generate_study, to_uint8

    rows = []
    for split, count in (("train", n_train), ("test", n_test)):
        for index in range(count):
            study = generate_study(seed, split, index, image_px, with_lateral=False)
            report = study.reports["mimic"]
            rel = f"images/{split}_{index:04d}.png"
            (folder / "images").mkdir(parents=True, exist_ok=True)
            Image.fromarray(to_uint8(study.frontal)).save(folder / rel)
            rows.append(dict(
                dataset="synthetic", sample_id=f"{split}_{index:04d}", subject_id=f"p{index}",
                image_path=rel, image_format="png", split=split, report=report.text,
                findings=report.sections.get("findings"), impression=report.sections.get("impression"),
            ))
    manifest = folder / "pairs.parquet"
    summary = write_manifest(manifest, sorted(rows, key=lambda r: r["sample_id"]))
    write_sidecar(manifest.with_suffix(".json"), {
        "dataset": "synthetic", "protocol": "test", "native_root": str(folder),
        "manifest": {"file": manifest.name, "rows": summary.rows, "sha256": summary.sha256, "fingerprint": summary.fingerprint},
    })
    return manifest


@pytest.fixture(scope="session")
def pairs_manifest(tmp_path_factory) -> Path:
    return write_pairs_manifest(tmp_path_factory.mktemp("pairs"))
