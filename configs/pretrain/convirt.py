# ConVIRT at literature scale (paper variant): ResNet-50 + Bio_ClinicalBERT,
# lambda = 0.75, tau = 0.1, 512-d projections with one hidden layer and ReLU.
# Not yet reproduced: the paper freezes the text embeddings and first 6 BERT
# layers and samples one report sentence per step; here both encoders train on
# the full report text.
_base_ = [
    "../_base_/models/resnet50_clinicalbert.py",
    "../_base_/datasets/mimic_pairs_224.py",
    "../_base_/schedules/mgca_recipe.py",
]

model = dict(
    embed_dim=512,
    image_projection=dict(type="projection", num_layers=2, hidden_dim=2048, norm=None),
    text_projection=dict(type="projection", num_layers=2, hidden_dim=2048, norm=None),
    objectives=[dict(type="global_infonce", temperature=0.1, image_to_text_weight=0.75, text_to_image_weight=0.25, name="convirt")],
)
method = dict(name="ConVIRT", reference="Zhang et al., arXiv 2010.00747", variant="paper")
