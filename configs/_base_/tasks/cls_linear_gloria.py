# The GLoRIA-compatible linear-probe card (datasets.md section 2.1, right column), a named variant
# of the suite's cls_linear: Adam, lr 1e-4 (CheXpert) / 5e-4 (RSNA), weight decay 1e-6,
# ReduceLROnPlateau (factor 0.5, patience 5) on the validation loss, gradient clipping 0.25
# (CheXpert), batch 64, <= 50 epochs with early stopping (patience 10). GLoRIA's fp16 is not used.
_base_ = ["./cls_linear.py"]

task = dict(
    variant="gloria",
    optimizer="adam",
    lr=1e-4,
    batch_size=64,
    plateau=dict(factor=0.5, patience=5),
    by_dataset=dict(chexpert=dict(clip_grad=0.25), rsna=dict(lr=5e-4)),
)
