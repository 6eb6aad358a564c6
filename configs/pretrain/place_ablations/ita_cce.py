_base_ = ["../place_synthetic.py"]
model = dict(objectives=[{{_base_._ita}}, {{_base_._cce}}])
method = dict(variant="ablation: ITA + CCE")
