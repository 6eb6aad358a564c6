# Literature scale (MGCA / GLoRIA ResNet-50 card): torchvision- or timm-named
# ImageNet ResNet-50 weights and Bio_ClinicalBERT, from local paths.
_base_ = ["./vit_b16_clinicalbert.py"]

model = dict(
    image_encoder=dict(
        _delete_=True,
        type="timm",
        model_name="resnet50",
        pretrained_path="~/.cache/place-bench/weights/resnet50.pth",
    ),
)
