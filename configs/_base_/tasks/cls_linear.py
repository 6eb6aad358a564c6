# Linear probe on frozen, cached features: the suite's canonical card (MGCA's settings,
# datasets.md section 2.1; nested stratified fractions, seeds 0/1/2, whole-test-set metrics).
task = dict(
    type="cls_linear",
    labels_by_dataset=dict(
        chexpert=["Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Pleural Effusion"],
    ),
    uncertain="mgca",
    pipeline=None,  # None: the checkpoint's pretraining pipeline (section 2.0 at 224 px for real models)
    lr=5e-4,
    weight_decay=1e-6,
    betas=(0.9, 0.999),
    batch_size=48,
    max_epochs=50,
    patience=10,
    n_resamples=1000,
)
fractions = [0.01, 0.1, 1.0]
seeds = [0, 1, 2]
