# Semantic segmentation on mmsegmentation: the suite's card (datasets.md section 2.5; MGCA's setup
# with per-image Dice averaged over images, its positive-only variant and dataset-level Dice, each
# with a bootstrap interval; nested stratified fractions; seeds 0/1/2).
# The image encoder is frozen (eval mode: BatchNorm statistics stay fixed) inside PlaceBenchBackbone;
# decoder: SETR-PUP for ViTs, UPerNet (+ FCN auxiliary on C4, weight 0.4) for CNNs; 2-class softmax CE.
task = dict(
    type="seg",
    pipeline=None,  # None: the checkpoint's pretraining pipeline (section 2.0, 256 -> 224 crop for real models)
    mask_from="auto",  # SIIM: canonical RLE; RSNA: box masks incl. negatives; Object-CXR: shapes
    head="auto",
    head_channels=None,  # 256 (setr / fcn), 512 (upernet)
    aux_head=True,
    loss="ce",
    frozen=True,
    lr=5e-4,  # MGCA: AdamW lr 5e-4, wd 0.05
    betas=(0.9, 0.999),
    weight_decay=0.05,
    batch_size=8,  # MGCA: SIIM 8, RSNA 16
    max_iters=2000,
    warmup_iters=0,
    schedule="constant",
    val_interval=100,  # iterations between whole-validation-set per-image Dice scores
    val_begin=1,
    patience=10,  # validation rounds without improvement
    amp="auto",
    num_workers=4,
    n_resamples=1000,
    by_dataset=dict(
        rsna=dict(batch_size=16),
    ),
)
fractions = [0.01, 0.1, 1.0]
seeds = [0, 1, 2]
