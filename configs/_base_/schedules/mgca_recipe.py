# MGCA's recipe: AdamW 2e-5, weight decay 0.05, cosine with 40 % linear warm-up,
# minimum lr 1e-8, 50 epochs, gradient clipping. Epoch-based.
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=2e-5, betas=(0.9, 0.999), weight_decay=0.05),
    clip_grad=dict(max_norm=5.0),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=True, begin=0, end=20, convert_to_iter_based=True),
    dict(type="CosineAnnealingLR", by_epoch=True, begin=20, end=50, eta_min=1e-8, convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=50)
pretrain = dict(checkpoint_interval=2000)
seed = 42
