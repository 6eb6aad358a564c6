# MIMIC-CXR image-report pairs (MGCA protocol) at the shared 224 px pipeline.
# Prepare the manifest first:
#   place-bench data prepare mimic_cxr --root /data/mimic-cxr-jpg --protocol mgca --out work/manifests
_base_ = ["./cxr_pipeline_224.py"]

data = dict(
    train=dict(manifest="work/manifests/mimic_cxr/mgca.parquet", split="train", text="impression_findings"),
    batch_size=144,
    num_workers=8,
)
