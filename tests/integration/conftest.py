"""Fixtures for end-to-end runs on tiny synthetic data."""

from __future__ import annotations

from pathlib import Path

import pytest

from place_bench.plugins.datasets.synthetic.pairs_manifest import write_pairs_manifest


@pytest.fixture(scope="session")
def pairs_manifest(tmp_path_factory) -> Path:
    return write_pairs_manifest(tmp_path_factory.mktemp("pairs"))
