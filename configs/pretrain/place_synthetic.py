# PLACE (reconstruction, spec/place.md) at the tiny synthetic scale:
# ITA + PCMA (VPOE queries vs sentence-level T-PORs) + CCE (report-conditioned
# patch-correlation prediction from a masked pass).
_base_ = [
    "../_base_/models/tiny_vit_bert.py",
    "../_base_/datasets/synthetic_pairs.py",
    "../_base_/schedules/tiny_iters.py",
]

_ita = dict(type="global_infonce", temperature=0.07, name="ita")
_pcma = dict(type="place_pcma", num_queries=16, depth=2, mode="late_interaction", temperature=0.07)
_cce = dict(type="place_cce", mask_ratio=0.5, teacher="stopgrad", loss="kl",
            teacher_temperature=0.04, student_temperature=0.1)

model = dict(
    image_encoder=dict(patch_masking=True),
    image_projection=dict(type="projection", num_layers=2),
    text_projection=dict(type="projection", num_layers=2),
    image_local_projection=dict(type="projection", num_layers=2),
    text_local_projection=dict(type="projection", num_layers=2),
    objectives=[_ita, _pcma, _cce],
)
method = dict(
    name="PLACE",
    reference="Wang et al., arXiv 2506.10573",
    reconstruction=True,
    spec="shared/spec/place.md",
    label="PLACE (reconstructed)",
)
seed = 0
