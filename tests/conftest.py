"""Shared test set-up: offline hubs, a fresh plugin manager per test, tiny configs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "configs"


@pytest.fixture(autouse=True)
def fresh_plugins():
    """Each test starts with no plugin manager and empty registries, and leaves none behind."""
    from place_bench.plugin_manager import reset_plugin_manager

    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def write_plugin(tmp_path):
    """Write a plugin module ``NAME.py`` with ``SOURCE`` into a fresh folder; return the folder."""
    folder = tmp_path / "plugins"
    folder.mkdir()

    def write(name: str, source: str) -> Path:
        (folder / f"{name}.py").write_text(source)
        return folder

    return write


@pytest.fixture
def run_cli():
    """Run ``place-bench ARGS`` in a subprocess of this interpreter; return the CompletedProcess."""
    import subprocess

    def run(*args: str, env: dict | None = None, cwd: Path | None = None):
        full_env = dict(os.environ, **(env or {}))
        return subprocess.run(
            [sys.executable, "-m", "place_bench.cli", *args],
            capture_output=True, text=True, env=full_env, cwd=cwd or REPO, timeout=300,
        )

    return run
