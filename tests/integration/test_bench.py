"""``place-bench bench``: a benchmark config end to end, resumed, with failures, and under submitit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from place_bench.cli import main


def record_mtimes(results: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in results.glob("*/*/*.json") if not p.name.startswith(".")}


def test_tiny_benchmark_runs_end_to_end_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the config's work/ paths (and the synthetic data) land here
    work = tmp_path / "work" / "bench_tiny"

    assert main(["bench", "benchmarks/tiny_synthetic", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[todo] pretrain convirt-tiny" in out and "[todo] cls_linear random-init covidx" in out
    assert "[skip] probes random-init" in out and "needs the text encoder" in out
    assert "5 units (0 done, 5 left)" in out
    assert not (work / "results").exists()

    assert main(["bench", "benchmarks/tiny_synthetic"]) == 0
    out = capsys.readouterr().out
    assert "5 done, 0 skipped, 0 failed, 0 blocked, 1 n/a" in out
    results = work / "results"
    records = [json.loads(p.read_text()) for p in results.glob("*/*/*.json")]
    assert {(r["task"], r["dataset"], r["method"]["label"]) for r in records} == {
        ("cls_linear", "covidx", "ConVIRT"), ("cls_linear", "covidx", "Random init (tiny ViT)"),
        ("probes", "synthetic_probe_negation_effusion", "ConVIRT")}
    assert len(records) == 4 and all(r["status"] == "ok" for r in records)
    board = work / "leaderboard"
    assert {"leaderboard.md", "leaderboard.html", "leaderboard.csv"} <= {p.name for p in board.iterdir()}
    assert "ConVIRT" in (board / "leaderboard.md").read_text()
    convirt_mentions = (board / "leaderboard.md").read_text().count("ConVIRT")
    assert (work / "pretrain" / "convirt-tiny" / "model.safetensors").is_file()

    before = record_mtimes(results)
    ckpt_mtime = (work / "pretrain" / "convirt-tiny" / "model.safetensors").stat().st_mtime_ns
    assert main(["bench", "benchmarks/tiny_synthetic", "--dry-run"]) == 0
    assert "5 units (5 done, 0 left); 4/4 evaluation records" in capsys.readouterr().out
    assert main(["bench", "benchmarks/tiny_synthetic"]) == 0
    out = capsys.readouterr().out
    assert "0 done, 5 skipped, 0 failed, 0 blocked" in out and "0 records written" in out
    assert record_mtimes(results) == before
    assert (work / "pretrain" / "convirt-tiny" / "model.safetensors").stat().st_mtime_ns == ckpt_mtime

    # The method's recipe changes (4 -> 3 iterations): its checkpoint is stale, refused, then retrained on request.
    suite_config = Path(__file__).resolve().parents[2] / "configs" / "benchmarks" / "tiny_synthetic.py"
    changed = tmp_path / "changed.py"
    changed.write_text(suite_config.read_text().replace('"train_cfg.max_iters": 4', '"train_cfg.max_iters": 3'))
    assert main(["bench", str(changed), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "[stale] pretrain convirt-tiny" in out and "train_cfg.max_iters: trained 4, now 3" in out
    assert main(["bench", str(changed)]) == 2
    assert "--retrain-stale" in capsys.readouterr().err
    assert (work / "pretrain" / "convirt-tiny" / "model.safetensors").stat().st_mtime_ns == ckpt_mtime
    assert main(["bench", str(changed), "--retrain-stale"]) == 0
    out = capsys.readouterr().out
    assert "0 failed" in out and "0 records written" not in out
    (aside,) = (work / "pretrain").glob("convirt-tiny.stale-*")
    assert (aside / "model.safetensors").stat().st_mtime_ns == ckpt_mtime
    # The old checkpoint's 3 records (linear probe, 2 probe records) and their predictions are kept, off the leaderboard.
    superseded = sorted((results / ".superseded" / aside.name).glob("*/*/*"))
    assert sorted(p.suffix for p in superseded) == [".json"] * 3 + [".npz"] * 3
    assert len(list(results.glob("*/*/*.json"))) == 4
    assert (board / "leaderboard.md").read_text().count("ConVIRT") == convirt_mentions  # no second ConVIRT row
    card = json.loads((work / "pretrain" / "convirt-tiny" / "model.json").read_text())
    assert card["config"]["train_cfg"]["max_iters"] == 3
    assert main(["bench", str(changed), "--dry-run"]) == 0
    assert "[done] pretrain convirt-tiny" in capsys.readouterr().out


def _write_config(path: Path, work: Path, methods: str, tasks: str, executor: str = 'dict(type="local")') -> Path:
    path.write_text(f"""
