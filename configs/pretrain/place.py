# PLACE (reconstruction, spec/place.md) at literature scale: MGCA's encoders
# (ViT-B/16 + Bio_ClinicalBERT first 6 layers, local paths), 128-d, 16 queries,
# on the MIMIC-CXR manifest with MGCA's recipe.
_base_ = [
    "../_base_/models/vit_b16_clinicalbert.py",
    "../_base_/datasets/mimic_pairs_224.py",
    "../_base_/schedules/mgca_recipe.py",
]

model = dict(
    image_encoder=dict(patch_masking=True),
    embed_dim=128,
    image_local_projection=dict(type="projection", num_layers=2, hidden_dim=2048),
    text_local_projection=dict(type="projection", num_layers=2, hidden_dim=2048),
    objectives=[
        dict(type="global_infonce", temperature=0.07, name="ita"),
        dict(type="place_pcma", num_queries=16, depth=2, mode="late_interaction", temperature=0.07),
        dict(type="place_cce", mask_ratio=0.5, teacher="stopgrad", loss="kl",
             teacher_temperature=0.04, student_temperature=0.1),
    ],
)
method = dict(
    name="PLACE",
    reference="Wang et al., arXiv 2506.10573",
    reconstruction=True,
    spec="shared/spec/place.md",
    label="PLACE (reconstructed)",
)
