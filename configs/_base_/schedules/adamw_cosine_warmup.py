# AdamW with linear warm-up then cosine decay, by iteration, gradient clipping.
# mmengine Runner keys; the pretraining engine reads them as they are.
_max_iters = 1000
_warmup_iters = 50

optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-5, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=_warmup_iters),
    dict(type="CosineAnnealingLR", by_epoch=False, begin=_warmup_iters, end=_max_iters, eta_min=1e-8),
]
train_cfg = dict(by_epoch=False, max_iters=_max_iters)
