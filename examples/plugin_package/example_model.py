# A model config that uses the plugin's encoder; everything else is built in.
_base_ = ["../../configs/_base_/models/tiny_text_bert.py"]

model = dict(
    image_encoder=dict(type="example_conv", width=16, depth=3),
    embed_dim=32,
)
