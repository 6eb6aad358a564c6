# ConVIRT (paper variant: lambda = 0.75, tau = 0.1) at the tiny synthetic scale.
_base_ = [
    "../_base_/models/tiny_vit_bert.py",
    "../_base_/datasets/synthetic_pairs.py",
    "../_base_/schedules/tiny_iters.py",
]

model = dict(
    objectives=[
        dict(type="global_infonce", temperature=0.1, image_to_text_weight=0.75, text_to_image_weight=0.25, name="convirt"),
    ],
)
method = dict(name="ConVIRT", reference="Zhang et al., arXiv 2010.00747", variant="paper")
seed = 0
