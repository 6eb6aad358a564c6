"""PLACE's CCE objective (reconstruction of spec/place.md): hand-computed losses, gradients, EMA, conditioning."""

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from place_bench import registry as registries
from place_bench.model.outputs import PairOutputs
from place_bench.plugins.objectives.place import cce as cce_module
from place_bench.plugins.objectives.place.cce import PlaceCCE, cce_loss, patch_correlation

TAU_T, TAU_S = 0.04, 0.1


def hand_correlation(z):
    """float64 loops: centre each image's patches over the patches, L2-normalize, Gram matrix."""
    b_n, n, d = z.shape
    out = [[[0.0] * n for _ in range(n)] for _ in range(b_n)]
    for b in range(b_n):
        mean = [sum(float(z[b, i, k]) for i in range(n)) / n for k in range(d)]
        rows = []
        for i in range(n):
            centred = [float(z[b, i, k]) - mean[k] for k in range(d)]
            norm = math.sqrt(sum(v * v for v in centred))
            rows.append([v / norm for v in centred])
        for i in range(n):
            for j in range(n):
                out[b][i][j] = sum(rows[i][k] * rows[j][k] for k in range(d))
    return out


def hand_kl(c, c_hat, rows=None):
    total, count = 0.0, 0
    for b in range(len(c)):
        for i in range(len(c[b])):
            if rows is not None and not rows[b][i]:
                continue
            p = [math.exp(v / TAU_T) for v in c[b][i]]
            q = [math.exp(v / TAU_S) for v in c_hat[b][i]]
            sp, sq = sum(p), sum(q)
            total += sum((pj / sp) * (math.log(pj / sp) - math.log(qj / sq)) for pj, qj in zip(p, q))
            count += 1
    return total / count


def tiny_sets():
    g = torch.Generator().manual_seed(3)
    return torch.randn(2, 4, 3, generator=g, dtype=torch.float64), torch.randn(2, 4, 3, generator=g, dtype=torch.float64)


