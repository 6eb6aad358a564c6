# A short AdamW run for tiny synthetic models (tests, the demo): 5 warm-up
# iterations, then cosine decay over the 60 iterations.
_base_ = ["./adamw_cosine_warmup.py"]

optim_wrapper = dict(optimizer=dict(lr=1e-3, weight_decay=0.01))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=5),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=5, end=60, eta_min=1e-5),
]
train_cfg = dict(by_epoch=False, max_iters=60)
pretrain = dict(checkpoint_interval=20, log_interval=10)
