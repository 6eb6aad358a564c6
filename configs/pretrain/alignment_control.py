# The alignment control's common arm (datasets.md section 4.9): CLIP-style global alignment
# (symmetric InfoNCE) of a tiny ResNet (timm resnet10t) and a tiny BERT, with MGCA-style MLP
# projection heads (Linear-BN-ReLU-Linear), on the synthetic MIMIC-CXR emulation (frontal
# images, MGCA caption rule). Calibration (2026-12-06): with linear heads both encoders
# collapse to one embedding within ~20 iterations (off-diagonal cosine 1.000, loss stuck at
# 2 ln B); the batch-normalized hidden layer keeps embeddings apart; a tiny ViT learned
# nothing in 300 iterations where resnet10t's loss fell from 7.0 to 6.4; 1000 iterations (not
# 600) make the aligned arm's zero-shot accuracy separate from the shuffled arm's by > 2 s.d. Every arm of configs/benchmarks/alignment_control.py
# is this config with one factor changed:
#   aligned   as is
#   shuffled  data.train.pairing="shuffled" (reports permuted once across images)
#   flipped   data.train.hflip=0.5 (left-right mirrors: the report's sides stop matching)
# and three pretraining seeds each (seed=0/1/2; the shuffled arm also permutes with that seed).
# data.train.manifest must name a prepared MIMIC-CXR manifest (the benchmark prepares one).
_base_ = [
    "../_base_/models/tiny_resnet_bert.py",
    "../_base_/datasets/cxr_pipeline_64.py",
    "../_base_/schedules/tiny_iters.py",
]

_iters = 1000
data = dict(
    train=dict(manifest=None, split="train", pairing="aligned", hflip=0.0),
    batch_size=32,
    num_workers=0,
)
model = dict(
    image_projection=dict(type="projection", num_layers=2),
    text_projection=dict(type="projection", num_layers=2),
    objectives=[dict(type="global_infonce", temperature=0.07, name="ita")],
)
optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.01))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=20, end=_iters, eta_min=1e-5),
]
train_cfg = dict(by_epoch=False, max_iters=_iters)
pretrain = dict(checkpoint_interval=200, log_interval=50)
method = dict(name="ITA-control", label="ITA (alignment control)",
              reference="datasets.md section 4.9 (alignment control)")
seed = 0
