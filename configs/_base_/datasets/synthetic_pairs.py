# Image-report pairs of the synthetic world at the tiny scale, generated on first
# use into work/synthetic_pairs/ (no prepare needed). To pretrain on a prepared
# manifest instead: --cfg-options data.train.source=None data.train.manifest=PATH
_base_ = ["./cxr_pipeline_64.py"]

data = dict(
    train=dict(source=dict(type="synthetic_pairs", n_train=256, n_test=64, image_px=80), split="train"),
    batch_size=16,
    num_workers=0,
)
