"""GLoRIA objective: values against a hand computation (plain Python, float64), masking,
the [CLS] slot, gradients and registration."""

from __future__ import annotations

import math

import pytest
import torch

from place_bench import registry as registries
from place_bench.model.outputs import ImageFeatures, PairOutputs, TextBatch, TextFeatures
from place_bench.plugin_manager import Registrar, get_plugin_manager
from place_bench.plugins.objectives import gloria
from place_bench.plugins.objectives.gloria import GLoRIALoss

B, N, W, D = 3, 4, 3, 4
WORD_MASK = torch.tensor([[True, True, True], [True, True, False], [True, False, False]])


def make_outputs(seed: int = 0, with_word_local: bool = True) -> PairOutputs:
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64)

    word_features = randn(B, W, D) * WORD_MASK[..., None]
    word_ids = torch.tensor([[-1, 0, 1, 2, -1], [-1, 0, 1, -1, -1], [-1, 0, -1, -1, -1]])
    batch = TextBatch(
        input_ids=torch.zeros(B, 5, dtype=torch.long),
        attention_mask=word_ids >= -1,
        word_ids=word_ids,
        word_to_sentence=torch.where(WORD_MASK, 0, -1),
    )
    text = TextFeatures(
        cls_embedding=randn(B, D),
        token_features=torch.zeros(B, 5, D, dtype=torch.float64),
        token_mask=torch.ones(B, 5, dtype=torch.bool),
        word_features=word_features,
        word_mask=WORD_MASK.clone(),
        sentence_spans=torch.zeros(B, 1, 2, dtype=torch.long),
        sentence_mask=torch.ones(B, 1, dtype=torch.bool),
        cls_attention=None,
        batch=batch,
    )
    image = ImageFeatures(
        global_embedding=torch.zeros(B, 8, dtype=torch.float64),
        local_tokens=torch.zeros(B, N, 8, dtype=torch.float64),
        grid_size=(2, 2),
    )
    return PairOutputs(
        image=image,
        text=text,
        image_global=randn(B, D),
        text_global=randn(B, D),
        patch_local=randn(B, N, D),
        word_local=(randn(B, W, D) * WORD_MASK[..., None]) if with_word_local else None,
    )


# -- the hand computation ------------------------------------------------------------------
def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


def norm(a):
    return math.sqrt(dot(a, a))


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [v / sum(e) for v in e]


def mean_ce_rows(matrix):
    """Batch mean of −log softmax(row i)[i]."""
    return sum(-math.log(softmax(row)[i]) for i, row in enumerate(matrix)) / len(matrix)


def transpose(matrix):
    return [list(col) for col in zip(*matrix)]


def hand_words(outputs, include_cls: bool, use_local: bool):
    words = (outputs.word_local if use_local else outputs.text.word_features).tolist()
    cls = (outputs.text_global if use_local else outputs.text.cls_embedding).tolist()
    mask = outputs.text.word_mask.tolist()
    reports = []
    for k in range(B):
        real = [words[k][w] for w in range(W) if mask[k][w]]
        reports.append(([cls[k]] if include_cls else []) + real)
    return reports


def hand_local_score(regions, words, variant, t1, t2, eps=1e-8):
    """Z for one image (list of N region vectors) and one report (list of word vectors)."""
    dots = [[dot(e, v) for v in regions] for e in words]  # [word][region]
    if variant == "compat":
        over_words = [softmax([dots[w][r] for w in range(len(words))]) for r in range(len(regions))]  # [region][word]
        attention = [softmax([t1 * over_words[r][w] for r in range(len(regions))]) for w in range(len(words))]
    else:
        attention = [softmax([t1 * x for x in dots[w]]) for w in range(len(words))]
    total = 0.0
    for w, e in enumerate(words):
        c = [sum(attention[w][r] * regions[r][i] for r in range(len(regions))) for i in range(len(e))]
        if variant == "compat":
            cos = dot(c, e) / max(norm(c) * norm(e), eps)
        else:
            cos = dot(c, e) / (max(norm(c), eps) * max(norm(e), eps))
        total += math.exp(t2 * cos)
    return math.log(total)


def hand_gloria(outputs, variant, t1=4.0, t2=5.0, t3=10.0, include_cls=None, use_local=True):
    include_cls = (variant == "compat") if include_cls is None else include_cls
    reports = hand_words(outputs, include_cls, use_local)
    patches = outputs.patch_local.tolist()
    local = [[t3 * hand_local_score(patches[j], reports[k], variant, t1, t2) for k in range(B)] for j in range(B)]
    v, t = outputs.image_global.tolist(), outputs.text_global.tolist()
    glob = [[t3 * dot(v[j], t[k]) / (norm(v[j]) * norm(t[k])) for k in range(B)] for j in range(B)]
    return (
        mean_ce_rows(local) + mean_ce_rows(transpose(local)),
        mean_ce_rows(glob) + mean_ce_rows(transpose(glob)),
    )


