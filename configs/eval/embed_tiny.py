# Tiny random encoders at 64 px: the fastest config that builds every component.
_base_ = ["../_base_/models/tiny_vit_bert.py", "../_base_/datasets/cxr_pipeline_64.py"]
