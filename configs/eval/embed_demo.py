# The embedded default's encoders (real ImageNet EfficientNet-Lite0 + real MiniLM)
# at the shared 224 px pipeline. Projection heads are randomly initialised until
# pretraining trains them.
_base_ = ["../_base_/models/effnet_lite0_minilm.py", "../_base_/datasets/cxr_pipeline_224.py"]
