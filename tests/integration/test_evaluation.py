"""Downstream evaluation end to end on the tiny synthetic world: tasks, registry, leaderboard."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from place_bench.cli import main

FAST = ["task.n_resamples=200"]


def records(results: Path, task: str | None = None) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(results.glob(f"{task or '*'}/*/*.json"))]


def predictions(record: dict, results: Path) -> dict:
    path = results / record["task"] / record["dataset"] / record["extra"]["files"]["predictions"]
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def run_eval(ckpt, task, manifest, results, *extra):
    return main(["eval", str(ckpt), "--task", task, "--dataset", str(manifest), "--results", str(results),
                 "--work-dir", str(results.parent / "work"), *extra, "--cfg-options", *FAST])


def test_every_task_reaches_the_registry_and_the_leaderboard(tiny_world, tiny_checkpoint, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["chexpert"], results,
                    "--fractions", "0.5", "1", "--seeds", "0", "1") == 0
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["covidx"], results, "--fractions", "1", "--seeds", "0") == 0
    assert run_eval(tiny_checkpoint, "zeroshot", tiny_world["chexpert_5x200"], results) == 0
    assert run_eval(tiny_checkpoint, "retrieval", tiny_world["mimic_5x200"], results) == 0
    probe = tmp_path / "probes"
    from place_bench.plugins.datasets.synthetic.probes_manifest import write_probe_manifest

    manifest = write_probe_manifest(probe, "laterality_effusion", n=6, image_px=64)
    assert run_eval(tiny_checkpoint, "probes", manifest, results, "--seeds", "0") == 0

    found = records(results)
    assert {(r["task"], r["dataset"]) for r in found} == {
        ("cls_linear", "chexpert"), ("cls_linear", "covidx"), ("zeroshot", "chexpert_5x200"),
        ("retrieval", "mimic_5x200"), ("probes", "synthetic_probe_laterality_effusion")}
    assert len(found) == 4 + 1 + 1 + 1 + 2
    for r in found:
        assert r["status"] == "ok" and r["method"]["label"] == "Tiny (random)"
        primary = r["metrics"][r["primary_metric"]]
        assert primary["ci_low"] <= primary["value"] <= primary["ci_high"]
        assert r["manifest"]["fingerprint"].startswith("sha256:") and r["code_version"] and r["packages"]["torch"]
    zeroshot = next(r for r in found if r["task"] == "zeroshot")
    assert set(zeroshot["extra"]["prompts"]) == {"Atelectasis", "Cardiomegaly", "Consolidation", "Edema",
                                                 "Pleural Effusion"}
    assert {"accuracy", "accuracy_znorm", "f1_macro", "auroc_macro"} <= set(zeroshot["metrics"])
    assert {r["variant"] for r in found if r["task"] == "probes"} == {"zeroshot", "linear"}

    capsys.readouterr()
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(results), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Tiny (random)" in text and "Reference (published)" in text
    html = (out / "leaderboard.html").read_text()
    HTMLParser().feed(html)
    assert "<script" in html and "Tiny (random)" in html
    assert list((out / "curves").glob("*.png"))


def test_rerun_skips_finished_units_and_records_are_recomputable(tiny_world, tiny_checkpoint, tmp_path, capsys):
    results = tmp_path / "results"
    args = ("--fractions", "1", "--seeds", "0", "1")
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["chexpert"], results, *args) == 0
    first = {r["key"]: r["finished_at"] for r in records(results)}
    capsys.readouterr()
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["chexpert"], results, *args) == 0
    assert "0 recorded, 2 already there" in capsys.readouterr().out
    assert {r["key"]: r["finished_at"] for r in records(results)} == first
    for record in records(results):
        pred = predictions(record, results)
        # the recorded macro AUROC is sklearn's, on the saved whole-test-set scores
        expected = roc_auc_score(pred["targets"], pred["scores"], average=None)
        scorable = [v for v, col in zip(np.atleast_1d(expected), pred["targets"].T) if len(set(col)) == 2]
        assert record["metrics"]["auroc_macro"]["value"] == pytest.approx(np.mean(scorable))
        assert len(pred["item_ids"]) == record["n_test"]
    assert [r["extra"]["cache_hit"] for r in records(results)] == [False, False]
    # a later run (a new seed) reads the features cached by the first run from disk
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["chexpert"], results, "--fractions", "1", "--seeds", "2") == 0
    assert sorted(r["extra"]["cache_hit"] for r in records(results)) == [False, False, True]


def test_an_interrupted_eval_keeps_finished_units_and_leaves_no_partial_record(tiny_world, tiny_checkpoint,
                                                                                tmp_path, monkeypatch):
    import place_bench.plugins.tasks.linear_probe as linear_probe

    real, calls = linear_probe.train_linear_head, []

    def dies_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C in the second unit
        return real(*args, **kwargs)

    monkeypatch.setattr(linear_probe, "train_linear_head", dies_on_second)
    results = tmp_path / "results"
    code = run_eval(tiny_checkpoint, "cls_linear", tiny_world["covidx"], results, "--fractions", "1", "--seeds", "0", "1", "2")
    assert code == 130
    files = list(results.rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]
    done = records(results)
    assert len(done) == 1 and done[0]["status"] == "ok" and done[0]["seed"] == 0


def test_a_failing_unit_is_recorded_as_failed_and_not_skipped_later(tiny_world, tiny_checkpoint, tmp_path,
                                                                      monkeypatch, capsys):
    import place_bench.plugins.tasks.linear_probe as linear_probe

    real = linear_probe.train_linear_head

    def broken(*args, **kwargs):
        raise RuntimeError("head exploded")

    monkeypatch.setattr(linear_probe, "train_linear_head", broken)
    results = tmp_path / "results"
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["covidx"], results, "--fractions", "1", "--seeds", "0") == 1
    (failed,) = records(results)
    assert failed["status"] == "failed" and "head exploded" in failed["error"]
    monkeypatch.setattr(linear_probe, "train_linear_head", real)
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["covidx"], results, "--fractions", "1", "--seeds", "0") == 0
    (fixed,) = records(results)
    assert fixed["key"] == failed["key"] and fixed["status"] == "ok"


def test_compare_runs_a_paired_test_on_the_same_test_set(tiny_world, tiny_checkpoint, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["covidx"], results, "--fractions", "1", "--seeds", "0", "1") == 0
    a, b = records(results)
    capsys.readouterr()
    assert main(["compare", a["key"][:12], b["key"][:12], "--results", str(results), "--n-resamples", "200"]) == 0
    out = capsys.readouterr().out
    assert "paired bootstrap" in out and "p = " in out
    assert main(["compare", a["key"], a["key"], "--results", str(results), "--n-resamples", "200"]) == 0
    assert "A-B +0.0000" in capsys.readouterr().out


def test_text_tasks_refuse_an_image_only_model_and_init_rows_evaluate(tiny_world, tmp_path, capsys):
    results = tmp_path / "results"
    assert run_eval("eval/random_init_tiny_vit", "zeroshot", tiny_world["chexpert_5x200"], results) == 1
    assert "needs the text encoder" in capsys.readouterr().err
    assert run_eval("eval/random_init_tiny_vit", "cls_linear", tiny_world["covidx"], results,
                    "--fractions", "1", "--seeds", "0") == 0
    (record,) = records(results)
    assert record["checkpoint"]["sha256"].startswith("init:") and record["method"]["label"] == "Random init (tiny ViT)"


def test_unknown_task_key_names_the_key(tiny_world, tiny_checkpoint, tmp_path, capsys):
    assert main(["eval", str(tiny_checkpoint), "--task", "cls_linear", "--dataset", str(tiny_world["covidx"]),
                 "--results", str(tmp_path), "--cfg-options", "task.learning_rate=1"]) == 1
    assert "task.learning_rate" in capsys.readouterr().err


def test_finetune_runs_through_the_cli(tiny_world, tiny_checkpoint, tmp_path):
    results = tmp_path / "results"
    options = ["task.max_iters=4", "task.val_interval=2", "task.num_workers=0",
               "task.by_dataset.covidx.batch_size=8"]
    assert main(["eval", str(tiny_checkpoint), "--task", "cls_finetune", "--dataset", str(tiny_world["covidx"]),
                 "--results", str(results), "--work-dir", str(tmp_path / "work"), "--fractions", "1",
                 "--seeds", "0", "--cfg-options", *FAST, *options]) == 0
    (record,) = records(results)
    assert record["status"] == "ok" and record["primary_metric"] == "accuracy" and record["n_test"] == 20


def test_a_fraction_that_keeps_no_image_fails_alone(tiny_world, tiny_checkpoint, tmp_path, capsys):
    """1 % of the tiny COVIDx train split is no image: that unit is recorded failed, naming the
    manifest and the fraction; the 100 % unit after it is recorded ok."""
    results = tmp_path / "results"
    assert run_eval(tiny_checkpoint, "cls_linear", tiny_world["covidx"], results,
                    "--fractions", "0.01", "1", "--seeds", "0") == 1
    by_fraction = {r["fraction"]: r for r in records(results)}
    assert by_fraction[1.0]["status"] == "ok"
    failed = by_fraction[0.01]
    assert failed["status"] == "failed" and "fraction 0.01" in failed["error"] and "keeps no row" in failed["error"]


def test_a_probe_entry_with_settings_is_generated_and_evaluated(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # synthetic probe sets are written under ./work/synthetic_probes
    results = tmp_path / "results"
    entry = "synthetic_probes:negation_effusion?contrast_gain=2&n=4"
    assert run_eval(tiny_checkpoint, "probes", entry, results, "--seeds", "0") == 0
    found = records(results)
    assert {(r["dataset"], r["status"]) for r in found} == {("synthetic_probe_negation_effusion_gain2.0", "ok")}
    assert len(found) == 2  # the zero-shot and the linear reading
    assert run_eval(tiny_checkpoint, "probes", "synthetic_probes:negation_effusion?gain=2", results) != 0