def test_correlation_centres_and_normalizes_by_hand():
    z, _ = tiny_sets()
    got = patch_correlation(z)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, torch.tensor(hand_correlation(z), dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.diagonal(got, dim1=1, dim2=2), torch.ones(2, 4, dtype=torch.float64))
    # Centring is per image: shifting one image's patches by a vector leaves C unchanged.
    shifted = z.clone()
    shifted[1] += torch.tensor([5.0, -2.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(patch_correlation(shifted), got)


def test_kl_loss_equals_a_hand_computation():
    target, predicted = tiny_sets()
    c, c_hat = hand_correlation(target), hand_correlation(predicted)
    got = cce_loss(target, predicted, loss="kl", teacher_temperature=TAU_T, student_temperature=TAU_S)
    assert got.item() == pytest.approx(hand_kl(c, c_hat), rel=1e-10)
    assert got.item() > 0.01  # a non-trivial example
    assert cce_loss(target, target, loss="kl").item() != pytest.approx(0.0, abs=1e-6)  # τ_t ≠ τ_s
    rows = [[True, False, True, False], [False, False, False, True]]
    masked = cce_loss(target, predicted, row_mask=torch.tensor(rows))
    assert masked.item() == pytest.approx(hand_kl(c, c_hat, rows), rel=1e-10)


def test_mse_loss_equals_a_hand_computation():
    target, predicted = tiny_sets()
    c, c_hat = hand_correlation(target), hand_correlation(predicted)
    expected = sum((c[b][i][j] - c_hat[b][i][j]) ** 2 for b in range(2) for i in range(4) for j in range(4)) / 32
    assert cce_loss(target, predicted, loss="mse").item() == pytest.approx(expected, rel=1e-10)
    assert cce_loss(target, target, loss="mse").item() == pytest.approx(0.0, abs=1e-20)


def test_dropping_the_diagonal_leaves_it_out_of_both_softmaxes():
    target, predicted = tiny_sets()
    target.requires_grad_(True)
    c, c_hat = hand_correlation(target.detach()), hand_correlation(predicted)
    off = lambda m: [[[v for j, v in enumerate(row) if j != i] for i, row in enumerate(img)] for img in m]  # noqa: E731
    got = cce_loss(target, predicted, include_diagonal=False)
    assert got.item() == pytest.approx(hand_kl(off(c), off(c_hat)), rel=1e-10)
    got.backward()
    assert torch.isfinite(target.grad).all()


# -- the objective on a tiny ViT -----------------------------------------------------------

EMBED = 16


def make_model(**cce_kwargs):
    torch.manual_seed(0)
    encoder = registries.build(
        "image_encoder",
        dict(type="timm", model_name="vit_tiny_patch16_224", img_size=32, patch_size=8, depth=1,
             embed_dim=32, num_heads=2, patch_masking=True),
    )
    projection = nn.Linear(32, EMBED)
    objective = PlaceCCE(embed_dim=EMBED, **cce_kwargs)
    return encoder, projection, objective


def make_outputs(encoder, projection, words, word_mask, images, *, leaf_patch_local=True, with_projection=True):
    image = encoder(images)
    patch_local = None
    if with_projection:
        patch_local = projection(image.local_tokens)
        if leaf_patch_local:
            patch_local = patch_local.detach().requires_grad_(True)
    text = SimpleNamespace(word_features=words, word_mask=word_mask)
    return PairOutputs(
        image=image, text=text, image_global=None, text_global=None, patch_local=patch_local,
        word_local=words, images=images, encode_image=encoder,
        project_local=projection if with_projection else None,
    )


def inputs():
    g = torch.Generator().manual_seed(1)
    images = torch.randn(2, 3, 32, 32, generator=g)
    words = torch.randn(2, 5, EMBED, generator=g)
    word_mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    return images, words * word_mask[..., None], word_mask


def test_no_gradient_reaches_the_target_but_the_masked_branch_trains():
    encoder, projection, objective = make_model()
    images, words, word_mask = inputs()
    words.requires_grad_(True)
    outputs = make_outputs(encoder, projection, words, word_mask, images)
    loss = objective(outputs)["loss_cce"]
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert outputs.patch_local.grad is None  # the target side (the unmasked view) gets nothing
    assert encoder.mask_token.grad.abs().sum() > 0
    assert encoder.model.patch_embed.proj.weight.grad.abs().sum() > 0
    assert encoder.model.blocks[0].attn.qkv.weight.grad.abs().sum() > 0
    assert projection.weight.grad.abs().sum() > 0
    for p in list(objective.cross_attention.parameters()) + list(objective.output_projection.parameters()):
        assert p.grad is not None
    assert objective.cross_attention.attn.in_proj_weight.grad.abs().sum() > 0
    assert words.grad[0].abs().sum() > 0 and (words.grad[1, 3:] == 0).all()  # padded words are not keys


def test_own_projections_without_model_heads_and_no_target_gradient():
    encoder, _, objective = make_model(image_local_dim=32, text_dim=EMBED, loss="mse", weight=0.5)
    images, words, word_mask = inputs()
    outputs = make_outputs(encoder, None, words, word_mask, images, with_projection=False)
    outputs.word_local = None
    tokens = outputs.image.local_tokens.detach().requires_grad_(True)
    outputs.image.local_tokens = tokens
    loss = objective(outputs)["loss_cce"]
    loss.backward()
    assert tokens.grad is None
    assert objective.patch_projection.weight.grad.abs().sum() > 0
    assert objective.word_projection.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="image_local_dim"):
        PlaceCCE(embed_dim=EMBED)(make_outputs(encoder, None, words, word_mask, images, with_projection=False))


def test_ema_teacher_gets_no_gradient_and_moves_only_by_the_ema_rule():
    encoder, projection, objective = make_model(teacher="ema", ema_momentum=0.9)
    images, words, word_mask = inputs()
    objective(make_outputs(encoder, projection, words, word_mask, images))["loss_cce"].backward()
    teacher = objective._ema
    student = list(encoder.parameters()) + list(projection.parameters())
    teacher_params = list(teacher.parameters())
    assert len(teacher_params) == len(student)
    assert all(t.grad is None and not t.requires_grad for t in teacher_params)
    for t, s in zip(teacher_params, student):
        assert torch.equal(t, s)  # created as a copy of the student
    assert not any(k.startswith("_ema") for k in objective.state_dict())
    before = [t.detach().clone() for t in teacher_params]
    with torch.no_grad():  # one "optimizer step" of the student
        for s in student:
            s.add_(torch.randn_like(s))
    objective(make_outputs(encoder, projection, words, word_mask, images))
    for t, old, s in zip(teacher.parameters(), before, student):
        torch.testing.assert_close(t, 0.9 * old + 0.1 * s, rtol=0, atol=1e-6)
    objective.eval()  # no update outside training
    snapshot = [t.detach().clone() for t in teacher.parameters()]
    objective(make_outputs(encoder, projection, words, word_mask, images))
    assert all(torch.equal(a, b) for a, b in zip(snapshot, teacher.parameters()))


def test_the_report_conditions_the_prediction():
    encoder, projection, objective = make_model()
    encoder.eval()
    images, words, word_mask = inputs()
    mask = torch.zeros(2, 4, 4, dtype=torch.bool)
    mask[:, :2] = True
    with torch.no_grad():
        base = patch_correlation(objective.predict_local(make_outputs(encoder, projection, words, word_mask, images), mask))
        other_words = words.clone()
        other_words[:, 0] = torch.randn(2, EMBED, generator=torch.Generator().manual_seed(5))
        changed = patch_correlation(objective.predict_local(make_outputs(encoder, projection, other_words, word_mask, images), mask))
        padded_only = words.clone()
        padded_only[1, 4] = 7.0  # a padding position: not a key
        same = patch_correlation(objective.predict_local(make_outputs(encoder, projection, padded_only, word_mask, images), mask))
    assert (changed - base).abs().amax(dim=(1, 2)).min() > 1e-4
    torch.testing.assert_close(same[1], base[1])


def test_random_mask_hides_the_configured_fraction():
    torch.manual_seed(0)
    mask = cce_module.random_patch_mask(3, (4, 4), 0.5, "cpu")
    assert mask.shape == (3, 4, 4) and (mask.flatten(1).sum(1) == 8).all()
    assert not torch.equal(mask[0], mask[1]) or not torch.equal(mask[1], mask[2])


def test_bad_config_values_are_refused():
    for kwargs in (dict(mask_ratio=1.0), dict(teacher="momentum"), dict(loss="l1"), dict(rows="some")):
        with pytest.raises(ValueError, match="place_cce"):
            PlaceCCE(**kwargs)


def test_hook_registers_place_cce():
    added = []
    cce_module.place_bench_register(registrar=SimpleNamespace(add=lambda *a: added.append(a)))
    assert added == [("objective", "place_cce", PlaceCCE)]