benchmark = dict(
    work_dir={str(work)!r}, results_dir={str(work / 'results')!r},
    methods={methods},
    tasks={tasks},
    executor={executor}, device="cpu",
    leaderboard=dict(out={str(work / 'board')!r}, formats=["md"]),
)
""")
    return path


RANDOM = 'dict(name="random-init", config="eval/random_init_tiny_vit")'


def test_failing_units_are_recorded_and_the_rest_completes(tiny_world, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "bench"
    broken = ('dict(name="broken", pretrain="pretrain/convirt_synthetic", cfg_options={"train_cfg.max_iters": 2, '
              f'"data.train.source": None, "data.train.manifest": {str(tmp_path / "missing.parquet")!r}}})')
    tasks = (f'[dict(task="cls_linear", datasets=[{str(tiny_world["covidx"])!r}, {str(tmp_path / "nowhere")!r}], '
             'fractions=[1.0], seeds=[0], cfg_options={"task.n_resamples": 100, "task.max_epochs": 3})]')
    cfg = _write_config(tmp_path / "bench_cfg.py", work, f"[{broken}, {RANDOM}]", tasks)
    assert main(["bench", str(cfg)]) == 1
    out = capsys.readouterr().out
    assert "1 done, 0 skipped, 2 failed, 2 blocked" in out
    assert "blocked: cls_linear broken covidx: pretraining of broken failed" in out
    failures = [json.loads(line) for line in (work / "failures.jsonl").read_text().splitlines()]
    assert {(f["kind"], f["unit"].split()[1]) for f in failures} == {("pretrain", "broken"), ("eval", "random-init")}
    assert "nowhere" in next(f["error"] for f in failures if f["kind"] == "eval")
    records = [json.loads(p.read_text()) for p in (work / "results").glob("*/*/*.json")]
    assert [(r["task"], r["dataset"], r["status"]) for r in records] == [("cls_linear", "covidx", "ok")]
    assert (work / "board" / "leaderboard.md").is_file()


def test_a_task_that_raises_is_recorded_failed(tiny_world, tmp_path, monkeypatch, capsys):
    from place_bench.engine.evaluate import build_task as real_build_task

    def build_task(cfg):
        task = real_build_task(cfg)

        def run(ctx, units):
            raise RuntimeError("boom")
            yield  # pragma: no cover

        task.run = run
        return task

    monkeypatch.setattr("place_bench.engine.evaluate.build_task", build_task)
    tasks = (f'[dict(task="cls_linear", datasets=[{str(tiny_world["covidx"])!r}], fractions=[0.5, 1.0], seeds=[0], '
             'cfg_options={"task.n_resamples": 100})]')
    cfg = _write_config(tmp_path / "bench_cfg.py", tmp_path / "bench", f"[{RANDOM}]", tasks)
    assert main(["bench", str(cfg)]) == 1
    assert "0 done, 0 skipped, 1 failed" in capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in (tmp_path / "bench" / "results").glob("*/*/*.json")]
    assert len(records) == 2 and {r["status"] for r in records} == {"failed"}
    assert all("boom" in r["error"] for r in records)


def test_submitit_local_executor_runs_an_eval_unit(tiny_world, tmp_path, monkeypatch, capsys):
    pytest.importorskip("submitit")
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "bench"
    tasks = (f'[dict(task="cls_linear", datasets=[{str(tiny_world["covidx"])!r}], fractions=[1.0], seeds=[0], '
             'cfg_options={"task.n_resamples": 100, "task.max_epochs": 3})]')
    executor = f'dict(type="submitit_local", folder={str(tmp_path / "jobs")!r}, timeout_min=10)'
    cfg = _write_config(tmp_path / "bench_cfg.py", work, f"[{RANDOM}]", tasks, executor)
    assert main(["bench", str(cfg)]) == 0
    assert "1 done, 0 skipped, 0 failed" in capsys.readouterr().out
    records = [json.loads(p.read_text()) for p in (work / "results").glob("*/*/*.json")]
    assert [(r["task"], r["status"]) for r in records] == [("cls_linear", "ok")]
    assert list((tmp_path / "jobs").glob("*_result.pkl"))


def test_control_section_judges_arms_and_writes_its_report(tiny_world, tmp_path, monkeypatch, capsys):
    """Arms of init rows (no pretraining): a criterion that must pass, one that must fail, and a
    separation with one seed per arm (undetermined); the verdict is printed and written."""
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "bench"
    methods = "[" + ", ".join(
        f'dict(name="r{s}", config="eval/random_init_tiny_vit", init_seed={s})' for s in range(3)) + "]"
    tasks = (f'[dict(task="cls_linear", datasets=[{str(tiny_world["covidx"])!r}], fractions=[1.0], seeds=[0], '
             'cfg_options={"task.n_resamples": 50, "task.max_epochs": 3})]')
    cfg = _write_config(tmp_path / "bench_cfg.py", work, methods, tasks)
    text = cfg.read_text().rstrip().rstrip(")")
    cfg.write_text(text + """
    control=dict(title="toy control", arms=dict(A=dict(label="two seeds", methods=["r0", "r1"]),
                                                 C=dict(label="one seed", methods=["r2"])),
                 criteria=[dict(name="probe accuracy", task="cls_linear", dataset="covidx", metric="accuracy",
                                checks=[dict(arm="A", min=0.0), dict(exceeds=("A", "C"), by=0.99),
                                        dict(separates=("A", "C"))])]),
)
""")
    assert main(["bench", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "toy control: FAIL (1 pass, 1 fail, 1 undetermined of 3 checks)" in out
    assert "PASS         probe accuracy" in out and "A - C >= 0.99" in out
    report = json.loads((work / "control.json").read_text())
    assert report["passed"] is False and report["counts"] == {"pass": 1, "fail": 1, "undetermined": 1}
    accuracies = [json.loads(p.read_text())["metrics"]["accuracy"]["value"]
                  for p in (work / "results").glob("cls_linear/*/*.json")]
    assert len(accuracies) == 3
    assert sorted(report["values"]["probe accuracy"]["A"]["values"] + report["values"]["probe accuracy"]["C"]["values"]
                  ) == pytest.approx(sorted(accuracies))

    # a control arm naming a method the benchmark does not have is refused at plan time
    cfg.write_text(cfg.read_text().replace('methods=["r2"]', 'methods=["r9"]'))
    assert main(["bench", str(cfg), "--dry-run"]) != 0
    assert "benchmark.control.arms[C]: ['r9'] are not benchmark methods" in capsys.readouterr().err


def test_alignment_control_config_plans_every_arm(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "benchmarks/alignment_control", "--dry-run"]) == 0
    out = capsys.readouterr().out
    for arm in ("aligned", "shuffled"):
        for seed in range(3):
            assert f"[todo] pretrain {arm}-s{seed}" in out
    assert "[todo] pretrain flipped-s0" in out and "flipped-s1" not in out   # arm D: one seed
    assert "[todo] cls_linear random-s2 chexpert" in out
    assert "[todo] zeroshot shuffled-s1 mimic_5x200" in out and "[todo] det aligned-s0 object_cxr" in out


def test_eta_weighs_pending_units_by_their_kind(monkeypatch):
    """Two pretrainings of 100 s and many 1-s evaluations: the ETA counts each kind at its own pace."""
    from place_bench.engine import bench

    clock = [0.0]
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock[0])
    progress = bench._Progress(total=12, done=0, fancy=False, pending={"pretrain": 2, "eval": 10})
    progress.log = lambda message: None
    progress.start("p1", "pretrain")
    clock[0] = 100.0
    progress.finish("p1", "done")
    assert progress._eta() == "100 s + 10 eval not timed yet"  # no evaluation has run: no pace for them
    progress.start("p2", "pretrain")
    clock[0] = 200.0
    progress.finish("p2", "done")
    progress.start("e1", "eval")
    clock[0] = 201.0
    progress.finish("e1", "done")
    assert progress._eta() == "9 s"     # 9 evaluations at 1 s each, no pretraining left
    progress.finish("e2", "blocked", started=False, kind="eval")
    assert progress._eta() == "8 s"
