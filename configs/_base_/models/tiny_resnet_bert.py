# Tiny ResNet (timm resnet10t: one block per stage) + tiny BERT.
_base_ = ["./tiny_text_bert.py"]

model = dict(image_encoder=dict(type="timm", model_name="resnet10t"))
