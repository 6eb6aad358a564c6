# Full fine-tuning classification: the suite's BenchX card (datasets.md section 2.2; nested
# stratified fractions, seeds 0/1/2, whole-test-set metrics with bootstrap intervals).
# The whole image encoder trains (a copy; the checkpoint is untouched) with a norm + linear head;
# binary tasks (RSNA's single 'Pneumonia' label) are a 2-way softmax with cross-entropy,
# multi-label (CheXpert's five labels) BCE, multi-class (COVIDx) cross-entropy.
task = dict(
    type="cls_finetune",
    labels_by_dataset=dict(
        chexpert=["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"],
    ),
    uncertain="mgca",
    pipeline=None,  # None: the checkpoint's pretraining pipeline (section 2.0 at 224 px for real models)
    lr=1e-5,
    betas=(0.9, 0.999),
    eps=1e-8,
    weight_decay=0.0,
    batch_size=32,
    max_iters=3000,
    warmup_iters=50,
    warmup_start_factor=1e-3,
    clip_grad=1.0,
    val_interval=100,  # iterations between whole-validation-set scores
    val_begin=1,
    patience=10,  # validation rounds without improvement (F1 binary, macro AUROC multi-label, accuracy multi-class)
    val_metric=None,
    head_norm="batchnorm",
    binary_head="softmax",
    amp="auto",  # mixed precision only where CUDA is available
    num_workers=4,
    n_resamples=1000,
    by_dataset=dict(
        covidx=dict(lr=5e-4, batch_size=128),  # BenchX's COVIDx settings
    ),
)
fractions = [0.01, 0.1, 1.0]
seeds = [0, 1, 2]
