# The alignment control (datasets.md section 4.9): does the suite's pretraining learn from the
# pairing of images and reports, on the synthetic world, on a CPU? Four arms with the same
# architecture and budget (configs/pretrain/alignment_control.py), three pretraining seeds each:
#   A aligned   true image-report pairs
#   B shuffled  reports permuted once across images (text independent of its image)
#   C random    the untrained encoder (lower bound for frozen-feature tasks)
#   D flipped   true pairs, images mirrored left-right with p 0.5 (laterality lost; one seed)
# Evaluated on the small synthetic world (MIMIC-CXR 5x40 zero-shot and retrieval pool, CheXpert
# linear probe at 10 % labels, the laterality and negation probes; segmentation and detection
# with the frozen encoder on the tiny Object-CXR emulation), then the pass criteria of section 4.9 are judged
# and printed (also written to <work_dir>/control.json):
#   zero-shot 5-way accuracy: A >= 0.45, B <= 0.30, A - 2sd > B + 2sd
#   image-to-text P@5 on the 5x40 pool: A >= 0.45, B within 0.20 +- 0.05, separation
#   linear probe macro AUROC at 10 %: A - B >= 0.08, A - C >= 0.10
#   laterality probe (paired prompts): A >= 0.75, B and D within 0.5 +- 0.1; negation: A >= 0.75
#   segmentation Dice (positive images) and detection mAP (frozen encoder): A > B
# Run: place-bench bench benchmarks/alignment_control  (--dry-run prints the plan; a re-run
# skips what is finished and judges the criteria again).
_work = "work/alignment_control"
_m = _work + "/manifests"
_size = "small"
_seeds = [0, 1, 2]
_flip_seeds = [0]          # arm D only has to show laterality lost; one seed keeps the CPU budget
_pairs = {"data.train.manifest": _m + "/mimic_cxr/mgca.parquet"}
_arms = {
    "aligned": ("A", "aligned pairs", {}),
    "shuffled": ("B", "shuffled pairs", {"data.train.pairing": "shuffled"}),
    "flipped": ("D", "aligned pairs, random left-right flips", {"data.train.hflip": 0.5}),
}


def _pretrained(arm, seed):
    letter, words, options = _arms[arm]
    return dict(name=f"{arm}-s{seed}", pretrain="pretrain/alignment_control",
                cfg_options={**_pairs, **options, "seed": seed, "data.train.pairing_seed": seed,
                             "method.name": f"control-{arm}",
                             "method.label": f"control {letter}: {words} (seed {seed})"})


def _seeds_of(arm):
    return _flip_seeds if arm == "flipped" else _seeds


_methods = [_pretrained(arm, s) for arm in _arms for s in _seeds_of(arm)] + [
    # arm C: the same architecture, untrained (weights drawn from init_seed)
    dict(name=f"random-s{s}", config="pretrain/alignment_control", init_seed=s,
         cfg_options={"method.name": "control-random", "method.label": f"control C: random init (seed {s})"})
    for s in _seeds]
_names = {arm: [f"{arm}-s{s}" for s in _seeds_of(arm)] for arm in (*_arms, "random")}
_text = _names["aligned"] + _names["shuffled"] + _names["flipped"]
_ab = _names["aligned"] + _names["shuffled"]

benchmark = dict(
    work_dir=_work,
    results_dir=_work + "/results",
    prepare=[
        dict(dataset="mimic_cxr", protocol="mgca", size=_size, out=_m),
        dict(dataset="mimic_5x200", native="mimic_cxr", protocol="suite", size=_size, out=_m,
             settings=dict(n_per_class=40)),
        dict(dataset="chexpert", protocol="suite", size=_size, out=_m, settings=dict(n_per_class=40, n_valid=200)),
        # dense tasks on the tiny Object-CXR emulation (its shapes as masks and boxes): A > B only,
        # at a CPU-friendly cost (tiny SIIM's suite split has a single test image)
        dict(dataset="object_cxr", protocol="suite", size="tiny", out=_m),
    ],
    methods=_methods,
    tasks=[
        dict(task="zeroshot", datasets=[_m + "/mimic_5x200"], methods=_text),
        dict(task="retrieval", datasets=[_m + "/mimic_5x200"], methods=_text),
        dict(task="cls_linear", datasets=[_m + "/chexpert"], fractions=[0.1], seeds=[0],
             methods=_names["aligned"] + _names["shuffled"] + _names["random"]),
        dict(task="probes", datasets=["synthetic_probes:laterality_effusion", "synthetic_probes:negation_effusion"],
             seeds=[0], methods=_text, cfg_options={"task.variants": ["zeroshot"]}),
        dict(task="seg", datasets=[_m + "/object_cxr"], fractions=[1.0], seeds=[0], methods=_ab,
             cfg_options={"task.max_iters": 40, "task.val_interval": 20, "task.num_workers": 0}),
        dict(task="det", datasets=[_m + "/object_cxr"], fractions=[1.0], seeds=[0], methods=_ab,
             cfg_options={"task.max_epochs": 5, "task.num_workers": 0}),
    ],
    executor=dict(type="local"),
    device="cpu",
    leaderboard=dict(out=_work + "/leaderboard", formats=["md", "html", "csv", "png"]),
    control=dict(
        title="alignment control",
        out=_work + "/control.json",
        arms=dict(
            A=dict(label="aligned", methods=_names["aligned"]),
            B=dict(label="shuffled", methods=_names["shuffled"]),
            C=dict(label="random init", methods=_names["random"]),
            D=dict(label="flip-augmented", methods=_names["flipped"]),
        ),
        criteria=[
            dict(name="zero-shot 5-way accuracy", task="zeroshot", dataset="mimic_5x200", metric="accuracy",
                 checks=[dict(arm="A", min=0.45), dict(arm="B", max=0.30), dict(separates=("A", "B"))]),
            dict(name="image-to-text P@5", task="retrieval", dataset="mimic_5x200", metric="i2t_precision@5",
                 checks=[dict(arm="A", min=0.45), dict(arm="B", near=0.20, tol=0.05), dict(separates=("A", "B"))]),
            dict(name="linear probe macro AUROC, 10 %", task="cls_linear", dataset="chexpert", fraction=0.1,
                 metric="auroc_macro",
                 checks=[dict(exceeds=("A", "B"), by=0.08), dict(exceeds=("A", "C"), by=0.10),
                         dict(separates=("A", "B"))]),
            dict(name="laterality probe accuracy", task="probes", dataset="synthetic_probe_laterality_effusion",
                 variant="zeroshot", metric="accuracy",
                 checks=[dict(arm="A", min=0.75), dict(arm="B", near=0.5, tol=0.1), dict(arm="D", near=0.5, tol=0.1),
                         dict(separates=("A", "B"))]),
            dict(name="negation probe accuracy", task="probes", dataset="synthetic_probe_negation_effusion",
                 variant="zeroshot", metric="accuracy", checks=[dict(arm="A", min=0.75)]),
            dict(name="segmentation Dice, positive images (frozen)", task="seg", dataset="object_cxr", fraction=1.0,
                 metric="dice_positive",
                 checks=[dict(exceeds=("A", "B"))]),
            dict(name="detection mAP (frozen)", task="det", dataset="object_cxr", fraction=1.0, metric="map",
                 checks=[dict(exceeds=("A", "B"))]),
        ],
    ),
)
