"""BenchX's weights (github.com/yangzhou12/BenchX): image encoders only.

``preprocess/model_converters/medvlm2mmseg.py`` writes each method's image encoder with its
prefix stripped: ResNet-50s (ConVIRT, GLoRIA, MGCA-R50) keep torchvision's names
(``conv1``, ``layer1``...), ViTs (MGCA-ViT) take MMSegmentation's names (``patch_embed.projection``,
``layers.N.{ln1,attn.attn.in_proj_*,attn.attn.out_proj,ln2,ffn.layers.0.0,ffn.layers.1}``, the
final norm as ``ln1``). The ResNet adapter also reads BenchX's unconverted checkpoints by the
prefixes its configs give (``visual.model.`` ConVIRT, ``gloria.img_encoder.model.`` GLoRIA,
``img_encoder_q.model.`` MGCA), dropping (and listing) everything outside the image encoder.
The imports are image-only: zero-shot, retrieval and probes are not offered.
"""

from __future__ import annotations

from place_bench.hookspecs import hookimpl
from place_bench.model.adapters import CheckpointAdapter, Dim, Drop, KeyRule
from place_bench.plugins.checkpoints import _naming as n

REFERENCE = "github.com/yangzhou12/BenchX: preprocess/model_converters/medvlm2mmseg.py, configs/_base_/models/*.yml"
IMAGE_ONLY = "BenchX's weights hold the image encoder only"
METHOD = dict(name="BenchX import", reference="Zhou et al., NeurIPS 2024 (BenchX)", variant="BenchX weights")

OUTSIDE_ENCODER = Drop(
    r"^(vis_proj|lin_proj|linguistic|gloria|img_encoder_q|text_encoder_q|prototype_layer|patch_local_atten_layer|"
    r"word_local_atten_layer)\.",
    "outside the image encoder of an unconverted BenchX checkpoint (BenchX evaluates the image encoder only)",
)
CLASSIFIER = Drop(r"^fc\.", "an ImageNet classifier head")

MMSEG_VIT_RULES = (
    KeyRule(r"^(cls_token|pos_embed)$", r"image_encoder.model.\1"),
    KeyRule(r"^patch_embed\.projection\.", "image_encoder.model.patch_embed.proj."),
    KeyRule(r"^layers\.(\d+)\.ln1\.", r"image_encoder.model.blocks.\1.norm1."),
    KeyRule(r"^layers\.(\d+)\.ln2\.", r"image_encoder.model.blocks.\1.norm2."),
    KeyRule(r"^layers\.(\d+)\.attn\.attn\.in_proj_(weight|bias)$", r"image_encoder.model.blocks.\1.attn.qkv.\2"),
    KeyRule(r"^layers\.(\d+)\.attn\.attn\.out_proj\.", r"image_encoder.model.blocks.\1.attn.proj."),
    KeyRule(r"^layers\.(\d+)\.ffn\.layers\.0\.0\.", r"image_encoder.model.blocks.\1.mlp.fc1."),
    KeyRule(r"^layers\.(\d+)\.ffn\.layers\.1\.", r"image_encoder.model.blocks.\1.mlp.fc2."),
    KeyRule(r"^ln1\.", "image_encoder.model.norm."),
)

BENCHX_RESNET50 = CheckpointAdapter(
    name="benchx_resnet50",
    format="benchx",
    arch="resnet50",
    method=dict(METHOD, label="BenchX weights (ResNet-50)"),
    source_format="BenchX converted weights (torch.save of a flat torchvision ResNet-50 state dict), or a BenchX "
                  "checkpoint holding one under visual.model. / gloria.img_encoder.model. / img_encoder_q.model.",
    reference=REFERENCE,
    model=dict(image_encoder=dict(type="timm", model_name="resnet50"), embed_dim=Dim("layer4.0.conv3.weight"),
               image_projection=dict(type="projection")),
    prefixes=("visual.model.", "gloria.img_encoder.model.", "img_encoder_q.model.", "module."),
    rules=(KeyRule(r"^((conv1|bn1|layer[1-4])\.)", r"image_encoder.model.\1"),),
    drops=(OUTSIDE_ENCODER, CLASSIFIER),
    fills=(n.IDENTITY_PROJECTION,),
    detect=("conv1.weight", "layer4.0.conv1.weight"),
    pipeline=n.MGCA_PIPELINE,
    notes=("BenchX feeds ResNet-50s without MGCA's / GLoRIA's 299 px upsampling; so does the suite",),
    zero_shot=IMAGE_ONLY,
)

BENCHX_VIT_B16 = CheckpointAdapter(
    name="benchx_vit_b16",
    format="benchx",
    arch="vit_b16",
    method=dict(METHOD, label="BenchX weights (ViT-B/16)"),
    source_format="BenchX converted weights (torch.save of a ViT-B/16 state dict in MMSegmentation naming)",
    reference=REFERENCE,
    model=dict(image_encoder=n.VIT_B16, embed_dim=Dim("cls_token", 2), image_projection=dict(type="projection")),
    prefixes=("module.",),
    rules=MMSEG_VIT_RULES,
    fills=(n.IDENTITY_PROJECTION,),
    detect=("patch_embed.projection.weight", "layers.0.ln1.weight"),
    pipeline=n.MGCA_PIPELINE,
    zero_shot=IMAGE_ONLY,
)


@hookimpl
def place_bench_register(registrar):
    registrar.add("checkpoint_adapter", "benchx_resnet50", BENCHX_RESNET50)
    registrar.add("checkpoint_adapter", "benchx_vit_b16", BENCHX_VIT_B16)
