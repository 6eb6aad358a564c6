# The "random init" row at the synthetic scale: the tiny ViT image encoder with weights drawn
# from --init-seed, no pretraining (image-only tasks: cls_linear, cls_finetune, probes' linear).
_base_ = ["../_base_/models/tiny_vit_bert.py", "../_base_/datasets/cxr_pipeline_64.py"]

model = dict(text_encoder=None)
method = dict(name="random-init", label="Random init (tiny ViT)")
