# The real-data benchmark of the MGCA protocol (datasets.md section 2; reference rows in
# registry/reference): MIMIC-CXR pretraining of PLACE (reconstruction), MGCA, GLoRIA and
# ConVIRT at literature scale, then every downstream task and dataset of the protocol.
# Before running, prepare the user's own copies (no download):
#   place-bench data prepare mimic_cxr --root MIMIC --protocol mgca --out manifests
#   place-bench data prepare chexpert|rsna|covidx|siim|object_cxr --root ... --protocol suite --out manifests
#   place-bench data prepare chexpert_5x200 / mimic_5x200 ... --protocol suite --out manifests
#   place-bench data prepare iu_xray --protocol r2gen ...; mimic_rrg --protocol r2gen --set image_dir=...
# and set _manifests (and the pretraining configs' local weight paths). GPUs: run with
# executor=dict(type="submitit", slurm_partition=..., pretrain=dict(tasks_per_node=N, gpus_per_node=N)).
_work = "work/mgca_protocol"
_manifests = "manifests"
_mimic = dict(**{"data.train.source": None, "data.train.manifest": _manifests + "/mimic_cxr/mgca.parquet"})


def _m(name):
    return f"{_manifests}/{name}"


benchmark = dict(
    work_dir=_work,
    results_dir=_work + "/results",
    methods=[
        dict(name="place", pretrain="pretrain/place", cfg_options=_mimic),
        dict(name="mgca", pretrain="pretrain/mgca", cfg_options=_mimic),
        dict(name="gloria", pretrain="pretrain/gloria", cfg_options=_mimic),
        dict(name="convirt", pretrain="pretrain/convirt", cfg_options=_mimic),
    ],
    tasks=[
        dict(task="cls_linear", datasets=[_m("chexpert"), _m("rsna"), _m("covidx")]),
        dict(task="cls_finetune", datasets=[_m("rsna"), _m("covidx"), _m("siim")]),
        dict(task="zeroshot", datasets=[_m("chexpert_5x200"), _m("mimic_5x200"), _m("rsna")]),
        dict(task="retrieval", datasets=[_m("mimic_5x200")]),
        dict(task="seg", datasets=[_m("siim"), _m("rsna")]),
        dict(task="det", datasets=[_m("rsna"), _m("object_cxr")]),
        dict(task="rrg", datasets=[_m("iu_xray"), _m("mimic_rrg")]),
    ],
    executor=dict(type="local"),
    device="auto",
    leaderboard=dict(out=_work + "/leaderboard", formats=["md", "html", "csv", "png"]),
)
