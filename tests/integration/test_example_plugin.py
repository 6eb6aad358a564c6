"""The example method plugin (examples/plugin_package) as a user meets it: pip-install the
package, see its components, pretrain its tiny config, evaluate the checkpoint, find the
method's row on the leaderboard.

The package is installed into a private folder (never into the venv) and the
commands that need it run as ``place-bench`` subprocesses with that folder on
PYTHONPATH, so the suite finds the plugin through its ``place_bench`` entry point
exactly as it would in a user's environment. The leaderboard needs no plugin (it is
a function of the records) and renders in-process.
"""

from __future__ import annotations

import csv
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from place_bench.cli import main

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "examples" / "plugin_package"
CONFIG = PACKAGE / "configs" / "siglip_tiny.py"
LABEL = "SigLIP (example plugin)"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The package pip-installed (offline, no dependencies) into a private target folder.

    It is built from a copy, so setuptools' build/ and egg-info land in the temporary
    folder, not in the repository.
    """
    source = tmp_path_factory.mktemp("example_src") / "plugin_package"
    shutil.copytree(PACKAGE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("example_site")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return target


@pytest.fixture(scope="module")
def covidx_manifest(tmp_path_factory) -> Path:
    """The tiny synthetic COVIDx (40 train / 10 val / 20 test images), prepared with the suite
    protocol: the smallest dataset of the synthetic world that the linear probe serves.
    (tiny_world in conftest.py prepares four datasets; this test needs one.)"""
    from place_bench.plugins.datasets.covidx import COVIDxDataset
    from place_bench.plugins.datasets.synthetic.emulators import emulate

    base = tmp_path_factory.mktemp("covidx")
    root = emulate("covidx", base / "native", size="tiny", seed=0).root
    result = COVIDxDataset().prepare(root, "suite", base / "manifests", check_images=False)
    return Path(result.manifest_path)


def test_example_method_installs_trains_evaluates_and_reaches_the_leaderboard(
    plugin_site, pairs_manifest, covidx_manifest, run_cli, tmp_path, capsys
):
    env = {"PYTHONPATH": str(plugin_site)}

    # 1. Both components, listed under the package's plugin (its entry-point name).
    listed = run_cli("plugins", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {tuple(line.split()[:3]) for line in listed.stdout.splitlines() if line.strip()}
    assert ("objective", "siglip", "example_encoder") in rows
    assert ("image_encoder", "example_conv", "example_encoder") in rows
    # (a plugin that fails to load has its registrations removed, so these rows mean it loaded)
    assert "distribution place-bench-example-encoder" in listed.stdout

    # 2. A few iterations of the example config, on 8 synthetic pairs.
    work = tmp_path / "pretrain"
    trained = run_cli(
        "pretrain", str(CONFIG), "--work-dir", str(work), "--cfg-options",
        "data.train.source=None", f"data.train.manifest={pairs_manifest}", "data.batch_size=4",
        "train_cfg.max_iters=4", "pretrain.checkpoint_interval=4", "pretrain.log_interval=1",
        env=env,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    checkpoint = work / "model.safetensors"
    card = json.loads(checkpoint.with_suffix(".json").read_text())
    assert card["components"]["objectives.0"] == "siglip"
    assert card["config"]["method"]["label"] == LABEL
    from safetensors.torch import load_file

    weights = load_file(str(checkpoint))
    # t' and b are the objective's parameters: saved, and trained away from the paper's init.
    assert weights["objectives.0.bias"].item() != -10.0
    assert abs(weights["objectives.0.log_temperature"].item() - math.log(10.0)) > 1e-6
    losses = [json.loads(line) for line in next(work.rglob("scalars.json")).read_text().splitlines()]
    losses = [entry["loss_siglip"] for entry in losses if "loss_siglip" in entry]
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)

    # 3. The downstream linear probe: the checkpoint's card names `siglip`, which the
    # installed plugin provides when the model is rebuilt.
    results = tmp_path / "results"
    evaluated = run_cli(
        "eval", str(checkpoint), "--task", "cls_linear", "--dataset", str(covidx_manifest),
        "--results", str(results), "--work-dir", str(tmp_path / "eval_work"),
        "--fractions", "1", "--seeds", "0", "--device", "cpu", "--cfg-options", "task.n_resamples=200",
        env=env,
    )
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "1 recorded, 0 already there, 0 failed" in evaluated.stdout

    # 4. The leaderboard has a measured row labelled with the method card, with a finite value.
    capsys.readouterr()
    board = tmp_path / "board"
    assert main(["leaderboard", "--results", str(results), "--out", str(board), "--format", "md", "csv"]) == 0
    markdown = capsys.readouterr().out
    row = next(line for line in markdown.splitlines() if line.startswith(f"| {LABEL} |"))
    assert re.search(r"\| \d+\.\d \(n=1\) \[\d+\.\d, \d+\.\d\] \|", row), row
    with open(board / "leaderboard.csv", newline="") as handle:
        cells = [r for r in csv.DictReader(handle) if r["method"] == LABEL]
    assert [(c["block"], c["task"], c["dataset"], c["metric"], c["status"]) for c in cells] == [
        ("measured", "cls_linear", "covidx", "accuracy", "ok")]
    assert math.isfinite(float(cells[0]["mean_pct"])) and 0.0 <= float(cells[0]["mean_pct"]) <= 100.0
