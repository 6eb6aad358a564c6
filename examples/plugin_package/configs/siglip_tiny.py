# SigLIP (pairwise sigmoid loss, objective `siglip` from this plugin package) at the
# suite's tiny synthetic scale: the same tiny ViT + BERT, synthetic image-report
# pairs and 60-iteration schedule as configs/pretrain/convirt_synthetic.py, so the
# two methods' leaderboard rows compare under one protocol.
#
# `place_bench::` names files under the suite's own configs/ folder, wherever the suite is
# installed (plain `_base_` paths are relative to this file).
_base_ = [
    "place_bench::_base_/models/tiny_vit_bert.py",
    "place_bench::_base_/datasets/synthetic_pairs.py",
    "place_bench::_base_/schedules/tiny_iters.py",
]

model = dict(
    objectives=[
        # The paper's initialisation: t = exp(t') with t' = log 10, b = -10; both learnt.
        dict(type="siglip", temperature_init=10.0, bias_init=-10.0, learnable=True),
    ],
)
# The learnt temperature and bias are scalars of the loss, not weights: no weight decay
# (mmengine's paramwise_cfg matches the parameter names "...objectives.0.log_temperature").
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={
    "objectives.0.log_temperature": dict(decay_mult=0.0),
    "objectives.0.bias": dict(decay_mult=0.0),
}))
# The method card: `label` names the leaderboard row of every checkpoint this config trains.
method = dict(
    name="SigLIP",
    label="SigLIP (example plugin)",
    reference="Zhai et al., ICCV 2023, arXiv 2303.15343",
)
seed = 0
