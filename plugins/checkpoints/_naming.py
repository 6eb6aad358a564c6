"""Key-naming facts the adapters share, read from the public repositories' model code.

Sources (read for names and shapes only):

* MGCA (github.com/HKU-MedAI/MGCA): ``mgca/models/backbones/encoder.py`` (``ImageEncoder`` with
  ``.model`` = torchvision ResNet-50 whose ``fc`` is an Identity, or their ViT of
  ``backbones/vits.py``; ``GlobalEmbedding`` / ``LocalEmbedding`` heads; ``BertEncoder`` with
  ``.model`` = ``backbones/med.py``'s BLIP-style ``BertModel``), ``mgca/configs/bert_config.json``.
* GLoRIA (github.com/marshuang80/gloria): ``gloria/models/vision_model.py``,
  ``text_model.py``, ``gloria/lightning/pretrain_model.py`` (``self.gloria``).
* BenchX (github.com/yangzhou12/BenchX): ``preprocess/model_converters/medvlm2mmseg.py`` (the
  converted weights) and ``configs/_base_/models/*.yml`` (the prefix of each method).

torchvision's ResNet-50 names match timm's ``resnet50`` (``conv1``, ``bn1``, ``layer1``..``layer4``
with ``downsample.0/.1``); MGCA's ViT-B/16 names match timm's ``vit_base_patch16_224``
(``cls_token``, ``pos_embed``, ``patch_embed.proj``, ``blocks.N.{norm1,attn.qkv,attn.proj,norm2,
mlp.fc1,mlp.fc2}``, ``norm``; qkv bias, LayerNorm eps 1e-6, class-token pooling).
"""

from __future__ import annotations

import re

from place_bench.model.adapters import Dim, Drop, Fill, KeyRule, TextSpec, Transform

RESNET50 = dict(type="timm", model_name="resnet50", local_feature_index=3)  # layer3 regions, as MGCA / GLoRIA
VIT_B16 = dict(type="timm", model_name="vit_base_patch16_224")

#: MGCA's 224 px letterbox pipeline (datasets.md section 2.0; GLoRIA's is the same, ``norm: half``)
MGCA_PIPELINE = dict(resize_to=256, crop=224, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))

#: MGCA's GlobalEmbedding / LocalEmbedding: Linear|Conv1d(in, 2048) -> BatchNorm1d(2048) -> ReLU ->
#: Linear|Conv1d(2048, out) -> BatchNorm1d(out, affine=False); ``head.i`` is ``layers.i`` here.
MGCA_HEAD = dict(type="sequential_projection",
                 layers=["linear:2048", "batch_norm", "relu", "linear", "batch_norm_noaffine"])

UPSAMPLE_NOTE = ("the ResNet forward of {method} upsamples its 224 px crop to 299 px (bilinear, align_corners=True) "
                 "before conv1; the suite's ResNet-50 reads the 224 px crop as it is")

CLINICAL_BERT = ("Bio_ClinicalBERT (emilyalsentzer/Bio_ClinicalBERT): its config.json and WordPiece vocabulary "
                 "(28,996 entries), tokenizer built by AutoTokenizer from that folder")


def image_rules(src: str) -> tuple[KeyRule, ...]:
    """An image encoder stored under ``{src}.model.`` in torchvision / timm naming."""
    return (KeyRule(rf"^{re.escape(src)}\.model\.", "image_encoder.model."),)


def mgca_head_rules(src: str, local: bool, side: str) -> tuple[KeyRule, ...]:
    """MGCA-style heads of ``{src}``: ``global_embed.head.i`` -> ``{side}_projection.layers.i`` and,
    with ``local``, ``local_embed.head.i`` -> ``{side}_local_projection.layers.i`` (1x1 Conv1d
    weights squeezed to linear weights)."""
    e = re.escape(src)
    rules = [KeyRule(rf"^{e}\.global_embed\.head\.", f"{side}_projection.layers.")]
    if local:
        rules.append(KeyRule(rf"^{e}\.local_embed\.head\.", f"{side}_local_projection.layers.", "squeeze_kernel"))
    return tuple(rules)


