"""PLACE PCMA (spec/place.md, reconstruction): Φ, the symmetric InfoNCE, the observation-level
term, the diversity penalty and the Sinkhorn variant against hand computations (plain Python
float64 loops); T-POR span means, clauses and masking; gradients; query non-collapse."""

from __future__ import annotations

import math

import pytest
import torch

from place_bench import registry as registries
from place_bench.model.outputs import ImageFeatures, PairOutputs, TextBatch, TextFeatures
from place_bench.plugin_manager import Registrar, get_plugin_manager
from place_bench.plugins.objectives.place import pcma as pcma_module
from place_bench.plugins.objectives.place.pcma import PlacePCMA, pcma_terms, sinkhorn_plan
from place_bench.plugins.objectives.place.tpor import clause_spans, span_means
from place_bench.plugins.objectives.place.vpoe import VPOE

TAU = 0.07


# -- plain-Python reference ---------------------------------------------------------------------
def _unit(vec):
    norm = math.sqrt(sum(x * x for x in vec))
    return [x / norm for x in vec]


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def _lists(vpor, tpor, mask):
    """Normalized V (B, Q, d), T (B, S, d) as nested lists, and per report its real sentences."""
    v = [[_unit(q) for q in image] for image in vpor.tolist()]
    t = [[_unit(s) for s in report] for report in tpor.tolist()]
    real = [[m for m, keep in enumerate(row) if keep] for row in mask.tolist()]
    return v, t, real


def hand_phi_late(v, t, real):
    b = len(v)
    phi = [[0.0] * b for _ in range(b)]
    for i in range(b):
        for j in range(b):
            best = [max(_dot(t[j][m], q) for q in v[i]) for m in real[j]]
            phi[i][j] = sum(best) / len(best)
    return phi


def hand_phi_ot(v, t, real, eps=0.05, iterations=3):
    b = len(v)
    phi = [[0.0] * b for _ in range(b)]
    for i in range(b):
        for j in range(b):
            n_q, n_m = len(v[i]), len(real[j])
            s = [[_dot(v[i][q], t[j][m]) for m in real[j]] for q in range(n_q)]
            k = [[math.exp(s[q][m] / eps) for m in range(n_m)] for q in range(n_q)]
            u, w = [1.0] * n_q, [1.0] * n_m
            for _ in range(iterations):
                u = [(1.0 / n_q) / sum(k[q][m] * w[m] for m in range(n_m)) for q in range(n_q)]
                w = [(1.0 / n_m) / sum(k[q][m] * u[q] for q in range(n_q)) for m in range(n_m)]
            phi[i][j] = sum(u[q] * k[q][m] * w[m] * s[q][m] for q in range(n_q) for m in range(n_m))
    return phi


def hand_symmetric_infonce(phi, tau=TAU):
    b = len(phi)
    rows = [-(phi[i][i] / tau - math.log(sum(math.exp(phi[i][j] / tau) for j in range(b)))) for i in range(b)]
    cols = [-(phi[j][j] / tau - math.log(sum(math.exp(phi[i][j] / tau) for i in range(b)))) for j in range(b)]
    return sum(rows) / b + sum(cols) / b


def hand_observation(v, t, real, tau=TAU):
    losses = []
    for b, sentences in enumerate(real):
        for m in sentences:
            scores = [max(_dot(t[b][m], q) for q in image) for image in v]
            losses.append(-(scores[b] / tau - math.log(sum(math.exp(s / tau) for s in scores))))
    return sum(losses) / len(losses)


def hand_diversity(v):
    total = 0.0
    for image in v:
        for a, qa in enumerate(image):
            for c, qc in enumerate(image):
                total += (_dot(qa, qc) - (1.0 if a == c else 0.0)) ** 2
    return total / len(v)


def tiny_example(seed=0):
    """3 pairs, 2 queries, 2 sentence slots (report 2 has one sentence), d = 3, float64."""
    g = torch.Generator().manual_seed(seed)
    vpor = torch.randn(3, 2, 3, generator=g, dtype=torch.float64)
    tpor = torch.randn(3, 2, 3, generator=g, dtype=torch.float64) * 2.5  # unnormalized on purpose
    mask = torch.tensor([[True, True], [True, True], [True, False]])
    return vpor, tpor, mask


