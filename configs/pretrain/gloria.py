# GLoRIA at literature scale: ResNet-50 with layer3 regions (1x1 projection to
# 768) and pooled layer4 globals, Bio_ClinicalBERT word features summed over the
# last four layers and over sub-words; Adam-like recipe lr 5e-5, wd 1e-6, clip 0.25.
_base_ = [
    "../_base_/models/resnet50_clinicalbert.py",
    "../_base_/datasets/mimic_pairs_224.py",
    "../_base_/schedules/mgca_recipe.py",
]

model = dict(
    image_encoder=dict(local_feature_index=3),
    text_encoder=dict(num_layers=None, word_pooling="sum", word_layers=4),
    embed_dim=768,
    image_projection=dict(_delete_=True, type="projection"),
    text_projection=dict(_delete_=True, type="projection"),
    image_local_projection=dict(type="projection"),
    objectives=[dict(type="gloria", variant="compat", temp1=4.0, temp2=5.0, temp3=10.0)],
)
optim_wrapper = dict(optimizer=dict(type="AdamW", lr=5e-5, weight_decay=1e-6), clip_grad=dict(max_norm=0.25))
data = dict(batch_size=48)
method = dict(name="GLoRIA", reference="Huang et al., ICCV 2021", variant="compat")
