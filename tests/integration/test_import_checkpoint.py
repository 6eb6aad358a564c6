"""Foreign checkpoints end to end: ``import-checkpoint`` then ``eval --task cls_linear`` on the tiny
synthetic world, for every adapter; direct ``eval --checkpoint-format``; overrides in the records."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

import foreign_checkpoints as fx
from place_bench.cli import main

FAST = ["--fractions", "1", "--seeds", "0", "--cfg-options", "task.n_resamples=200"]
LIGHTNING = {"mgca", "convirt", "gloria"}  # saved as Lightning .ckpt files by their repositories


@pytest.fixture(scope="module")
def text_model(tmp_path_factory) -> Path:
    return fx.write_text_model(tmp_path_factory.mktemp("text") / "tiny_clinical_bert")


def records(results: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob("*/*/*.json"))]


def set_args(flag: str, options: dict) -> list[str]:
    return [item for k, v in options.items() for item in (flag, f"{k}={v}")]


def eval_args(source: Path, manifest: Path, results: Path, task: str = "cls_linear") -> list[str]:
    return ["eval", str(source), "--task", task, "--dataset", str(manifest), "--results", str(results),
            "--work-dir", str(results.parent / "work"), *FAST]


@pytest.mark.parametrize("name", list(fx.CASES))
def test_each_adapter_imports_and_runs_a_linear_probe(name, tiny_world, tmp_path, text_model, capsys):
    fmt, _arch, build, needs_text, options = fx.CASES[name]
    lightning = fmt in LIGHTNING
    source = fx.write(build(), tmp_path / f"{name}.{'ckpt' if lightning else 'pth'}", as_lightning=lightning)
    out = tmp_path / "imported" / "model.safetensors"
    args = ["import-checkpoint", str(source), "--format", fmt, "--out", str(out), *set_args("--set", options)]
    args += ["--allow-pickle"] if lightning else []
    args += ["--text-model", str(text_model)] if needs_text else []
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"with adapter {name}" in printed and "missing 0" in printed

    card = json.loads(out.with_suffix(".json").read_text())
    provenance = card["extra"]["import"]
    assert provenance["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert provenance["adapter"] == name and provenance["flags"]["allow_pickle"] is lightning
    assert provenance["load_report"]["counts"]["missing"] == 0 and provenance["declaration"]["format"] == fmt
    assert card["config"]["method"]["imported"] is True

    results = tmp_path / "results"
    assert main(eval_args(out, tiny_world["covidx"], results)) == 0
    (record,) = records(results)
    assert record["status"] == "ok" and record["task"] == "cls_linear"
    report = record["checkpoint"]["load_report"]
    assert report["source"] == "imported suite checkpoint" and report["adapter"] == name and report["strict"] is True
    assert report["source_sha256"] == provenance["source"]["sha256"] and report["counts"]["missing"] == 0


def test_direct_eval_records_the_allow_missing_override(tiny_world, tmp_path, text_model, capsys):
    state = fx.mgca("vit_b16")
    del state["text_encoder_q.model.encoder.layer.5.output.dense.weight"]
    source = fx.write(state, tmp_path / "mgca_partial.ckpt", as_lightning=True)
    results = tmp_path / "results"
    base = [*eval_args(source, tiny_world["covidx"], results)[:-len(FAST)], "--checkpoint-format", "mgca",
            "--text-model", str(text_model), *set_args("--import-set", fx.SMALL_VIT_OPTIONS)]
    assert main([*base, *FAST]) == 1  # Lightning pickle without --allow-pickle
    assert "--allow-pickle" in capsys.readouterr().err
    assert main([*base, "--allow-pickle", *FAST]) == 1  # a missing encoder weight without --allow-missing
    err = capsys.readouterr().err
    assert "encoder weights missing: text_encoder.model.encoder.layer.5.output.dense.weight" in err
    assert not records(results)

    assert main([*base, "--allow-pickle", "--allow-missing", *FAST]) == 0
    (record,) = records(results)
    report = record["checkpoint"]["load_report"]
    assert record["status"] == "ok" and record["checkpoint"]["sha256"].startswith("import:")
    assert report["source"] == "foreign checkpoint" and report["strict"] is False
    assert report["overrides"] == ["allow_missing"]
    assert report["missing"] == ["text_encoder.model.encoder.layer.5.output.dense.weight"]
    assert record["method"]["label"] == "MGCA (imported, ViT-B/16) [partial load]"
    assert record["method"]["load_overrides"] == ["allow_missing"]


def test_image_only_import_offers_no_zero_shot(tiny_world, tmp_path, capsys):
    source = fx.write(fx.gloria(), tmp_path / "gloria.ckpt", as_lightning=True)
    args = eval_args(source, tiny_world["chexpert_5x200"], tmp_path / "results", task="zeroshot")
    assert main([*args[:-len(FAST)], "--checkpoint-format", "gloria", "--allow-pickle",
                 *set_args("--import-set", fx.RESNET_OPTIONS),
                 "--cfg-options", "task.n_resamples=200"]) == 1
    assert "needs the text encoder" in capsys.readouterr().err


def test_a_benchmark_method_can_be_a_foreign_checkpoint(tiny_world, tmp_path, monkeypatch, capsys):
    """bench: dict(checkpoint=SRC, format=...) is converted on load; the plan knows its record keys
    (a re-run skips) and that an image-only format serves no zero-shot."""
    monkeypatch.chdir(tmp_path)
    fmt, _arch, build, _needs_text, options = fx.CASES["benchx_resnet50"]
    source = fx.write(build(), tmp_path / "benchx_r50.pth")
    work = tmp_path / "bench"
    cfg = tmp_path / "bench_cfg.py"
    cfg.write_text(f"""
benchmark = dict(
    work_dir={str(work)!r}, results_dir={str(work / 'results')!r},
    methods=[dict(name="benchx-r50", checkpoint={str(source)!r}, format={fmt!r}, options={options!r})],
    tasks=[dict(task="cls_linear", datasets=[{str(tiny_world['covidx'])!r}], fractions=[1.0], seeds=[0],
                cfg_options={{"task.n_resamples": 100, "task.max_epochs": 3}}),
           dict(task="zeroshot", datasets=[{str(tiny_world['mimic_5x200'])!r}])],
    executor=dict(type="local"), device="cpu", leaderboard=None,
)
""")
    assert main(["bench", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "1 done, 0 skipped, 0 failed, 0 blocked, 1 n/a" in out
    (record,) = records(work / "results")
    assert record["status"] == "ok" and record["identity"]["checkpoint_sha256"].startswith("import:")
    assert record["checkpoint"]["load_report"]["counts"]["missing"] == 0
    assert main(["bench", str(cfg), "--dry-run"]) == 0
    assert "1/1 evaluation records" in capsys.readouterr().out
