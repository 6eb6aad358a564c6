# A few iterations of AdamW for tiny synthetic runs (tests, the demo).
_base_ = ["./adamw_cosine_warmup.py"]

optim_wrapper = dict(optimizer=dict(lr=1e-4))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=2, end=20, eta_min=1e-6),
]
train_cfg = dict(by_epoch=False, max_iters=20)
pretrain = dict(checkpoint_interval=10, log_interval=5)
