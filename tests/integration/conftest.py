"""Fixtures for end-to-end runs on tiny synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest

from place_bench.plugins.datasets.synthetic.pairs_manifest import write_pairs_manifest


@pytest.fixture(scope="session")
def pairs_manifest(tmp_path_factory) -> Path:
    return write_pairs_manifest(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    """Prepared manifests of the tiny synthetic CheXpert, CheXpert 5x8, COVIDx and MIMIC 5x8.

    Returns dataset name -> manifest path. The 5x200 rules run with 8 per class (tiny size).
    """
    from place_bench.plugin_manager import get_plugin_manager, reset_plugin_manager
    from place_bench.plugins.datasets.synthetic.emulators import emulate
    from place_bench.registry import get_component

    base = tmp_path_factory.mktemp("world")
    reset_plugin_manager()
    get_plugin_manager()
    out = base / "manifests"
    plan = {
        "chexpert": ("chexpert", dict(n_per_class=8, n_valid=10)),
        "chexpert_5x200": ("chexpert", dict(n_per_class=8)),
        "covidx": ("covidx", {}),
        "mimic_5x200": ("mimic_cxr", dict(n_per_class=8)),
    }
    roots = {}
    manifests = {}
    for name, (native, settings) in plan.items():
        if native not in roots:
            roots[native] = emulate(native, base / "native" / native, size="tiny", seed=0).root
        result = get_component("dataset", name).obj(**settings).prepare(roots[native], "suite", out, check_images=False)
        manifests[name] = Path(result.manifest_path)
    reset_plugin_manager()
    return manifests


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised tiny ViT + BERT suite checkpoint (64 px) with a method card."""
    import torch

    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.model.checkpoint import save_checkpoint
    from place_bench.plugin_manager import reset_plugin_manager

    reset_plugin_manager()
    torch.manual_seed(0)
    cfg = api.load_config("eval/embed_tiny", {"method": {"name": "tiny", "label": "Tiny (random)"}})
    path = save_checkpoint(api.build_model(cfg), tmp_path_factory.mktemp("ckpt") / "model.safetensors", to_plain(cfg))
    reset_plugin_manager()
    return path
