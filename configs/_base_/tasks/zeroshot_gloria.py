# GLoRIA-compatible zero-shot prompts: GLoRIA's own sampling procedure (one Python random stream
# seeded with 6, classes in vocabulary order). Scores and metrics are the suite's (whole set).
_base_ = ["./zeroshot.py"]

task = dict(variant="gloria", procedure="gloria", prompt_seed=6)
