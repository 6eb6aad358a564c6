# The synthetic world's pathology-level probes (datasets.md section 4.8): paired-prompt zero-shot
# and a linear probe on frozen features, per probe manifest (synthetic_probe_*).
task = dict(type="probes", variants=("zeroshot", "linear"), n_resamples=1000)
seeds = [0, 1, 2]
