# PLACE's ablation grid (spec place.md) on the synthetic world: ITA; +PCMA; +CCE; full;
# PCMA replaced by MGCA's CPA; query counts 4/8/16/32 -- each pretrained with the same tiny
# encoders and budget, then scored on the tasks where pathology-level alignment should show:
# zero-shot and retrieval on the 5x8 sets, the laterality/negation/severity probes, and the
# linear probe. Run: place-bench bench benchmarks/place_ablations (CPU, tens of minutes).
_work = "work/place_ablations"
_manifests = _work + "/manifests"
_ablations = ["ita", "ita_pcma", "ita_cce", "ita_pcma_cce", "ita_cpa_cce",
              "queries_4", "queries_8", "queries_16", "queries_32"]

benchmark = dict(
    work_dir=_work,
    results_dir=_work + "/results",
    prepare=[
        dict(dataset="chexpert", size="tiny", protocol="suite", out=_manifests,
             settings=dict(n_per_class=8, n_valid=10)),
        dict(dataset="mimic_5x200", native="mimic_cxr", size="tiny", protocol="suite", out=_manifests,
             settings=dict(n_per_class=8)),
    ],
    methods=[dict(name=a, pretrain=f"pretrain/place_ablations/{a}", cfg_options={"method.label": f"PLACE ablation: {a}"})
             for a in _ablations],
    tasks=[
        dict(task="cls_linear", datasets=[_manifests + "/chexpert"], fractions=[0.1, 1.0], seeds=[0, 1, 2]),
        dict(task="zeroshot", datasets=[_manifests + "/mimic_5x200"]),
        dict(task="retrieval", datasets=[_manifests + "/mimic_5x200"]),
        dict(task="probes", datasets=["synthetic_probes:laterality_effusion", "synthetic_probes:negation_effusion",
                                      "synthetic_probes:severity_effusion"], seeds=[0]),
    ],
    executor=dict(type="local"),
    device="cpu",
    leaderboard=dict(out=_work + "/leaderboard", formats=["md", "html", "csv", "png"]),
)
