"""MGCA objectives: CTA and CPA against hand computations (plain Python, float64), the
compat/corrected masking rules, word weights, Sinkhorn marginals and all-reduce, gradients
and the prototype freeze."""

from __future__ import annotations

import math
import os

import pytest
import torch

from place_bench import registry as registries
from place_bench.model.outputs import ImageFeatures, PairOutputs, TextBatch, TextFeatures
from place_bench.plugin_manager import Registrar, get_plugin_manager
from place_bench.plugins.objectives import mgca
from place_bench.plugins.objectives.mgca import (
    MGCAPrototypeAlignment,
    MGCATokenAlignment,
    sinkhorn_knopp,
    word_weights,
)

B, N, W, D, HEADS = 2, 4, 3, 4, 2
# report 0: [CLS] a b ##b c [SEP]       report 1: [CLS] a b [SEP] [PAD] [PAD]
WORD_IDS = torch.tensor([[-1, 0, 1, 1, 2, -1], [-1, 0, 1, -1, -1, -1]])
TOKEN_MASK = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
WORD_MASK = torch.tensor([[True, True, True], [True, True, False]])


def make_outputs(seed: int = 0, vit: bool = True) -> PairOutputs:
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=torch.float64) + 0.05

    text_attention = rand(B, HEADS, 6) * TOKEN_MASK[:, None, :]
    batch = TextBatch(
        input_ids=torch.zeros(B, 6, dtype=torch.long),
        attention_mask=TOKEN_MASK,
        word_ids=WORD_IDS,
        word_to_sentence=torch.where(WORD_MASK, 0, -1),
    )
    text = TextFeatures(
        cls_embedding=randn(B, D),
        token_features=torch.zeros(B, 6, D, dtype=torch.float64),
        token_mask=TOKEN_MASK,
        word_features=torch.zeros(B, W, D, dtype=torch.float64),
        word_mask=WORD_MASK.clone(),
        sentence_spans=torch.zeros(B, 1, 2, dtype=torch.long),
        sentence_mask=torch.ones(B, 1, dtype=torch.bool),
        cls_attention=text_attention,
        batch=batch,
    )
    image = ImageFeatures(
        global_embedding=torch.zeros(B, 8, dtype=torch.float64),
        local_tokens=torch.zeros(B, N, 8, dtype=torch.float64),
        grid_size=(2, 2),
        cls_attention=rand(B, HEADS, N) / N if vit else None,
    )
    return PairOutputs(
        image=image,
        text=text,
        image_global=randn(B, D),
        text_global=randn(B, D),
        patch_local=randn(B, N, D),
        word_local=randn(B, W, D) * WORD_MASK[..., None],  # the model zeroes padded slots
    )


