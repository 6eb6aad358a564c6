"""Record factories for the results tests (no torch: code version and packages are given)."""

from __future__ import annotations

import pytest

from place_bench.results.records import make_record


def measured(label="PLACE", sha="a" * 64, task="cls_linear", dataset="chexpert", fraction=0.01, seed=0,
             value=0.83, ci=(0.80, 0.86), metric="auroc_macro", status="ok", protocol="suite", variant=None,
             **kwargs):
    metrics = {} if status == "failed" else {metric: {
        "value": value, "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None, "level": 0.95,
        "n_resamples": 1000, "n_valid": 1000, "seed": 0}}
    return make_record(
        checkpoint={"path": f"/ckpt/{label}.safetensors", "sha256": sha},
        method={"name": label.split()[0], "label": label},
        task=task, dataset=dataset, protocol=protocol, variant=variant, fraction=fraction, seed=seed,
        metrics=metrics, primary_metric=None if status == "failed" else metric,
        n_test=None if status == "failed" else 400,
        config={"task": {"type": task, "lr": 0.1}}, manifest={"path": "/data/m.parquet", "fingerprint": "f" * 16},
        status=status, error="CUDA out of memory" if status == "failed" else None,
        code_version="0.1.0+git.test", packages={"torch": "2.0"}, **kwargs,
    )


@pytest.fixture
def make_measured():
    return measured
