"""``PlaceBenchBackbone`` (place_bench.openmmlab.backbone): shapes, strict loading, frozen means frozen."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from place_bench.openmmlab.backbone import BACKBONE_NAME, SuiteBackbone

TINY_VIT = dict(type="timm", model_name="vit_tiny_patch16_224", img_size=64, patch_size=8, depth=2,
                embed_dim=64, num_heads=2)
RESNET = dict(type="timm", model_name="resnet10t")


def test_registered_in_mmseg_and_mmdet():
    import importlib

    import place_bench.openmmlab as openmmlab
    from mmdet.registry import MODELS as DET
    from mmseg.registry import MODELS as SEG

    importlib.reload(openmmlab)  # re-import registers again without a duplicate-name error
    assert SEG.get(BACKBONE_NAME) is SuiteBackbone
    assert DET.get(BACKBONE_NAME) is SuiteBackbone


def test_resnet_gives_c2_to_c5():
    from mmseg.registry import MODELS

    torch.manual_seed(0)
    backbone = MODELS.build(dict(type=BACKBONE_NAME, encoder=RESNET))
    maps = backbone(torch.randn(2, 3, 64, 64))
    assert backbone.strides == [4, 8, 16, 32]
    assert backbone.out_channels == [64, 128, 256, 512]
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // s, 64 // s) for c, s in zip(backbone.out_channels, backbone.strides)]


def test_tiny_vit_gives_a_simple_pyramid():
    from mmdet.registry import MODELS

    backbone = MODELS.build(dict(type=BACKBONE_NAME, encoder=TINY_VIT, out_indices=(0, 1, 2, 3)))
    x = torch.randn(2, 3, 64, 64)
    maps = backbone(x)
    assert backbone.out_channels == [64] * 4
    assert backbone.strides == [2, 4, 8, 16]  # patch 8 / (4, 2, 1, 0.5)
    assert [tuple(m.shape) for m in maps] == [(2, 64, 32, 32), (2, 64, 16, 16), (2, 64, 8, 8), (2, 64, 4, 4)]
    # the stride-8 map is exactly the encoder's (normed) patch tokens on their grid
    tokens = backbone.encoder(x).local_tokens  # (B, N, D)
    assert torch.allclose(maps[2].flatten(2).transpose(1, 2), tokens, atol=1e-5)
    assert list(backbone.parameters()) == list(backbone.encoder.parameters())  # the pyramid has no parameters
    only = SuiteBackbone(encoder=TINY_VIT, out_indices=(2,))
    assert only.out_channels == [64] and only.strides == [8] and len(only(x)) == 1


def _tiny_checkpoint(tmp_path):
    from place_bench import api
    from place_bench.config import to_plain
    from place_bench.model.checkpoint import save_checkpoint

    cfg = api.load_config("eval/embed_tiny")
    torch.manual_seed(0)
    model = api.build_model(cfg)
    return model, save_checkpoint(model, tmp_path / "tiny.safetensors", to_plain(cfg))


def test_checkpoint_loads_the_encoder_strictly_and_init_weights_keeps_it(tmp_path):
    model, path = _tiny_checkpoint(tmp_path)
    backbone = SuiteBackbone(checkpoint=str(path))
    backbone.init_weights()
    expected = model.image_encoder.state_dict()
    got = backbone.encoder.state_dict()
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in expected)
    assert backbone.load_report["strict"] is True


def test_checkpoint_missing_an_encoder_key_is_refused_naming_it(tmp_path):
    import hashlib

    from safetensors import safe_open
    from safetensors.torch import load_file, save

    from place_bench.model.weights import PartialLoadError

    _, path = _tiny_checkpoint(tmp_path)
    state = load_file(str(path))
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
    dropped = "image_encoder.model.blocks.1.mlp.fc2.weight"
    assert dropped in state
    del state[dropped]
    blob = save(state, metadata=metadata)
    path.write_bytes(blob)
    sidecar = path.with_suffix(".json")
    card = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps(dict(card, weights_sha256=hashlib.sha256(blob).hexdigest())))
    with pytest.raises(PartialLoadError) as err:
        SuiteBackbone(checkpoint=str(path))
    message = str(err.value)
    assert "missing" in message and "model.blocks.1.mlp.fc2.weight" in message


def test_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        SuiteBackbone()


class _HeadOnTop(nn.Module):
    def __init__(self, backbone: SuiteBackbone):
        super().__init__()
        self.backbone = backbone
        self.head = nn.Conv2d(backbone.out_channels[-1], 2, 1)

    def forward(self, x):
        return self.head(self.backbone(x)[-1])


@pytest.mark.parametrize("encoder", [RESNET, TINY_VIT], ids=["resnet10t", "tiny_vit"])
def test_frozen_weights_and_batchnorm_statistics_do_not_move(encoder):
    torch.manual_seed(0)
    model = _HeadOnTop(SuiteBackbone(encoder=encoder, frozen=True))
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    if encoder is RESNET:
        assert any(k.endswith("running_mean") for k in before)
    assert not any(p.requires_grad for p in model.backbone.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.05)  # every parameter, carelessly
    for _ in range(3):
        model.train()
        assert model.backbone.training and not model.backbone.encoder.training
        assert not any(m.training for m in model.backbone.encoder.modules())
        loss = model(torch.randn(4, 3, 64, 64) * 3 + 1).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not torch.equal(head_before, model.head.weight)  # the head did train


def test_unfrozen_backbone_trains():
    torch.manual_seed(0)
    backbone = SuiteBackbone(encoder=RESNET, frozen=False)
    backbone.train()
    assert backbone.encoder.training and all(p.requires_grad for p in backbone.parameters())
