"""Patch masking in the timm image encoder (ViT: mask token after patch_embed; CNN: zeroed cells)."""

from fractions import Fraction

import pytest
import timm
import torch

from place_bench import registry as registries

TINY_VIT = dict(type="timm", model_name="vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, embed_dim=32, num_heads=2)


def build(**cfg):
    return registries.build("image_encoder", cfg).eval()


def test_masked_vit_puts_the_mask_token_exactly_at_the_hidden_patches():
    torch.manual_seed(0)
    encoder = build(**TINY_VIT, patch_masking=True)
    vit = encoder.model
    seen = {}
    vit.blocks[0].register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0]))
    images = torch.randn(2, 3, 32, 32)
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[0, 0, 1] = mask[0, 3, 3] = mask[1, 2, 0] = True
    with torch.no_grad():
        out = encoder(images, mask)
        patches = vit.patch_embed(images)  # (B, N, D)
    x = seen["x"]  # (B, 1 + N, D): CLS, then patches in row-major order
    pos = vit.pos_embed[0]
    assert out.local_tokens.shape == (2, 16, 32) and out.grid_size == (4, 4)
    assert out.cls_attention is not None and out.cls_attention.shape == (2, 2, 16)
    for b in range(2):
        torch.testing.assert_close(x[b, 0], vit.cls_token[0, 0] + pos[0])
        for y in range(4):
            for c in range(4):
                i = y * 4 + c
                expected = encoder.mask_token[0, 0] if mask[b, y, c] else patches[b, i]
                torch.testing.assert_close(x[b, 1 + i], expected + pos[1 + i], rtol=0, atol=1e-6)
    # The masked view differs from the plain one exactly because of the hidden patches.
    with torch.no_grad():
        plain = encoder(images)
    assert not torch.allclose(plain.local_tokens, out.local_tokens)


def test_unmasked_vit_forward_equals_timm_forward_features_bit_for_bit():
    torch.manual_seed(0)
    encoder = build(**TINY_VIT, patch_masking=True)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        reference = encoder.model.forward_features(images)
        plain = encoder(images)
        nothing_hidden = encoder(images, torch.zeros(2, 4, 4, dtype=torch.bool))
    assert torch.equal(plain.local_tokens, reference[:, 1:])
    assert torch.equal(plain.global_embedding, reference[:, 0])
    assert torch.equal(nothing_hidden.local_tokens, reference[:, 1:])
    assert torch.equal(nothing_hidden.cls_attention, plain.cls_attention)


def test_mask_token_gets_gradient():
    encoder = build(**TINY_VIT, patch_masking=True).train()
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, 1, 1] = True
    encoder(torch.randn(1, 3, 32, 32), mask).local_tokens.sum().backward()
    assert encoder.mask_token.grad is not None and encoder.mask_token.grad.abs().sum() > 0


def _zeroed_by_hand(images, mask):
    """Pixel (r, c) is zeroed when the cell (y, x) with y*H/gh <= r < (y+1)*H/gh (and the
    same for columns) is hidden; exact fractions, no integer shortcut."""
    out = images.clone()
    b_n, _, height, width = images.shape
    gh, gw = mask.shape[1:]
    for b in range(b_n):
        for r in range(height):
            y = next(y for y in range(gh) if Fraction(y * height, gh) <= r < Fraction((y + 1) * height, gh))
            for c in range(width):
                x = next(x for x in range(gw) if Fraction(x * width, gw) <= c < Fraction((x + 1) * width, gw))
                if mask[b, y, x]:
                    out[b, :, r, c] = 0
    return out


@pytest.mark.parametrize("local_feature_index", [None, 2])
def test_cnn_masking_zeroes_the_input_pixels_of_hidden_cells(local_feature_index):
    torch.manual_seed(0)
    encoder = build(type="timm", model_name="resnet10t", patch_masking=True, local_feature_index=local_feature_index)
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        grid = encoder(images).grid_size  # (2, 3) for the last stage, (8, 12) for layer2
    mask = torch.rand(2, *grid) < 0.5
    mask[0, 0, 0], mask[1, 0, 0] = True, False
    seen = {}
    encoder.model.conv1.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0]))
    with torch.no_grad():
        out = encoder(images, mask)
    assert out.grid_size == grid
    assert torch.equal(seen["x"], _zeroed_by_hand(images, mask))
    assert (seen["x"][0, :, 0, 0] == 0).all() and torch.equal(seen["x"][1, :, 0, 0], images[1, :, 0, 0])


def test_cell_bounds_when_the_grid_does_not_divide_the_image():
    from place_bench.plugins.encoders.timm_image import _zero_cells

    images = torch.randn(1, 1, 7, 10)
    mask = torch.tensor([[[True, False, False], [False, True, False], [False, False, True]]])
    assert torch.equal(_zero_cells(images, mask), _zeroed_by_hand(images, mask))


def test_mask_without_patch_masking_is_a_clear_error():
    for cfg in (TINY_VIT, dict(type="timm", model_name="resnet10t")):
        encoder = build(**cfg)
        with pytest.raises(ValueError, match="patch_masking=True"):
            encoder(torch.randn(1, 3, 32, 32), torch.zeros(1, 4, 4, dtype=torch.bool))


def test_mask_on_the_wrong_grid_is_refused():
    encoder = build(**TINY_VIT, patch_masking=True)
    with pytest.raises(ValueError, match="does not match"):
        encoder(torch.randn(1, 3, 32, 32), torch.zeros(1, 3, 3, dtype=torch.bool))


def test_state_dict_keys_change_only_with_patch_masking():
    vit_kwargs = {k: v for k, v in TINY_VIT.items() if k not in ("type", "model_name")}
    timm_keys = {"model." + k for k in timm.create_model("vit_tiny_patch16_224", num_classes=0, **vit_kwargs).state_dict()}
    assert set(build(**TINY_VIT).state_dict()) == timm_keys
    assert set(build(**TINY_VIT, patch_masking=True).state_dict()) == timm_keys | {"mask_token"}
    cnn = set(build(type="timm", model_name="resnet10t").state_dict())
    assert set(build(type="timm", model_name="resnet10t", patch_masking=True).state_dict()) == cnn
