# Report generation: the R2Gen card (datasets.md sections 1.7 and 2.7) on the pretrained image encoder,
# frozen as in BenchX (eval mode, no gradient). IU X-ray: both views (frontal + lateral), their local
# tokens concatenated; MIMIC-CXR (R2Gen's annotation): one view. R2Gen text cleaning, a word vocabulary
# from the cleaned training reports (count >= 3 IU / 10 MIMIC, else <unk>), max 60 / 100 ids.
# Head at R2Gen scale: 3 Transformer encoder layers over the projected visual tokens + a 3-layer,
# 512-wide, 8-head transformers BertLMHeadModel decoder (FFN 512) with cross-attention.
# Adam (amsgrad) lr 1e-4 (5e-5 for the encoder when finetune_encoder=True), wd 5e-5, StepLR per epoch,
# gradient value clip 0.1, batch 16; model selection on validation BLEU-4 (truncated references).
# Metrics on the whole test split: BLEU-1..4, METEOR (needs Java), ROUGE-L against R2Gen's truncated,
# <unk>-mapped references (primary bleu4) and against full cleaned references (full_*); CIDEr (not
# bounded by 1) in extra.unbounded_metrics; clinical efficacy from the suite's rule labeler (ce_*,
# and ce_latent_* on synthetic data). Bootstrap intervals over studies (200 resamples: corpus
# BLEU / METEOR / CIDEr are recomputed on every resample).
task = dict(
    type="rrg",
    pipeline=None,  # None: the checkpoint's pretraining pipeline (section 2.0 at 224 px for real models)
    views=None,  # None: 2 for iu_xray, 1 otherwise
    decoder=dict(num_layers=3, hidden_size=512, num_heads=8, intermediate_size=512, dropout=0.1, visual_layers=3),
    finetune_encoder=False,
    lr=1e-4,
    lr_visual=5e-5,
    weight_decay=5e-5,
    betas=(0.9, 0.999),
    amsgrad=True,
    clip_grad_value=0.1,
    batch_size=16,
    train_augment=True,  # section 2.0 random crop, never flipped (pitfall 17)
    val_interval=1,  # epochs between whole-validation-set BLEU-4 scores
    patience=50,  # validation rounds without improvement
    beam_size=3,
    val_beam_size=None,  # None: beam_size
    trigram_penalty=0.0,  # R2Gen's block_trigrams is inactive in its beam-search path
    nlg_metrics=("bleu", "meteor", "rouge_l", "cider"),
    clinical_efficacy=True,
    ce_uncertain_as_positive=False,
    n_resamples=200,
    num_workers=4,
    by_dataset=dict(
        iu_xray=dict(cleaner="iu_xray", vocab_threshold=3, max_length=60, epochs=100, lr_step=50, lr_gamma=0.1),
        mimic_rrg=dict(cleaner="mimic_cxr", vocab_threshold=10, max_length=100, epochs=30, lr_step=1, lr_gamma=0.8),
    ),
)
seeds = [0, 1, 2]  # R2Gen's own runs used 9223 (IU) / 456789 (MIMIC)