# -- tests -----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["compat", "corrected"])
def test_matches_hand_computation(variant):
    outputs = make_outputs()
    losses = GLoRIALoss(variant=variant, local_weight=0.7, global_weight=1.3)(outputs)
    local, glob = hand_gloria(outputs, variant)
    assert set(losses) == {"loss_gloria_local", "loss_gloria_global"}
    assert losses["loss_gloria_local"].item() == pytest.approx(0.7 * local, rel=1e-9)
    assert losses["loss_gloria_global"].item() == pytest.approx(1.3 * glob, rel=1e-9)


def test_temperatures_are_config_keys():
    outputs = make_outputs(seed=3)
    losses = GLoRIALoss(temp1=2.0, temp2=3.0, temp3=7.0)(outputs)
    local, glob = hand_gloria(outputs, "compat", t1=2.0, t2=3.0, t3=7.0)
    assert losses["loss_gloria_local"].item() == pytest.approx(local, rel=1e-9)
    assert losses["loss_gloria_global"].item() == pytest.approx(glob, rel=1e-9)


def test_variants_differ():
    outputs = make_outputs()
    compat = GLoRIALoss(variant="compat")(outputs)["loss_gloria_local"]
    corrected = GLoRIALoss(variant="corrected")(outputs)["loss_gloria_local"]
    assert abs(compat.item() - corrected.item()) > 1e-3


def test_raw_word_features_with_cls_embedding_when_no_local_projection():
    outputs = make_outputs(with_word_local=False)
    losses = GLoRIALoss()(outputs)
    local, _ = hand_gloria(outputs, "compat", use_local=False)
    assert losses["loss_gloria_local"].item() == pytest.approx(local, rel=1e-9)


@pytest.mark.parametrize("variant", ["compat", "corrected"])
def test_padded_words_never_count(variant):
    outputs = make_outputs()
    before = GLoRIALoss(variant=variant)(outputs)["loss_gloria_local"].item()
    outputs.word_local[~WORD_MASK] = 5.0  # garbage in the padded slots
    after = GLoRIALoss(variant=variant)(outputs)["loss_gloria_local"].item()
    assert after == pytest.approx(before, rel=1e-12)
    outputs.word_local[1, 1] += 1.0  # a real word does count
    assert GLoRIALoss(variant=variant)(outputs)["loss_gloria_local"].item() != pytest.approx(before, rel=1e-6)


def test_cls_slot_counts_in_compat_only():
    outputs = make_outputs(with_word_local=False)
    compat = GLoRIALoss(variant="compat")(outputs)["loss_gloria_local"].item()
    corrected = GLoRIALoss(variant="corrected")(outputs)["loss_gloria_local"].item()
    outputs.text.cls_embedding += 1.0
    assert GLoRIALoss(variant="compat")(outputs)["loss_gloria_local"].item() != pytest.approx(compat, rel=1e-6)
    assert GLoRIALoss(variant="corrected")(outputs)["loss_gloria_local"].item() == pytest.approx(corrected, rel=1e-12)
    forced = GLoRIALoss(variant="corrected", include_cls=True)(outputs)["loss_gloria_local"].item()
    assert forced != pytest.approx(corrected, rel=1e-6)


@pytest.mark.parametrize("variant", ["compat", "corrected"])
def test_gradients_reach_regions_and_real_words(variant):
    outputs = make_outputs()
    for name in ("patch_local", "word_local", "image_global", "text_global"):
        setattr(outputs, name, getattr(outputs, name).clone().requires_grad_(True))
    losses = GLoRIALoss(variant=variant)(outputs)
    sum(losses.values()).backward()
    assert outputs.patch_local.grad.abs().sum() > 0
    assert outputs.image_global.grad.abs().sum() > 0
    word_grad = outputs.word_local.grad
    assert word_grad[WORD_MASK].abs().sum(-1).min() > 0  # every real word
    assert word_grad[~WORD_MASK].abs().sum() == 0  # no padded slot
    # text_global feeds the [CLS] slot (compat) besides the global loss
    assert outputs.text_global.grad.abs().sum() > 0


def test_width_mismatch_and_missing_regions_are_errors():
    outputs = make_outputs(with_word_local=False)
    outputs.text.word_features = torch.zeros(B, W, D + 1, dtype=torch.float64)
    with pytest.raises(ValueError, match="width"):
        GLoRIALoss()(outputs)
    outputs = make_outputs()
    outputs.patch_local = None
    with pytest.raises(ValueError, match="patch_local"):
        GLoRIALoss()(outputs)
    with pytest.raises(ValueError, match="variant"):
        GLoRIALoss(variant="paper")


def test_registers_and_builds_from_config():
    get_plugin_manager()  # the entry point registers it once pyproject lists it; else register here
    if "gloria" not in registries.registry_for("objective").module_dict:
        gloria.place_bench_register(Registrar("gloria_test"))
    loss = registries.build("objective", dict(type="gloria", variant="corrected", temp3=5.0))
    assert isinstance(loss, GLoRIALoss) and loss.variant == "corrected" and loss.temp3 == 5.0


def test_empty_report_keeps_cls_in_compat_and_is_an_error_in_corrected():
    outputs = make_outputs()
    outputs.text.word_mask[2] = False
    assert torch.isfinite(GLoRIALoss(variant="compat")(outputs)["loss_gloria_local"])
    with pytest.raises(ValueError, match="report 2"):
        GLoRIALoss(variant="corrected")(outputs)
