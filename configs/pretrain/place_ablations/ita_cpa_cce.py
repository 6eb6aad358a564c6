_base_ = ["../place_synthetic.py"]
_cpa = dict(type="mgca_cpa", num_prototypes=500, epsilon=0.05, sinkhorn_iterations=3, temperature=0.2,
            freeze_prototypes_epochs=1)
model = dict(objectives=[{{_base_._ita}}, _cpa, {{_base_._cce}}])
model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=True)
method = dict(variant="ablation: ITA + CPA (MGCA prototypes) + CCE")