# -- the PCMA terms against hand computations ---------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_late_interaction_terms_match_hand_computation(seed):
    vpor, tpor, mask = tiny_example(seed)
    terms = pcma_terms(vpor, tpor, mask, mode="late_interaction", temperature=TAU)
    v, t, real = _lists(vpor, tpor, mask)
    phi = hand_phi_late(v, t, real)
    assert terms["phi"].dtype == torch.float64
    torch.testing.assert_close(terms["phi"], torch.tensor(phi, dtype=torch.float64), rtol=0, atol=1e-12)
    assert terms["pair"].item() == pytest.approx(hand_symmetric_infonce(phi), rel=1e-10)
    assert terms["obs"].item() == pytest.approx(hand_observation(v, t, real), rel=1e-10)
    assert terms["div"].item() == pytest.approx(hand_diversity(v), rel=1e-10)
    # the padded sentence's vector takes no part
    tpor2 = tpor.clone()
    tpor2[2, 1] = torch.tensor([9.0, -9.0, 9.0], dtype=torch.float64)
    again = pcma_terms(vpor, tpor2, mask)
    for key in ("phi", "pair", "obs", "div"):
        assert torch.allclose(again[key], terms[key], atol=0, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_optimal_transport_matches_hand_sinkhorn(seed):
    vpor, tpor, mask = tiny_example(seed)
    terms = pcma_terms(vpor, tpor, mask, mode="optimal_transport", temperature=TAU, ot_epsilon=0.05, ot_iterations=3)
    v, t, real = _lists(vpor, tpor, mask)
    phi = hand_phi_ot(v, t, real, eps=0.05, iterations=3)
    torch.testing.assert_close(terms["phi"], torch.tensor(phi, dtype=torch.float64), rtol=0, atol=1e-10)
    assert terms["pair"].item() == pytest.approx(hand_symmetric_infonce(phi), rel=1e-9)
    # the OT plan differs from the max: Φ_OT ≠ Φ_late here, and the obs / div terms are shared
    late = hand_phi_late(v, t, real)
    assert max(abs(a - b) for ra, rb in zip(phi, late) for a, b in zip(ra, rb)) > 1e-3
    assert terms["obs"].item() == pytest.approx(hand_observation(v, t, real), rel=1e-10)
    # other ε / iterations are honoured
    other = pcma_terms(vpor, tpor, mask, mode="optimal_transport", ot_epsilon=0.5, ot_iterations=5)
    torch.testing.assert_close(other["phi"], torch.tensor(hand_phi_ot(v, t, real, eps=0.5, iterations=5), dtype=torch.float64), rtol=0, atol=1e-10)


def test_sinkhorn_marginals_and_padding():
    g = torch.Generator().manual_seed(3)
    sim = torch.rand(2, 2, 3, 4, generator=g, dtype=torch.float64) * 2 - 1
    mask = torch.tensor([[True, True, False], [True, True, True]])
    plan = sinkhorn_plan(sim, mask, epsilon=0.05, iterations=3)
    assert plan.shape == (2, 2, 3, 4)
    assert torch.all(plan[:, 0, 2] == 0)  # padded sentence: no mass
    column = plan.sum(-1)  # per sentence, ends exact after the last column scaling
    assert torch.allclose(column[:, 0, :2], torch.full((2, 2), 0.5, dtype=torch.float64))
    assert torch.allclose(column[:, 1], torch.full((2, 3), 1 / 3, dtype=torch.float64))
    assert torch.allclose(plan.sum((-1, -2)), torch.ones(2, 2, dtype=torch.float64))


def test_terms_reject_bad_settings():
    vpor, tpor, mask = tiny_example()
    with pytest.raises(ValueError, match="mode"):
        pcma_terms(vpor, tpor, mask, mode="max")
    with pytest.raises(ValueError, match="temperature"):
        PlacePCMA(embed_dim=8, num_heads=2, temperature=0)
    with pytest.raises(ValueError, match="source"):
        PlacePCMA(embed_dim=8, num_heads=2, tpor_source="paragraphs")
    with pytest.raises(ValueError, match="num_heads"):
        PlacePCMA(embed_dim=6, num_heads=4)


# -- the objective on PairOutputs ----------------------------------------------------------------
D, GRID = 8, (2, 3)


def make_outputs(spans, sentence_mask, word_mask, seed=0, local=True, dtype=torch.float32, words=None):
    """PairOutputs with random patch_local (B, 6, D) and word_local (B, W, D) leaves (grad on)."""
    g = torch.Generator().manual_seed(seed)
    spans = torch.tensor(spans, dtype=torch.long)
    sentence_mask = torch.tensor(sentence_mask)
    word_mask = torch.tensor(word_mask)
    b, w = word_mask.shape
    n = GRID[0] * GRID[1]
    word_local = (torch.randn(b, w, D, generator=g, dtype=dtype) * word_mask[..., None]).requires_grad_(True)
    patch_local = torch.randn(b, n, D, generator=g, dtype=dtype).requires_grad_(True)
    batch = TextBatch(
        input_ids=torch.zeros(b, w + 2, dtype=torch.long),
        attention_mask=torch.ones(b, w + 2, dtype=torch.bool),
        word_ids=torch.full((b, w + 2), -1, dtype=torch.long),
        word_to_sentence=torch.full((b, w), -1, dtype=torch.long),
        words=words or [[f"w{i}" for i in range(int(row.sum()))] for row in word_mask],
    )
    text = TextFeatures(
        cls_embedding=torch.zeros(b, 5, dtype=dtype),
        token_features=torch.zeros(b, w + 2, 5, dtype=dtype),
        token_mask=batch.attention_mask,
        word_features=torch.randn(b, w, 5, generator=g, dtype=dtype) * word_mask[..., None],
        word_mask=word_mask,
        sentence_spans=spans,
        sentence_mask=sentence_mask,
        cls_attention=None,
        batch=batch,
    )
    image = ImageFeatures(
        global_embedding=torch.zeros(b, 7, dtype=dtype),
        local_tokens=torch.randn(b, n, 7, generator=g, dtype=dtype),
        grid_size=GRID,
    )
    return PairOutputs(
        image=image,
        text=text,
        image_global=torch.zeros(b, D, dtype=dtype),
        text_global=torch.zeros(b, D, dtype=dtype),
        patch_local=patch_local if local else None,
        word_local=word_local if local else None,
    )


# report 0: 3 sentences over 7 words; report 1: one sentence of 2 words (rest padding);
# report 2: 2 sentences over 5 words.
SPANS = [[[0, 2], [2, 5], [5, 7]], [[0, 2], [0, 0], [0, 0]], [[0, 3], [3, 5], [0, 0]]]
SENTENCE_MASK = [[True, True, True], [True, False, False], [True, True, False]]
WORD_MASK = [[True] * 7, [True] * 2 + [False] * 5, [True] * 5 + [False] * 2]


def test_tpor_span_means_by_hand_and_shapes():
    out = make_outputs(SPANS, SENTENCE_MASK, WORD_MASK)
    objective = PlacePCMA(embed_dim=D, num_queries=2, depth=1, num_heads=2)
    seen = objective.observe(out)
    assert seen["vpor"].shape == (3, 2, D)
    assert seen["attention"].shape == (3, 2, 6) and seen["attentions"].shape == (1, 3, 2, 6)
    assert seen["grid"] == GRID
    assert seen["tpor"].shape == (3, 3, D) and seen["tpor_mask"].tolist() == SENTENCE_MASK
    assert seen["phi"].shape == (3, 3)
    assert torch.allclose(seen["attention"].sum(-1), torch.ones(3, 2), atol=1e-5)
    assert torch.allclose(seen["vpor"].norm(dim=-1), torch.ones(3, 2), atol=1e-5)
    words = out.word_local.detach()
    for b, row in enumerate(SPANS):
        for s, (start, end) in enumerate(row):
            if SENTENCE_MASK[b][s]:
                mean = words[b, start:end].mean(0)
                assert torch.allclose(seen["tpor"][b, s], mean / mean.norm(), atol=1e-6)
    raw, mask = span_means(words, torch.tensor(SPANS), torch.tensor(SENTENCE_MASK))
    assert torch.all(raw[~mask] == 0)
    # a span reaching into padded words averages the real words only
    filled = torch.ones(1, 4, 2)
    filled[0, 2:] = 100.0
    raw, mask = span_means(filled, torch.tensor([[[0, 4]]]), torch.tensor([[True]]), torch.tensor([[True, True, False, False]]))
    assert raw.tolist() == [[[1.0, 1.0]]] and mask.tolist() == [[True]]


def test_padding_does_not_change_the_losses():
    out = make_outputs(SPANS, SENTENCE_MASK, WORD_MASK)
    torch.manual_seed(0)
    objective = PlacePCMA(embed_dim=D, num_queries=2, depth=1, num_heads=2)
    before = objective(out)
    # garbage at padded words and at padded sentence slots' spans
    out.word_local = out.word_local.detach().clone()
    out.word_local[1, 2:] = 50.0
    out.word_local[2, 5:] = -50.0
    out.text.sentence_spans = out.text.sentence_spans.clone()
    out.text.sentence_spans[1, 1] = torch.tensor([0, 7])
    out.text.sentence_spans[2, 2] = torch.tensor([1, 6])
    after = objective(out)
    for key in before:
        assert after[key].item() == pytest.approx(before[key].item(), rel=1e-6, abs=1e-7), key


def test_objective_weights_and_keys():
    out = make_outputs(SPANS, SENTENCE_MASK, WORD_MASK)
    torch.manual_seed(0)
    objective = PlacePCMA(embed_dim=D, num_queries=2, depth=1, num_heads=2, weight=2.0, obs_weight=0.5, diversity_weight=0.3)
    losses = objective(out)
    assert set(losses) == {"loss_pcma", "loss_pcma_obs", "loss_pcma_div"}
    seen = objective.observe(out)
    terms = pcma_terms(seen["vpor"], seen["tpor"], seen["tpor_mask"])
    assert losses["loss_pcma"].item() == pytest.approx(2.0 * terms["pair"].item(), rel=1e-5)
    assert losses["loss_pcma_obs"].item() == pytest.approx(0.5 * terms["obs"].item(), rel=1e-5)
    assert losses["loss_pcma_div"].item() == pytest.approx(0.3 * terms["div"].item(), rel=1e-5)
    defaults = PlacePCMA(embed_dim=D, num_heads=2)
    assert (defaults.vpoe.num_queries, defaults.vpoe.depth, defaults.mode, defaults.temperature) == (16, 2, "late_interaction", 0.07)
    assert (defaults.weight, defaults.obs_weight, defaults.diversity_weight) == (1.0, 1.0, 0.1)
    assert (defaults.ot_epsilon, defaults.ot_iterations, defaults.tpor.source) == (0.05, 3, "sentences")


def test_report_without_sentences_leaves_the_pair_loss():
    spans = SPANS[:2] + [[[0, 0], [0, 0], [0, 0]]]
    sentence_mask = SENTENCE_MASK[:2] + [[False, False, False]]
    word_mask = WORD_MASK[:2] + [[False] * 7]
    out = make_outputs(spans, sentence_mask, word_mask)
    torch.manual_seed(0)
    objective = PlacePCMA(embed_dim=D, num_queries=2, depth=1, num_heads=2)
    for mode in ("late_interaction", "optimal_transport"):
        objective.mode = mode
        losses = objective(out)
        sum(losses.values()).backward()
        assert all(torch.isfinite(v) for v in losses.values())
        assert torch.isfinite(out.patch_local.grad).all() and torch.isfinite(out.word_local.grad).all()
        seen = objective.observe(out)
        assert seen["phi"][:, 2].abs().max() == 0
        sub = pcma_terms(seen["vpor"][:2], seen["tpor"][:2], seen["tpor_mask"][:2], mode=mode)
        assert losses["loss_pcma"].item() == pytest.approx(sub["pair"].item(), rel=1e-5)
        out.patch_local.grad = out.word_local.grad = None


@pytest.mark.parametrize("mode", ["late_interaction", "optimal_transport"])
def test_gradients_reach_queries_and_both_inputs(mode):
    out = make_outputs(SPANS, SENTENCE_MASK, WORD_MASK)
    torch.manual_seed(0)
    objective = PlacePCMA(embed_dim=D, num_queries=2, depth=2, num_heads=2, mode=mode)
    losses = objective(out)
    losses["loss_pcma"].backward(retain_graph=True)
    for name, grad in (("queries", objective.vpoe.queries.grad), ("patch_local", out.patch_local.grad), ("word_local", out.word_local.grad)):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name
    # padded words get no gradient from the T-PORs
    assert out.word_local.grad[1, 2:].abs().sum() == 0
    objective.zero_grad()
    losses["loss_pcma_div"].backward()
    assert objective.vpoe.queries.grad.abs().sum() > 0


def test_own_input_projections_without_local_heads():
    out = make_outputs(SPANS, SENTENCE_MASK, WORD_MASK, local=False)
    with pytest.raises(ValueError, match="image_local_projection"):
        PlacePCMA(embed_dim=D, num_queries=2, depth=1, num_heads=2)(out)
    torch.manual_seed(0)
    objective = PlacePCMA(embed_dim=D, num_queries=2, depth=1, num_heads=2, image_in_dim=7, text_in_dim=5)
    sum(objective(out).values()).backward()
    assert objective.vpoe.input_proj.weight.grad.abs().sum() > 0
    assert objective.tpor.input_proj.weight.grad.abs().sum() > 0


def test_clause_spans():
    words = [["the", "heart", "is", "normal", ",", "lungs", "clear", "and", "no", "effusion", "."],
             ["stable", ";", ";", "But", "improved", "."]]
    spans = torch.tensor([[[0, 11], [0, 0]], [[0, 2], [2, 6]]])
    mask = torch.tensor([[True, False], [True, True]])
    out, out_mask = clause_spans(spans, mask, words)
    assert out_mask.tolist() == [[True, True, True], [True, True, False]]
    assert out[0].tolist() == [[0, 4], [5, 7], [8, 11]]
    assert out[1, :2].tolist() == [[0, 1], [4, 6]]
    # the objective with source='clauses' averages over clause spans
    outputs = make_outputs(SPANS, SENTENCE_MASK, WORD_MASK,
                           words=[["a", ",", "b", "c", "and", "d", "e"], ["x", "y"], ["p", "q", "r", "s", "t"]])
    objective = PlacePCMA(embed_dim=D, num_queries=2, depth=1, num_heads=2, tpor_source="clauses")
    seen = objective.observe(outputs)
    # report 0: sentences [0,2) [2,5) [5,7) -> clauses [0,1) [2,4) [5,7)
    assert seen["tpor_spans"][0].tolist() == [[0, 1], [2, 4], [5, 7]]
    mean = outputs.word_local.detach()[0, 2:4].mean(0)
    assert torch.allclose(seen["tpor"][0, 1], mean / mean.norm(), atol=1e-6)


def test_registered_and_built_with_embed_dim():
    get_plugin_manager()
    if "place_pcma" not in {c.name for c in registries.components("objective")}:
        pcma_module.place_bench_register(Registrar("place_pcma_test"))
    objective = registries.build("objective", dict(type="place_pcma", num_queries=4, depth=1), embed_dim=16)
    assert isinstance(objective, PlacePCMA) and objective.vpoe.queries.shape == (4, 16)


# -- queries do not collapse ---------------------------------------------------------------------
def _mean_offdiagonal_abs_cos(objective, outputs):
    with torch.no_grad():
        v = objective.observe(outputs)["vpor"]
    gram = (v @ v.transpose(1, 2)).abs()
    off = ~torch.eye(v.shape[1], dtype=torch.bool)
    return gram[:, off].mean().item()


@pytest.fixture
def one_thread():
    """Many tiny ops: one intra-op thread is several times faster than two on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train(diversity_weight, steps=100):
    d, q = 16, 4
    g = torch.Generator().manual_seed(0)
    spans = [[[0, 4], [4, 8], [8, 12]]] * 4
    out = make_outputs(spans, [[True] * 3] * 4, [[True] * 12] * 4)
    # fixed random patches and words in the d = 16 space (no gradient to them)
    out.patch_local = torch.randn(4, 6, d, generator=g)
    out.word_local = torch.randn(4, 12, d, generator=g)
    torch.manual_seed(0)
    objective = PlacePCMA(embed_dim=d, num_queries=q, depth=1, num_heads=2, diversity_weight=diversity_weight)
    optimizer = torch.optim.Adam(objective.parameters(), lr=1e-3)
    start = _mean_offdiagonal_abs_cos(objective, out)
    for _ in range(steps):
        loss = sum(objective(out).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return start, _mean_offdiagonal_abs_cos(objective, out)


def test_queries_do_not_collapse_with_the_diversity_penalty(one_thread):
    """Bound: the mean |cos| of independent random directions in d dims, sqrt(2/(π d)) ≈ 0.20
    at d = 16. Collapsed queries sit near 1; the penalty's minimum is 0 (orthogonal, Q ≤ d).
    With the penalty (weight 0.1) the trained V-PORs must be at least as spread as random
    directions; without it (the control) the alignment losses alone pull them together, above
    where they started, so the test fails if the penalty stops acting."""
    bound = math.sqrt(2 / (math.pi * 16))
    start, end = _train(0.1)
    assert end < bound, (start, end)
    control_start, control_end = _train(0.0)
    assert control_start == pytest.approx(start)
    assert control_end > max(bound, control_start), (control_start, control_end)


def test_vpoe_reads_its_patches():
    torch.manual_seed(0)
    vpoe = VPOE(embed_dim=8, num_queries=3, depth=2, num_heads=2)
    patches = torch.randn(2, 6, 8)
    out = vpoe(patches)
    assert out.vpor.shape == (2, 3, 8) and out.attention.shape == (2, 3, 6) and out.attentions.shape == (2, 2, 3, 6)
    assert torch.equal(out.attention, out.attentions[-1])
    # image 0's output does not depend on image 1's patches
    patches2 = patches.clone()
    patches2[1] += torch.randn(6, 8)
    again = vpoe(patches2)
    assert torch.allclose(again.vpor[0], out.vpor[0], atol=1e-6) and not torch.allclose(again.vpor[1], out.vpor[1])


@pytest.mark.parametrize("mode,source", [("late_interaction", "sentences"), ("optimal_transport", "clauses")])
def test_tiny_model_end_to_end_gradients_reach_both_encoders(mode, source):
    """Real tiny encoders: real sentence spans (a one-sentence report beside a longer one),
    and the PCMA losses alone send gradient into the image and the text encoder."""
    from place_bench import api

    get_plugin_manager()
    if "place_pcma" not in {c.name for c in registries.components("objective")}:
        pcma_module.place_bench_register(Registrar("place_pcma_test"))
    cfg = api.load_config("eval/embed_tiny")
    cfg.model.objectives = [dict(type="place_pcma", num_queries=4, depth=1, mode=mode, tpor_source=source)]
    cfg.model.image_local_projection = dict(type="projection")
    cfg.model.text_local_projection = dict(type="projection")
    torch.manual_seed(0)
    model = api.build_model(cfg)
    reports = ["Heart size is normal, lungs are clear and there is no effusion. No pneumothorax.", "Stable."]
    losses = model.losses(torch.randn(2, 3, 64, 64), reports)
    assert set(losses) == {"loss_pcma", "loss_pcma_obs", "loss_pcma_div"}
    assert all(torch.isfinite(v) for v in losses.values())
    (losses["loss_pcma"] + losses["loss_pcma_obs"]).backward()
    for prefix in ("image_encoder.", "text_encoder.", "objectives.0.vpoe.queries"):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix) and p.grad is not None]
        assert grads and sum(g.abs().sum() for g in grads) > 0, prefix
    seen = model.objectives[0].observe(model.pair_outputs(torch.randn(2, 3, 64, 64), reports))
    expected = [[True, True, True, True], [True, False, False, False]] if source == "clauses" else [[True, True], [True, False]]
    assert seen["tpor_mask"].tolist() == expected
    assert seen["attention"].shape == (2, 4, 64) and seen["grid"] == (8, 8)
