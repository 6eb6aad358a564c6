_base_ = ["../place_synthetic.py"]
model = dict(image_encoder=dict(patch_masking=False), objectives=[{{_base_._ita}}])
method = dict(variant="ablation: ITA")
