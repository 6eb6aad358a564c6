# MGCA (ITA + CTA + CPA) at the tiny synthetic scale: tiny ViT with its CLS
# attention weighting patches, tiny BERT, local heads for patches and words.
_base_ = [
    "../_base_/models/tiny_vit_bert.py",
    "../_base_/datasets/synthetic_pairs.py",
    "../_base_/schedules/tiny_iters.py",
]

model = dict(
    image_projection=dict(type="projection", num_layers=2),
    text_projection=dict(type="projection", num_layers=2),
    image_local_projection=dict(type="projection", num_layers=2),
    text_local_projection=dict(type="projection", num_layers=2),
    objectives=[
        dict(type="global_infonce", temperature=0.07, name="ita"),
        dict(type="mgca_cta", variant="compat", temperature=0.1),
        dict(type="mgca_cpa", num_prototypes=500, epsilon=0.05, sinkhorn_iterations=3, temperature=0.2,
             freeze_prototypes_epochs=1),
    ],
)
# The prototypes get no gradient during the first epoch (MGCA's freeze), which DDP
# must be told about.
model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=True)
method = dict(name="MGCA", reference="Wang et al., NeurIPS 2022", variant="compat")
seed = 0
