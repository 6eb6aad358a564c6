# Literature scale (MGCA ViT-B/16 card): ViT-B/16 with ImageNet weights and
# Bio_ClinicalBERT, first 6 layers. Both paths are local: put the files there or
# override, e.g. --cfg-options model.text_encoder.model_path=/models/Bio_ClinicalBERT
model = dict(
    image_encoder=dict(
        type="timm",
        model_name="vit_base_patch16_224",
        pretrained_path="~/.cache/place-bench/weights/vit_base_patch16_224.safetensors",
        drop_path_rate=0.1,
    ),
    text_encoder=dict(
        type="hf_text",
        model_path="~/.cache/place-bench/weights/Bio_ClinicalBERT",
        num_layers=6,
        max_length=128,
    ),
    embed_dim=128,
    image_projection=dict(type="projection", num_layers=2, hidden_dim=2048),
    text_projection=dict(type="projection", num_layers=2, hidden_dim=2048),
)