# -- MGCA's BLIP-style BERT (backbones/med.py) ------------------------------------------------------

def med_bert_rules(src: str) -> tuple[KeyRule, ...]:
    """med.py's BertModel keeps Hugging Face BERT's names: ``{src}.model.*`` -> ``text_encoder.model.*``."""
    return (KeyRule(rf"^{re.escape(src)}\.model\.", "text_encoder.model."),)


def med_bert_drops(src: str) -> tuple[Drop, ...]:
    e = re.escape(src)
    return (
        Drop(rf"^{e}\.model\.encoder\.layer\.\d+\.crossattention\.",
             "cross-attention blocks of the BLIP-style BERT (add_cross_attention=true in MGCA's bert_config.json); "
             "they run only in mode='multimodal', never in MGCA's text encoder"),
        Drop(rf"^{e}\.model\.embeddings\.position_ids$", "a buffer of position indices, not a weight"),
    )


MED_BERT_FILLS = (
    Fill(r"^text_encoder\.model\.embeddings\.token_type_embeddings\.weight$", "zeros",
         "med.py's BertEmbeddings has no token-type embedding; zeros add nothing, so the sum is exact"),
)

MED_BERT_TRANSFORMS = (
    Transform(r"^text_encoder\.model\.embeddings\.position_embeddings\.weight$", "first_row_everywhere",
              "MGCA's BertEncoder.forward passes token_type_ids (all zeros) where med.py's BertModel expects "
              "position_ids, so every token was embedded with position row 0 in pretraining (and in BenchX's "
              "evaluation); every row is set to row 0 to reproduce that"),
)


def mgca_text(num_layers: int = 6) -> TextSpec:
    """MGCA's BertEncoder: the first 6 layers of Bio_ClinicalBERT (bert_config.json), word
    features summed over sub-words, 112 tokens (MultimodalPretrainingDataset.max_words)."""
    return TextSpec(tokenizer=CLINICAL_BERT, num_layers=num_layers, hf_text=dict(word_pooling="sum", max_length=112))


MGCA_TEXT_NOTES = (
    "text: position row 0 for every token and zero token-type embeddings reproduce MGCA's BertEncoder exactly; "
    "sub-words are summed into words as MGCA's aggregate_tokens does",
)

def mgca_repository_fields(image: str, text: str, arch: str, local_heads: bool, method: str) -> dict:
    """The ``CheckpointAdapter`` fields shared by the MGCA repository's modules (MGCA and its
    ConVIRT): encoders under ``image`` / ``text`` (e.g. ``img_encoder_q`` / ``text_encoder_q``),
    MGCA's global heads (and local ones with ``local_heads``), med.py BERT, MGCA's pipeline."""
    resnet = arch == "resnet50"
    model = dict(image_encoder=RESNET50 if resnet else VIT_B16,
                 embed_dim=Dim(f"{image}.global_embed.head.3.weight"),
                 image_projection=MGCA_HEAD, text_projection=MGCA_HEAD)
    if local_heads:
        model.update(image_local_projection=MGCA_HEAD, text_local_projection=MGCA_HEAD)
    return dict(
        arch=arch,
        model=model,
        prefixes=("module.",),
        rules=(*image_rules(image), *mgca_head_rules(image, local_heads, "image"),
               *med_bert_rules(text), *mgca_head_rules(text, local_heads, "text")),
        fills=MED_BERT_FILLS,
        transforms=MED_BERT_TRANSFORMS,
        detect=(f"{image}.model.conv1.weight" if resnet else f"{image}.model.patch_embed.proj.weight",),
        text=mgca_text(),
        pipeline=MGCA_PIPELINE,
        notes=((UPSAMPLE_NOTE.format(method=method),) if resnet else ()) + MGCA_TEXT_NOTES,
    )


# -- image-only imports ------------------------------------------------------------------------------

IDENTITY_PROJECTION = Fill(
    r"^image_projection\.layers\.0\.(weight|bias)$", "identity",
    "the file holds the image encoder only; an identity map (the pooled encoder features) stands in for a "
    "projection head, which no image-only task reads",
)
