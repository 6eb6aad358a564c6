"""The suite's image encoder as an OpenMMLab backbone (``PlaceBenchBackbone``).

:class:`SuiteBackbone` wraps the timm model inside a suite image encoder
(:class:`~place_bench.plugins.encoders.timm_image.TimmImageEncoder`) and returns multi-scale
feature maps for mmsegmentation decode heads and mmdetection necks, through timm's
``forward_intermediates``:

* **CNN** (ResNet, EfficientNet, ...): the last four ``feature_info`` stages. ResNet: C2..C5 =
  ``layer1..layer4``, strides 4, 8, 16, 32, channels ``feature_info[i]["num_chs"]`` (ResNet-50:
  256, 512, 1024, 2048).
* **ViT**: the last block's patch tokens (after the final norm, as the suite's encoder returns
  them) reshaped to ``(B, D, H/p, W/p)``, then a simple, parameter-free pyramid (ViTDet / SETR
  style): for each scale ``s`` in ``vit_scales`` the map is resized by ``s`` -- bilinear for
  ``s > 1``, identity for ``s == 1``, max-pooling for ``s < 1``. With patch 16 and the default
  scales (4, 2, 1, 0.5) the strides are 4, 8, 16, 32; every map has ``D`` channels. Being
  parameter-free, a frozen backbone is truly frozen (no learnable deconvolutions live inside it;
  a learnable up-sampling belongs to the head or neck).

``out_indices`` selects among these four maps; ``out_channels`` and ``strides`` list the chosen
ones. Input: images already normalized the suite's way (the OpenMMLab data preprocessor does it:
mean = std = 127.5 on 0-255 inputs is the suite's 0.5 / 0.5 on [0, 1]).

**Weights.** ``checkpoint``: a suite ``.safetensors`` checkpoint; the encoder is rebuilt from its
card's ``config.model.image_encoder`` (``pretrained_path=None``) through the suite registry and
only its ``image_encoder.`` entries are loaded, strictly: a missing, unexpected or mis-shaped key
raises :class:`~place_bench.model.weights.PartialLoadError` naming the keys. ``encoder``: an
``image_encoder`` config dict instead (random init, or ImageNet weights through its
``pretrained_path``), or an already built suite image encoder module (used as is; tasks pass a
deep copy of the evaluated model's encoder). :meth:`init_weights` never re-initializes the
encoder (mmengine's ``BaseModule.init_weights`` would otherwise call timm's own ``init_weights``).

**Frozen** (default): every encoder parameter has ``requires_grad=False`` and the encoder stays
in eval mode whatever ``train()`` is called with, so BatchNorm running statistics and dropout
never change (datasets.md section 5, pitfall 6). ``frozen=False`` trains the whole encoder.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import nn

__all__ = ["BACKBONE_NAME", "SuiteBackbone", "build_suite_encoder", "register_backbone"]

#: The name the backbone is registered under in mmseg's and mmdet's ``MODELS``.
BACKBONE_NAME = "PlaceBenchBackbone"
#: Key prefix of the image encoder's entries in a suite checkpoint.
ENCODER_PREFIX = "image_encoder."


def build_suite_encoder(checkpoint: str | os.PathLike | None = None,
                        encoder: Mapping[str, Any] | nn.Module | None = None) -> tuple[nn.Module, dict]:
    """The suite image encoder of ``checkpoint`` (weights loaded strictly) or of ``encoder``.

    Returns ``(module, report)``; ``report`` says where the weights came from.
    """
    from place_bench import registry
    from place_bench.model.checkpoint import load_checkpoint, read_card
    from place_bench.model.weights import PartialLoadError, load_strict, strip_prefix
    from place_bench.plugin_manager import get_plugin_manager

    if (checkpoint is None) == (encoder is None):
        raise ValueError(f"{BACKBONE_NAME}: give exactly one of checkpoint= (a suite .safetensors file) "
                         "or encoder= (an image_encoder config dict or module)")
    if isinstance(encoder, nn.Module):
        return encoder, {"source": "module"}
    if encoder is not None:
        get_plugin_manager()
        cfg = dict(encoder)
        return registry.build("image_encoder", _quiet(cfg)), {
            "source": "config", "image_weights": cfg.get("pretrained_path") or "random"}
    card = read_card(checkpoint)
    cfg = ((card.get("config") or {}).get("model") or {}).get("image_encoder")
    if not isinstance(cfg, Mapping) or "type" not in cfg:
        raise PartialLoadError(f"'{checkpoint}': the card's config.model.image_encoder is missing; "
                               "it is needed to rebuild the encoder")
    get_plugin_manager()
    # the checkpoint carries every weight: the encoder's initial weight file is not read
    module = registry.build("image_encoder", _quiet(dict(cfg, pretrained_path=None)))
    state, _card = load_checkpoint(checkpoint)
    part = strip_prefix(state, ENCODER_PREFIX)
    if not part:
        raise PartialLoadError(f"'{checkpoint}' holds no '{ENCODER_PREFIX}' weights "
                               f"(components: {card.get('components')})")
    load_strict(module, part, what="the image encoder ('image_encoder.')", source=str(checkpoint))
    return module, {"source": "suite checkpoint", "path": str(checkpoint), "strict": True}


def _quiet(cfg: dict) -> dict:
    """A timm encoder config without the CLS-attention capture (the backbone never reads it, and
    capturing switches the last block to the slower unfused attention)."""
    if cfg.get("type") == "timm" and "return_cls_attention" not in cfg:
        cfg = dict(cfg, return_cls_attention=False)
    return cfg


class SuiteBackbone(BaseModule):
    """A suite image encoder as a multi-scale backbone; see the module docstring.

    :param checkpoint: a suite ``.safetensors`` checkpoint (its ``image_encoder.`` weights).
    :param encoder: an ``image_encoder`` config dict (checkpoint-less rows) or a built encoder.
    :param frozen: no gradients into the encoder and the encoder always in eval mode.
    :param out_indices: which of the four maps to return (0 = the finest).
    :param vit_scales: ViT only: the resize factor of each of the four maps relative to the patch
        grid (> 1 bilinear up-sampling, < 1 max-pooling by ``1 / s``, which must be an integer).
    """

    def __init__(self, checkpoint: str | None = None, encoder: dict | nn.Module | None = None, frozen: bool = True,
                 out_indices: Sequence[int] = (0, 1, 2, 3), vit_scales: Sequence[float] = (4.0, 2.0, 1.0, 0.5),
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        module, self.load_report = build_suite_encoder(checkpoint, encoder)
        model = getattr(module, "model", None)
        if model is None or not hasattr(model, "forward_intermediates"):
            raise TypeError(f"{BACKBONE_NAME}: the image encoder {type(module).__name__} does not wrap a timm model "
                            "with forward_intermediates (needed for multi-scale features)")
        self.encoder = module
        self.frozen = bool(frozen)
        self.is_vit = bool(getattr(module, "is_vit", hasattr(model, "blocks") and hasattr(model, "patch_embed")))
        self.out_indices = tuple(int(i) for i in out_indices)
        if not self.out_indices or any(not 0 <= i < 4 for i in self.out_indices):
            raise ValueError(f"{BACKBONE_NAME}: out_indices must be a non-empty subset of 0..3, got {out_indices}")
        if self.is_vit:
            self.vit_scales = tuple(float(s) for s in vit_scales)
            if len(self.vit_scales) != 4:
                raise ValueError(f"{BACKBONE_NAME}: vit_scales needs 4 factors, got {vit_scales}")
            for s in self.vit_scales:
                if s <= 0 or (s < 1 and abs(1 / s - round(1 / s)) > 1e-6):
                    raise ValueError(f"{BACKBONE_NAME}: vit_scale {s} must be > 0, and 1/s an integer when s < 1")
            patch = model.patch_embed.patch_size
            patch = patch[0] if isinstance(patch, (tuple, list)) else patch
            dim = int(getattr(model, "embed_dim", module.local_dim))
            all_channels = [dim] * 4
            all_strides = [patch / s for s in self.vit_scales]
            self._stage_indices: list[int] = []
        else:
            info = list(model.feature_info)
            if len(info) < 4:
                raise ValueError(f"{BACKBONE_NAME}: {getattr(module, 'model_name', type(model).__name__)} has only "
                                 f"{len(info)} feature stages; 4 are needed")
            self._stage_indices = list(range(len(info) - 4, len(info)))
            all_channels = [int(info[i]["num_chs"]) for i in self._stage_indices]
            all_strides = [float(info[i]["reduction"]) for i in self._stage_indices]
            self.vit_scales = ()
        self.out_channels = [all_channels[i] for i in self.out_indices]
        self.strides = [int(s) if float(s).is_integer() else s for s in (all_strides[i] for i in self.out_indices)]
        if self.frozen:
            self.encoder.requires_grad_(False)
            self.encoder.eval()
        else:  # a copy of an evaluated (frozen, eval-mode) encoder trains whole
            self.encoder.requires_grad_(True)
        self._is_init = True  # parents' init_weights skip this module: the encoder holds its weights

    # -- weights and modes -------------------------------------------------------------------
    def init_weights(self) -> None:
        """Nothing: the encoder's weights come from the checkpoint / its config, and the pyramid
        has no parameters. (BaseModule's default would call timm's ``init_weights``.)"""
        self._is_init = True

    def train(self, mode: bool = True) -> "SuiteBackbone":
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    # -- forward -----------------------------------------------------------------------------
    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        model = self.encoder.model
        if self.is_vit:
            (grid,) = model.forward_intermediates(images, indices=1, norm=True, intermediates_only=True)
            maps = [_rescale(grid, s) for s in self.vit_scales]
        else:
            maps = model.forward_intermediates(images, indices=self._stage_indices, intermediates_only=True)
        return tuple(maps[i] for i in self.out_indices)


def _rescale(x: torch.Tensor, scale: float) -> torch.Tensor:
    if scale == 1:
        return x
    if scale > 1:
        size = (int(round(x.shape[-2] * scale)), int(round(x.shape[-1] * scale)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    k = int(round(1 / scale))
    return F.max_pool2d(x, kernel_size=k, stride=k, ceil_mode=True)


def register_backbone() -> None:
    """Register :class:`SuiteBackbone` as ``PlaceBenchBackbone`` in mmseg's and mmdet's ``MODELS``
    (whichever is installed; ``force=True`` keeps re-imports harmless)."""
    registered = 0
    for module_name in ("mmseg.registry", "mmdet.registry"):
        try:
            registry_module = __import__(module_name, fromlist=["MODELS"])
        except ModuleNotFoundError:
            continue
        registry_module.MODELS.register_module(name=BACKBONE_NAME, module=SuiteBackbone, force=True)
        registered += 1
    if not registered:
        raise ModuleNotFoundError("neither mmsegmentation nor mmdetection is installed; "
                                  f"{BACKBONE_NAME} has nowhere to register")
