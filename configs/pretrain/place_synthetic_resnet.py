# PLACE (reconstruction, spec/place.md) at the tiny synthetic scale on a tiny ResNet:
# the objectives of place_synthetic.py with timm resnet10t in place of the tiny ViT.
# The VPOE queries attend to layer3's cells (stride 16: an 8 x 8 grid of the 128 px
# crop); the global embedding pools layer4. CCE hides grid cells by zeroing their pixels.
# This is the tiny scale at which the queries localize (benchmarks/place_localization.py,
# 2026-12-06): after 300 iterations on 512 pairs the query matching the sentence that names
# a finding beats a uniform map on the lesion in 79.8 / 76.3 / 53.5 % of test studies for
# seeds 0 / 1 / 2 (untrained 32.5 / 58.8 / 38.6 %), lesion-share ratio 1.18 / 1.26 / 1.20;
# the tiny ViT of place_synthetic.py hardly learns in a few hundred CPU iterations.
_base_ = ["./place_synthetic.py"]

model = dict(
    image_encoder=dict(_delete_=True, type="timm", model_name="resnet10t", local_feature_index=3, patch_masking=True),
)
data = dict(
    pipeline=dict(resize_to=144, crop=128),
    train=dict(source=dict(image_px=160)),
)
