# The demo (place-bench demo, make demo) as a benchmark: everything offline on the CPU, on the
# embedded default. Tiny emulations of MIMIC-CXR, CheXpert, COVIDx, SIIM, Object-CXR, IU X-ray and
# R2Gen's MIMIC split in their native formats -> prepare -> PLACE, MGCA, GLoRIA and ConVIRT
# pretrained (60 iterations each) on the prepared MIMIC-CXR manifest, plus a random-init and an
# ImageNet-init row -> linear probe, fine-tune, zero-shot, retrieval, pathology probes,
# segmentation (mmseg), detection (mmdet), report generation -> the leaderboard.
# PLACE and the random-init row get the full demo protocol (fractions 0.1 and 1, seeds 0-2, every
# task); the other methods get a lighter one (fraction 1, seed 0; no fine-tune / dense / RRG) to
# keep the whole run to a few minutes on two CPU cores.
# Run: place-bench demo [--out DIR] (also writes PLACE's query-attention overlays), or
# place-bench bench benchmarks/demo_synthetic (--dry-run prints the plan; re-running skips
# every finished unit). `place-bench demo --out DIR` rewrites every "work/demo" path below.
_work = "work/demo"
_m = _work + "/manifests"
_pairs = {"data.train.source": None, "data.train.manifest": _m + "/mimic_cxr/mgca.parquet"}
_full = ["place", "random-init"]                    # the demo protocol of tools/demo.sh
_extra = ["mgca", "gloria", "convirt", "imagenet-init"]
_text = ["place", "mgca", "gloria", "convirt"]      # zero-shot / retrieval need a text encoder

benchmark = dict(
    work_dir=_work,
    results_dir=_work + "/results",
    prepare=[
        dict(dataset="mimic_cxr", protocol="mgca", out=_m),
        dict(dataset="mimic_5x200", native="mimic_cxr", protocol="suite", out=_m, settings=dict(n_per_class=8)),
        dict(dataset="chexpert", protocol="suite", out=_m, settings=dict(n_per_class=8, n_valid=10)),
        dict(dataset="chexpert_5x200", native="chexpert", protocol="suite", out=_m, settings=dict(n_per_class=8)),
        dict(dataset="covidx", protocol="suite", out=_m),
        dict(dataset="siim", protocol="suite", out=_m),
        dict(dataset="object_cxr", protocol="suite", out=_m),
        dict(dataset="iu_xray", protocol="r2gen", out=_m),
        # R2Gen's MIMIC split reads the images of the MIMIC-CXR tree beside it (same studies).
        dict(dataset="mimic_rrg", protocol="r2gen", out=_m, settings=dict(image_dir="../mimic_cxr/files")),
    ],
    methods=[
        dict(name="place", pretrain="pretrain/place_synthetic", cfg_options=dict(_pairs)),
        dict(name="mgca", pretrain="pretrain/mgca_synthetic", cfg_options=dict(_pairs)),
        dict(name="gloria", pretrain="pretrain/gloria_synthetic", cfg_options=dict(_pairs)),
        dict(name="convirt", pretrain="pretrain/convirt_synthetic", cfg_options=dict(_pairs)),
        dict(name="random-init", config="eval/random_init_tiny_vit", init_seed=0),
        dict(name="imagenet-init", config="eval/imagenet_init_effnet_lite0", init_seed=0),
    ],
    tasks=[
        dict(task="cls_linear", datasets=[_m + "/chexpert", _m + "/covidx"], fractions=[0.1, 1.0], seeds=[0, 1, 2],
             methods=_full),
        dict(task="cls_linear", datasets=[_m + "/chexpert", _m + "/covidx"], fractions=[1.0], seeds=[0],
             methods=_extra),
        dict(task="cls_finetune", datasets=[_m + "/covidx"], fractions=[1.0], seeds=[0], methods=["place"],
             cfg_options={"task.max_iters": 40, "task.val_interval": 10, "task.num_workers": 0,
                          "task.by_dataset.covidx.batch_size": 16}),
        dict(task="zeroshot", datasets=[_m + "/chexpert_5x200", _m + "/mimic_5x200"], methods=_text),
        dict(task="retrieval", datasets=[_m + "/mimic_5x200"], methods=_text),
        dict(task="probes", datasets=["synthetic_probes:laterality_effusion", "synthetic_probes:negation_effusion"],
             seeds=[0], methods=_text),
        # Dense tasks on the real mmsegmentation / mmdetection engines (a few iterations at this size).
        dict(task="seg", datasets=[_m + "/siim", _m + "/object_cxr"], fractions=[1.0], seeds=[0], methods=["place"],
             cfg_options={"task.max_iters": 20, "task.val_interval": 10, "task.num_workers": 0}),
        dict(task="det", datasets=[_m + "/object_cxr"], fractions=[1.0], seeds=[0], methods=["place"],
             cfg_options={"task.max_epochs": 3, "task.num_workers": 0}),
        # Report generation: a small decoder on the frozen encoder, NLG + clinical-efficacy metrics.
        dict(task="rrg", datasets=[_m + "/iu_xray", _m + "/mimic_rrg"], seeds=[0], methods=["place"],
             cfg_options={"task.epochs": 5, "task.num_workers": 0, "task.decoder.num_layers": 1,
                          "task.decoder.hidden_size": 64, "task.decoder.num_heads": 2,
                          "task.decoder.intermediate_size": 128, "task.decoder.visual_layers": 0}),
    ],
    executor=dict(type="local"),
    device="cpu",
    leaderboard=dict(out=_work + "/leaderboard", formats=["md", "html", "csv", "png"]),
)
