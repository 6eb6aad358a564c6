# ConVIRT as MGCA re-implemented it: tau = 0.07, unweighted sum, 128-d, AdamW 2e-5.
_base_ = ["./convirt.py"]

model = dict(
    embed_dim=128,
    objectives=[dict(type="global_infonce", temperature=0.07, image_to_text_weight=1.0, text_to_image_weight=1.0, name="convirt")],
)
method = dict(name="ConVIRT", reference="Zhang et al., arXiv 2010.00747; MGCA re-implementation", variant="mgca")
