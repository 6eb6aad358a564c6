"""``place-bench data synth`` (``place_bench.plugins.datasets.synthetic.emulators.command``) driven through an argparse parser."""

from __future__ import annotations

import argparse
import json

import pytest

from place_bench.plugins.datasets.synthetic.emulators.command import add_synth_arguments, run_synth


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="place-bench data synth")
    add_synth_arguments(parser)
    return parser


def test_writes_one_folder_per_dataset_and_prints_counts(tmp_path, capsys):
    args = _parser().parse_args(["--size", "tiny", "--out", str(tmp_path), "--datasets", "iu_xray,covidx",
                                 "--seed", "7"])
    assert run_synth(args) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["covidx", "iu_xray"]
    for name in ("covidx", "iu_xray"):
        manifest = json.loads((tmp_path / name / "manifest_of_quirks.json").read_text())
        assert manifest["dataset"] == name and manifest["seed"] == 7 and manifest["size"] == "tiny"
        assert name in out
    assert "train[" in out and "done in" in out
    assert (tmp_path / "covidx" / "train_COVIDx9A.txt").is_file()
    assert (tmp_path / "iu_xray" / "annotation.json").is_file()
    # a rerun replaces the previous emulation in place
    before = (tmp_path / "covidx" / "train.txt").read_bytes()
    args.datasets = "covidx"
    assert run_synth(args) == 0
    assert (tmp_path / "covidx" / "train.txt").read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_rejects_unknown_datasets_and_sizes(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        run_synth(_parser().parse_args(["--out", str(tmp_path), "--datasets", "mimic_cxr,imagenet"]))
    with pytest.raises(SystemExit):
        _parser().parse_args(["--out", str(tmp_path), "--size", "huge"])
    with pytest.raises(ValueError, match="workers"):
        run_synth(_parser().parse_args(["--out", str(tmp_path), "--datasets", "covidx", "--workers", "0"]))
