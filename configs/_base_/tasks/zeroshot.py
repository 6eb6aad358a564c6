# Zero-shot classification (datasets.md section 2.3): max over each class's prompts of the
# image-prompt cosine; raw arg-max accuracy (primary, non-transductive) and GLoRIA's
# per-class z-normalized accuracy, macro-F1 and macro AUROC, all over the whole set.
task = dict(type="zeroshot", split="test", n_prompts=5, prompt_seed=6, procedure="suite", n_resamples=1000)
seeds = [0]  # the bootstrap seed: zero-shot has no training
