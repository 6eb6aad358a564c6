_base_ = ["../place_synthetic.py"]
_pcma = dict(type="place_pcma", num_queries=32, depth=2, mode="late_interaction", temperature=0.07)
model = dict(objectives=[{{_base_._ita}}, _pcma, {{_base_._cce}}])
method = dict(variant="ablation: 32 queries")
