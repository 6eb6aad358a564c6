# ConVIRT as MGCA re-implemented it (unweighted sum of both directions, tau = 0.07)
# at the tiny synthetic scale.
_base_ = ["./convirt_synthetic.py"]

model = dict(
    objectives=[dict(type="global_infonce", temperature=0.07, image_to_text_weight=1.0, text_to_image_weight=1.0, name="convirt")],
)
method = dict(name="ConVIRT", reference="Zhang et al., arXiv 2010.00747; MGCA re-implementation", variant="mgca")
