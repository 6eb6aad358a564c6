# The shared pipeline at the tiny synthetic scale (64 px crops).
_base_ = ["./cxr_pipeline_224.py"]

data = dict(pipeline=dict(resize_to=72, crop=64))
