# MGCA at literature scale: ViT-B/16 + Bio_ClinicalBERT (first 6 layers), 128-d,
# ITA + CTA + CPA, on the MIMIC-CXR manifest with MGCA's recipe.
_base_ = [
    "../_base_/models/vit_b16_clinicalbert.py",
    "../_base_/datasets/mimic_pairs_224.py",
    "../_base_/schedules/mgca_recipe.py",
]

model = dict(
    embed_dim=128,
    image_local_projection=dict(type="projection", num_layers=2, hidden_dim=2048),
    text_local_projection=dict(type="projection", num_layers=2, hidden_dim=2048),
    objectives=[
        dict(type="global_infonce", temperature=0.07, name="ita"),
        dict(type="mgca_cta", variant="compat", temperature=0.1),
        dict(type="mgca_cpa", num_prototypes=500, epsilon=0.05, sinkhorn_iterations=3, temperature=0.2,
             freeze_prototypes_epochs=1),
    ],
)
model_wrapper_cfg = dict(type="MMDistributedDataParallel", find_unused_parameters=True)
method = dict(name="MGCA", reference="Wang et al., NeurIPS 2022", variant="compat")
