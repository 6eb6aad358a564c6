# Tiny ViT (2 blocks, 64 px input, 8 px patches -> 8 x 8 grid) + tiny BERT.
_base_ = ["./tiny_text_bert.py"]

model = dict(
    image_encoder=dict(
        type="timm",
        model_name="vit_tiny_patch16_224",
        img_size=64,
        patch_size=8,
        depth=2,
        embed_dim=64,
        num_heads=2,
    ),
)
