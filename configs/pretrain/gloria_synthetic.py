# GLoRIA at the tiny synthetic scale: a tiny ResNet whose layer3 map gives the
# regions (as GLoRIA's layer3), word features summed over sub-words and over the
# last two layers (GLoRIA: four), regions projected to the text width (GLoRIA's
# 1x1 convolution to 768), global and local losses with tau1, tau2, tau3 = 4, 5, 10.
_base_ = [
    "../_base_/models/tiny_text_bert.py",
    "../_base_/datasets/synthetic_pairs.py",
    "../_base_/schedules/tiny_iters.py",
]

model = dict(
    image_encoder=dict(type="timm", model_name="resnet10t", local_feature_index=3),
    text_encoder=dict(word_pooling="sum", word_layers=2),
    embed_dim=64,  # = the text width: GLoRIA compares raw word features with projected regions
    image_local_projection=dict(type="projection"),
    objectives=[dict(type="gloria", variant="compat")],
)
optim_wrapper = dict(clip_grad=dict(max_norm=0.25))
method = dict(name="GLoRIA", reference="Huang et al., ICCV 2021", variant="compat")
seed = 0
