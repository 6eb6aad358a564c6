"""The demo benchmark config (``benchmarks/demo_synthetic``, ``place-bench demo``): it validates and
plans every unit; the run itself is ``make demo`` (minutes), not a test."""

from __future__ import annotations

import re

from place_bench.cli import main

N_PREPARE, N_PRETRAIN, N_EVAL = 9, 4, 38      # 6 methods; PLACE and random-init get every task
N_RECORDS = 66


def _units(out: str) -> tuple[int, int]:
    match = re.search(r"(\d+) units \((\d+) done, (\d+) left\); (\d+)/(\d+) evaluation records", out)
    assert match, out
    return int(match.group(1)), int(match.group(5))


def test_demo_config_plans_every_unit(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)   # nothing of the config's work/demo exists here
    assert main(["bench", "benchmarks/demo_synthetic", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _units(out) == (N_PREPARE + N_PRETRAIN + N_EVAL, N_RECORDS)
    assert "[skip]" not in out and "error" not in out.lower()
    assert out.count("[todo] prepare ") == N_PREPARE and out.count("[todo] pretrain ") == N_PRETRAIN
    for unit in ("pretrain place (pretrain/place_synthetic)", "cls_linear random-init covidx: ?/6",
                 "cls_linear imagenet-init chexpert", "cls_finetune place covidx", "zeroshot gloria mimic_5x200",
                 "retrieval convirt mimic_5x200", "probes mgca synthetic_probes:negation_effusion",
                 "seg place siim", "seg place object_cxr", "det place object_cxr", "rrg place mimic_rrg"):
        assert unit in out, unit
    assert not (tmp_path / "work").exists()    # a dry run writes nothing


def test_demo_command_moves_the_work_folder(tmp_path, capsys):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--out", str(out_dir), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert _units(out) == (N_PREPARE + N_PRETRAIN + N_EVAL, N_RECORDS)
    assert f"results: {out_dir}/results" in out
    assert f"{out_dir}/manifests/mimic_cxr/mgca.parquet" in out
    assert f"{out_dir}/pretrain/place/model.safetensors" in out
    assert "work/demo" not in out

    from place_bench.commands.demo import demo_config
    from place_bench.config import to_plain

    bench = to_plain(demo_config(out_dir))["benchmark"]
    place = next(m for m in bench["methods"] if m["name"] == "place")
    assert place["cfg_options"] == {"data.train.source": None,
                                    "data.train.manifest": f"{out_dir}/manifests/mimic_cxr/mgca.parquet"}
    rrg = next(s for s in bench["prepare"] if s["dataset"] == "mimic_rrg")
    assert rrg["settings"] == {"image_dir": "../mimic_cxr/files"} and rrg["out"] == f"{out_dir}/manifests"

    assert main(["demo", "--out", str(out_dir), "--dry-run", "--quick"]) == 0
    out = capsys.readouterr().out
    assert _units(out)[0] == N_PREPARE + 1 + 15
    assert "mgca" not in out.replace("mimic_cxr/mgca", "") and "imagenet-init" not in out
    assert not out_dir.exists()