# -- hand computation helpers -----------------------------------------------------------------
def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def unit(a):
    n = math.sqrt(dot(a, a))
    return [x / n for x in a] if n > 0 else [0.0 for _ in a]


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def quantile(values, q):
    s = sorted(values)
    pos = q * (len(s) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def clip_normalize(row, nonzero_only):
    keep = [i for i, x in enumerate(row) if x != 0] if nonzero_only else list(range(len(row)))
    picked = [row[i] for i in keep]
    lo, hi = quantile(picked, 0.1), quantile(picked, 0.9)
    out = list(row)
    for i in keep:
        out[i] = min(max(row[i], lo), hi)
    return [x / sum(out) for x in out]


def hand_word_weights(outputs, shift):
    attention = outputs.text.cls_attention.tolist()
    rows = []
    for b in range(B):
        a = [sum(attention[b][h][t] for h in range(HEADS)) / HEADS for t in range(6)]
        row = [0.0] * W
        for t in range(6):
            w = int(WORD_IDS[b, t])
            if w >= 0:
                row[w] += (a[t + 1] if t + 1 < 6 else 0.0) if shift else a[t]
        rows.append(clip_normalize(row, nonzero_only=True))
    return rows


def hand_patch_weights(outputs):
    if outputs.image.cls_attention is None:
        return [[1.0 / N] * N for _ in range(B)]
    attention = outputs.image.cls_attention.tolist()
    return [clip_normalize([sum(attention[b][h][n] for h in range(HEADS)) / HEADS for n in range(N)], False) for b in range(B)]


def hand_pair_loss(queries, contexts, weights, valid, tau):
    """½ Σ_i w_i [CE(row i) + CE(column i)] for one pair, over the slots in ``valid``."""
    sim = [[dot(q, c) / tau for c in contexts] for q in queries]
    total = 0.0
    for i in valid:
        row = [sim[i][j] for j in valid]
        col = [sim[j][i] for j in valid]
        k = valid.index(i)
        total += weights[i] * (-math.log(softmax(row)[k]) - math.log(softmax(col)[k]))
    return total / 2


def hand_cta(outputs, variant, tau=0.1):
    compat = variant == "compat"
    ww = hand_word_weights(outputs, shift=compat)
    pw = hand_patch_weights(outputs)
    mask = outputs.text.word_mask.tolist()
    renorm_patch = not compat or outputs.image.cls_attention is None
    loss_word = loss_patch = 0.0
    for b in range(B):
        p = [unit(v) for v in outputs.patch_local[b].tolist()]
        w = [unit(v) for v in outputs.word_local[b].tolist()]
        real = [i for i in range(W) if mask[b][i]]
        word_ctx = []
        for wi in w:
            att = softmax([dot(wi, pj) / tau for pj in p])
            word_ctx.append(unit([sum(att[j] * p[j][k] for j in range(N)) for k in range(D)]))
        loss_word += hand_pair_loss(w, word_ctx, ww[b], list(range(W)) if compat else real, tau)
        patch_ctx = []
        for pj in p:
            att = softmax([dot(pj, w[i]) / tau for i in real])
            c = [sum(a * w[i][k] for a, i in zip(att, real)) for k in range(D)]
            patch_ctx.append(unit(c) if renorm_patch else c)
        loss_patch += hand_pair_loss(p, patch_ctx, pw[b], list(range(N)), tau)
    return loss_word / B, loss_patch / B


def hand_sinkhorn(scores, eps, iterations):
    """scores: [b][k] -> codes [b][k]."""
    nb, nk = len(scores), len(scores[0])
    q = [[math.exp(scores[b][k] / eps) for b in range(nb)] for k in range(nk)]
    total = sum(map(sum, q))
    q = [[x / total for x in row] for row in q]
    for _ in range(iterations):
        for k in range(nk):
            u = sum(q[k])
            q[k] = [x / nk / u for x in q[k]]
        for b in range(nb):
            col = sum(q[k][b] for k in range(nk))
            for k in range(nk):
                q[k][b] = q[k][b] / nb / col
    return [[q[k][b] / sum(q[j][b] for j in range(nk)) for k in range(nk)] for b in range(nb)]


def hand_cpa(outputs, prototypes, eps=0.05, iterations=3, temp=0.2):
    c = [unit(r) for r in prototypes.tolist()]
    v = [unit(x) for x in outputs.image_global.tolist()]
    t = [unit(x) for x in outputs.text_global.tolist()]
    sv = [[dot(x, ck) for ck in c] for x in v]
    st = [[dot(x, ck) for ck in c] for x in t]
    qv, qt = hand_sinkhorn(sv, eps, iterations), hand_sinkhorn(st, eps, iterations)
    pv = [softmax([s / temp for s in row]) for row in sv]
    pt = [softmax([s / temp for s in row]) for row in st]
    n = len(v)
    i2t = -sum(qv[b][k] * math.log(pt[b][k]) for b in range(n) for k in range(len(c))) / n
    t2i = -sum(qt[b][k] * math.log(pv[b][k]) for b in range(n) for k in range(len(c))) / n
    return (i2t + t2i) / 2


# -- CTA -------------------------------------------------------------------------------------
@pytest.mark.parametrize("vit", [True, False], ids=["vit", "cnn"])
@pytest.mark.parametrize("variant", ["compat", "corrected"])
def test_cta_matches_hand_computation(variant, vit):
    outputs = make_outputs(vit=vit)
    losses = MGCATokenAlignment(variant=variant, weight=0.5)(outputs)
    word, patch = hand_cta(outputs, variant)
    assert set(losses) == {"loss_mgca_cta_word", "loss_mgca_cta_patch"}
    assert losses["loss_mgca_cta_word"].item() == pytest.approx(0.5 * word, rel=1e-9)
    assert losses["loss_mgca_cta_patch"].item() == pytest.approx(0.5 * patch, rel=1e-9)


def test_cta_with_padded_garbage_matches_hand_computation():
    outputs = make_outputs(seed=1)
    outputs.word_local[~WORD_MASK] = torch.tensor([0.3, -1.0, 2.0, 0.5], dtype=torch.float64)
    for variant in ("compat", "corrected"):
        word, patch = hand_cta(outputs, variant)
        losses = MGCATokenAlignment(variant=variant)(outputs)
        assert losses["loss_mgca_cta_word"].item() == pytest.approx(word, rel=1e-9)
        assert losses["loss_mgca_cta_patch"].item() == pytest.approx(patch, rel=1e-9)


def test_padded_words_are_negatives_in_compat_only():
    outputs = make_outputs()
    compat, corrected = MGCATokenAlignment(variant="compat"), MGCATokenAlignment(variant="corrected")
    before = {v: m(outputs) for v, m in (("compat", compat), ("corrected", corrected))}
    outputs.word_local[~WORD_MASK] = torch.tensor([1.0, 2.0, -1.0, 0.5], dtype=torch.float64)
    after = {v: m(outputs) for v, m in (("compat", compat), ("corrected", corrected))}
    # word <-> patch similarity: padded slots stay in (compat) or are left out (corrected)
    assert after["compat"]["loss_mgca_cta_word"].item() != pytest.approx(before["compat"]["loss_mgca_cta_word"].item(), rel=1e-6)
    assert after["corrected"]["loss_mgca_cta_word"].item() == pytest.approx(before["corrected"]["loss_mgca_cta_word"].item(), rel=1e-12)
    # patch -> word attention masks padding in both variants
    for v in ("compat", "corrected"):
        assert after[v]["loss_mgca_cta_patch"].item() == pytest.approx(before[v]["loss_mgca_cta_patch"].item(), rel=1e-12)


def test_pad_words_to_adds_zero_negatives_in_compat():
    outputs = make_outputs()
    padded = make_outputs()
    padded.word_local = torch.cat([padded.word_local, torch.zeros(B, 2, D, dtype=torch.float64)], dim=1)
    padded.text.word_mask = torch.cat([WORD_MASK, torch.zeros(B, 2, dtype=torch.bool)], dim=1)
    expected = MGCATokenAlignment()(padded)
    got = MGCATokenAlignment(pad_words_to=W + 2)(outputs)
    plain = MGCATokenAlignment()(outputs)
    for key in expected:
        assert got[key].item() == pytest.approx(expected[key].item(), rel=1e-12)
    assert got["loss_mgca_cta_word"].item() != pytest.approx(plain["loss_mgca_cta_word"].item(), rel=1e-6)


def test_word_weights_take_the_next_token_in_compat():
    outputs = make_outputs()
    a = outputs.text.cls_attention.mean(1)
    raw = word_weights(outputs.text, W, shift=True, low=0.0, high=1.0)  # no clipping
    expected = torch.stack([
        torch.stack([a[0, 2], a[0, 3] + a[0, 4], a[0, 5]]),
        torch.stack([a[1, 2], a[1, 3], a[1, 3] * 0]),
    ])
    torch.testing.assert_close(raw, expected / expected.sum(1, keepdim=True))
    for shift in (True, False):
        got = word_weights(outputs.text, W, shift=shift)
        torch.testing.assert_close(got, torch.tensor(hand_word_weights(outputs, shift), dtype=torch.float64))
        assert got[~WORD_MASK].abs().sum() == 0


def test_cta_without_text_attention_weights_words_uniformly():
    outputs = make_outputs()
    outputs.text.cls_attention = None
    weights = word_weights(outputs.text, W, shift=True)
    torch.testing.assert_close(weights, torch.tensor([[1 / 3] * 3, [0.5, 0.5, 0.0]]), check_dtype=False)


@pytest.mark.parametrize("variant", ["compat", "corrected"])
def test_cta_gradients_reach_patches_and_words(variant):
    outputs = make_outputs()
    outputs.patch_local.requires_grad_(True)
    outputs.word_local.requires_grad_(True)
    losses = MGCATokenAlignment(variant=variant)(outputs)
    sum(losses.values()).backward()
    assert outputs.patch_local.grad.abs().sum(-1).min() > 0
    assert outputs.word_local.grad[WORD_MASK].abs().sum(-1).min() > 0
    assert torch.isfinite(outputs.word_local.grad).all()


@pytest.mark.parametrize("variant", ["compat", "corrected"])
def test_cta_report_without_words_adds_nothing_and_stays_finite(variant):
    outputs = make_outputs()
    outputs.text.word_mask[1] = False
    outputs.text.cls_attention[1] = 0.0
    outputs.word_local = (outputs.word_local * outputs.text.word_mask[..., None]).requires_grad_(True)
    losses = MGCATokenAlignment(variant=variant)(outputs)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    assert torch.isfinite(outputs.word_local.grad).all()
    assert word_weights(outputs.text, W, shift=True)[1].abs().sum() == 0


def test_cta_unidirectional_and_errors():
    outputs = make_outputs()
    assert set(MGCATokenAlignment(bidirectional=False)(outputs)) == {"loss_mgca_cta_word"}
    outputs.word_local = None
    with pytest.raises(ValueError, match="word_local"):
        MGCATokenAlignment()(outputs)
    with pytest.raises(ValueError, match="variant"):
        MGCATokenAlignment(variant="x")


# -- CPA -------------------------------------------------------------------------------------
def make_cpa(**kw) -> MGCAPrototypeAlignment:
    torch.manual_seed(0)
    return MGCAPrototypeAlignment(embed_dim=D, num_prototypes=5, **kw).double()


def test_cpa_matches_hand_computation():
    outputs = make_outputs()
    module = make_cpa(weight=0.5)
    prototypes = module.prototypes.weight.detach().clone()
    loss = module(outputs)["loss_mgca_cpa"]
    assert loss.item() == pytest.approx(0.5 * hand_cpa(outputs, prototypes), rel=1e-5)  # codes in float32
    # rows re-normalized in place
    torch.testing.assert_close(module.prototypes.weight.norm(dim=1), torch.ones(5, dtype=torch.float64))


def test_cpa_hyperparameters_are_config_keys():
    outputs = make_outputs(seed=2)
    module = make_cpa(epsilon=0.1, sinkhorn_iterations=5, temperature=0.5)
    expected = hand_cpa(outputs, module.prototypes.weight.detach().clone(), eps=0.1, iterations=5, temp=0.5)
    assert module(outputs)["loss_mgca_cpa"].item() == pytest.approx(expected, rel=1e-5)


def test_sinkhorn_matches_hand_loops_and_has_equal_partition_marginals():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(6, 4, generator=g, dtype=torch.float64) * 2 - 1
    codes = sinkhorn_knopp(scores, 0.05, 3)
    assert codes.dtype == torch.float32
    torch.testing.assert_close(codes.double(), torch.tensor(hand_sinkhorn(scores.tolist(), 0.05, 3), dtype=torch.float64), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(codes.sum(1), torch.ones(6))  # each sample's code is a distribution
    converged = sinkhorn_knopp(scores, 0.5, 200)
    torch.testing.assert_close(converged.sum(1), torch.ones(6))
    torch.testing.assert_close(converged.sum(0), torch.full((4,), 6 / 4))  # equal partition over prototypes


def test_cpa_codes_carry_no_gradient():
    scores = torch.randn(3, 5, requires_grad=True)
    assert not sinkhorn_knopp(scores).requires_grad
    # gradient of the loss = the gradient with the codes held constant (test-side autograd)
    outputs = make_outputs()
    outputs.image_global.requires_grad_(True)
    outputs.text_global.requires_grad_(True)
    module = make_cpa(freeze_prototypes_epochs=0)
    module.prototypes.weight.data = torch.nn.functional.normalize(module.prototypes.weight.data, dim=1)
    c = module.prototypes.weight.detach().clone()
    module(outputs)["loss_mgca_cpa"].backward()
    v = outputs.image_global.detach().clone().requires_grad_(True)
    t = outputs.text_global.detach().clone().requires_grad_(True)
    sv = torch.nn.functional.normalize(v, dim=1) @ c.T
    st = torch.nn.functional.normalize(t, dim=1) @ c.T
    qv = torch.tensor(hand_sinkhorn(sv.tolist(), 0.05, 3), dtype=torch.float64)
    qt = torch.tensor(hand_sinkhorn(st.tolist(), 0.05, 3), dtype=torch.float64)
    ref = -0.5 * ((qv * torch.log_softmax(st / 0.2, 1)).sum(1).mean() + (qt * torch.log_softmax(sv / 0.2, 1)).sum(1).mean())
    ref.backward()
    torch.testing.assert_close(outputs.image_global.grad, v.grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(outputs.text_global.grad, t.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("mode", ["skip", "zero"])
def test_prototypes_frozen_during_first_epoch(mode):
    module = make_cpa(freeze_mode=mode)
    outputs = make_outputs()
    outputs.image_global.requires_grad_(True)
    module(outputs)["loss_mgca_cpa"].backward()
    grad = module.prototypes.weight.grad
    assert grad is None if mode == "skip" else (grad is not None and grad.abs().sum() == 0)
    assert outputs.image_global.grad.abs().sum() > 0  # the encoders still learn
    module.zero_grad(set_to_none=True)
    module.set_epoch(1)
    module(make_outputs())["loss_mgca_cpa"].backward()
    assert module.prototypes.weight.grad.abs().sum() > 0


def _sinkhorn_worker(rank, world, init_file, scores, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        half = scores.shape[0] // world
        codes = sinkhorn_knopp(scores[rank * half:(rank + 1) * half], 0.05, 3)
        torch.save(codes, os.path.join(out_dir, f"codes{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.timeout(120)
def test_sinkhorn_all_reduces_across_processes(tmp_path):
    """Two processes holding half a batch each get the codes of the whole batch."""
    import torch.multiprocessing as mp

    g = torch.Generator().manual_seed(1)
    scores = torch.rand(6, 5, generator=g) * 2 - 1
    # fork: the children need no fresh interpreter (spawn would re-import torch, seconds each)
    mp.start_processes(
        _sinkhorn_worker, args=(2, str(tmp_path / "init"), scores, str(tmp_path)), nprocs=2, join=True, start_method="fork"
    )
    got = torch.cat([torch.load(tmp_path / f"codes{r}.pt") for r in range(2)])
    torch.testing.assert_close(got, sinkhorn_knopp(scores, 0.05, 3))
    assert not torch.allclose(got[:3], sinkhorn_knopp(scores[:3], 0.05, 3))  # a local-only run differs


# -- registration ---------------------------------------------------------------------------------
def test_registers_and_builds_with_embed_dim():
    import inspect

    get_plugin_manager()  # the entry point registers it once pyproject lists it; else register here
    if "mgca_cta" not in registries.registry_for("objective").module_dict:
        mgca.place_bench_register(Registrar("mgca_test"))
    cta = registries.build("objective", dict(type="mgca_cta", variant="corrected"))
    cpa = registries.build("objective", dict(type="mgca_cpa"), embed_dim=16)
    assert isinstance(cta, MGCATokenAlignment) and cta.variant == "corrected"
    assert isinstance(cpa, MGCAPrototypeAlignment) and cpa.prototypes.weight.shape == (500, 16)
    assert cpa.prototypes.bias is None
    assert "embed_dim" in inspect.signature(MGCAPrototypeAlignment).parameters
