# A seconds-scale benchmark on the synthetic world (tests, smoke runs): COVIDx emulated and
# prepared, a 4-iteration ConVIRT pretraining, a random-init row, a linear probe and the
# negation probe, then the leaderboard. Run: place-bench bench benchmarks/tiny_synthetic
# (--dry-run prints the plan; re-running skips every finished unit).
_work = "work/bench_tiny"

benchmark = dict(
    work_dir=_work,
    results_dir=_work + "/results",
    prepare=[dict(dataset="covidx", size="tiny", protocol="suite", out=_work + "/manifests")],
    methods=[
        dict(name="convirt-tiny", pretrain="pretrain/convirt_synthetic",
             cfg_options={"train_cfg.max_iters": 4, "pretrain.log_interval": 2,
                          "data.train.source.n_train": 32, "data.train.source.n_test": 8}),
        dict(name="random-init", config="eval/random_init_tiny_vit"),
    ],
    tasks=[
        dict(task="cls_linear", datasets=[_work + "/manifests/covidx"], fractions=[1.0], seeds=[0],
             cfg_options={"task.n_resamples": 100, "task.max_epochs": 5}),
        dict(task="probes", datasets=["synthetic_probes:negation_effusion"], seeds=[0],
             cfg_options={"task.n_resamples": 100}),
    ],
    executor=dict(type="local"),
    device="cpu",
    leaderboard=dict(out=_work + "/leaderboard", formats=["md", "html", "csv", "png"]),
)
