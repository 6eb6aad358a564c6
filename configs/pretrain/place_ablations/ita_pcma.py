_base_ = ["../place_synthetic.py"]
model = dict(image_encoder=dict(patch_masking=False), objectives=[{{_base_._ita}}, {{_base_._pcma}}])
method = dict(variant="ablation: ITA + PCMA")
