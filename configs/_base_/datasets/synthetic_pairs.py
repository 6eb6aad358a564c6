# Image-report pairs of the synthetic MIMIC-CXR emulation at the tiny scale.
# The manifest comes from `place-bench data synth` + `place-bench data prepare
# mimic_cxr`; point data.train.manifest elsewhere with --cfg-options.
_base_ = ["./cxr_pipeline_64.py"]

data = dict(
    train=dict(manifest="work/synthetic/manifests/mimic_cxr/mgca.parquet", split="train"),
    batch_size=8,
    num_workers=0,
)
