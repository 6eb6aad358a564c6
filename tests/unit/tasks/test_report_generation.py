"""``rrg`` (place_bench.plugins.tasks.report_generation) and its metrics (place_bench.evaluation.nlg):
R2Gen cleaning and vocabulary, greedy / beam decoding, NLG metrics equal to pycocoevalcap, the
labeler-based clinical efficacy, a missing Java, and training on the synthetic IU X-ray emulation
(tiny decoder, the tiny 64 px ViT) and a small MIMIC emulation."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("pycocoevalcap")

from place_bench.engine.task import DatasetRef, EvalContext, Unit  # noqa: E402
from place_bench.evaluation import nlg  # noqa: E402
from place_bench.plugins.tasks import report_generation as rg  # noqa: E402

HAS_JAVA = shutil.which("java") is not None
TINY_DECODER = dict(num_layers=2, hidden_size=64, num_heads=2, intermediate_size=128, dropout=0.1, visual_layers=1)
TINY = dict(decoder=TINY_DECODER, lr=3e-3, epochs=20, batch_size=8, val_interval=5, beam_size=2, val_beam_size=1,
            num_workers=0, n_resamples=30)


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def subject():
    from place_bench.engine.evaluate import load_subject

    sub = load_subject("eval/embed_tiny")
    sub.model.eval()
    return sub


@pytest.fixture(scope="module")
def iu(tmp_path_factory) -> DatasetRef:
    from place_bench.plugins.datasets.iu_xray import IUXrayDataset
    from place_bench.plugins.datasets.synthetic.emulators import emulate

    base = tmp_path_factory.mktemp("rrg_iu")
    emulated = emulate("iu_xray", base / "iu_xray", size="tiny", seed=0)
    result = IUXrayDataset().prepare(emulated.root, "r2gen", base / "out", check_images=False)
    return DatasetRef.open(result.manifest_path)


@pytest.fixture(scope="module")
def mimic(tmp_path_factory) -> DatasetRef:
    from place_bench.plugins.datasets.mimic_rrg import MimicRRGDataset
    from place_bench.plugins.datasets.synthetic.emulators import emulate

    base = tmp_path_factory.mktemp("rrg_mimic")
    emulated = emulate("mimic_rrg", base / "mimic_rrg", size="tiny", seed=0,
                       counts={"pretrain": 24, "valid": 6, "test": 6, "5xn": 1})
    result = MimicRRGDataset().prepare(emulated.root, "r2gen", base / "out", check_images=False)
    return DatasetRef.open(result.manifest_path)


def context(subject, dataset, tmp_path) -> EvalContext:
    return EvalContext(model=subject.model, subject_id=subject.sha256, dataset=dataset, work_dir=tmp_path / "work",
                       cache_dir=tmp_path / "work" / "cache", device=torch.device("cpu"), log=lambda *_: None,
                       pipeline=dict((subject.config.get("data") or {}).get("pipeline") or {}))


# ------------------------------------------------------------------------------- text handling
def test_r2gen_cleaning_on_fixture_strings():
    iu = rg.clean_report_iu_xray
    assert iu("The heart is normal. Lungs are clear.") == "the heart is normal . lungs are clear ."
    # repeated periods collapse; numbering "1." .. "5." goes; punctuation (incl. R2Gen's ':'..'[' range) is
    # stripped per sentence while hyphens and digits stay
    assert iu("1. Heart size normal.. 2. No effusion (left), XXXX: stable!") == \
        "heart size normal . no effusion left xxxx stable ."
    assert iu("Moderate-sized effusion; T11 level = 3 cm /vs/ 'prior'...") == \
        "moderate-sized effusion t11 level  3 cm vs prior ."
    assert iu("Grade 2. Mild opacity") == "grade . mild opacity ."
    assert iu("") == " ."  # R2Gen keeps empty sentences
    mimic = rg.clean_report_mimic_cxr
    assert mimic("FINDINGS:\nNo focal  consolidation. ___ Mild\n\ncardiomegaly.") == \
        "findings no focal consolidation .  mild cardiomegaly ."
    assert mimic("A.\nB") == "a . b ."  # newline -> space before the split
    assert iu("A.\nB") == "a\nb ."  # IU keeps newlines (tokenization splits on them)
    with pytest.raises(ValueError, match="cleaner"):
        rg.clean_report("x", "chexpert")


def test_vocabulary_thresholds_ids_and_truncation():
    reports = ["the heart is normal .", "the heart is large .", "the lungs are clear ."]
    vocab = rg.Vocabulary.build(reports, threshold=2)
    # tokens seen >= 2 times plus <unk>, sorted, ids from 1; 0 is BOS / EOS / PAD
    assert vocab.idx2token[1:] == sorted([".", "<unk>", "heart", "is", "the"])
    assert vocab.token2idx["."] == 1 and len(vocab) == 6
    ids = vocab.encode("the heart is enlarged .", max_length=60)
    assert ids[0] == 0 and ids[-1] == 0 and ids[1:-1] == [vocab.token2idx[t] for t in ("the", "heart", "is")] + \
        [vocab.unk, 1]
    assert vocab.decode(ids[1:]) == "the heart is <unk> ."
    # max_length counts BOS (and EOS when it fits): at most max_length - 1 words survive
    assert vocab.decode(vocab.encode("the heart is the heart is .", max_length=4)[1:]) == "the heart is"


# ------------------------------------------------------------------------------------ decoding
def _toy_step(table: dict):
    """A step function whose next-token log-probabilities depend on the last token only."""
    def step(memory, seqs):
        rows = [table.get(int(s[-1]), table["default"]) for s in seqs]
        return torch.log(torch.tensor(rows, dtype=torch.float32))
    return step


def test_beam_search_finds_the_better_sequence_and_beam_one_is_greedy():
    # vocab: 0 EOS, 1, 2, 3. Greedy takes 1 (0.6) then must spread (max 0.4); beam finds 2 -> EOS (0.4 * 0.9).
    table = {0: [0.7, 0.1, 0.1, 0.1], 1: [0.3, 0.3, 0.2, 0.2], 2: [0.9, 0.05, 0.03, 0.02],
             3: [0.25, 0.25, 0.25, 0.25], "default": [0.2, 0.4, 0.3, 0.1]}
    table[0] = [0.01, 0.6, 0.39 - 0.01, 0.02]
    memory = torch.zeros(2, 1, 4)
    step = _toy_step(table)
    greedy = rg.greedy_decode(step, memory, max_new=6)
    assert greedy[0][0] == 1 and greedy[0] == greedy[1]
    assert rg.beam_decode(step, memory, 1, 6) == greedy
    beam = rg.beam_decode(step, memory, 3, 6)
    assert beam == [[2], [2]]
    # length cap: a model that never emits EOS stops at max_new tokens
    never = _toy_step({"default": [1e-9, 0.5, 0.3, 0.2 - 1e-9]})
    assert [len(s) for s in rg.beam_decode(never, memory, 2, 5)] == [5, 5]
    assert [len(s) for s in rg.greedy_decode(never, memory, 5)] == [5, 5]
    # trigram penalty (inf = block): "1 1 1" would repeat the trigram (1, 1, 1)
    ones = _toy_step({"default": [0.01, 0.9, 0.05, 0.04]})
    assert rg.greedy_decode(ones, memory[:1], 5) == [[1, 1, 1, 1, 1]]
    assert rg.greedy_decode(ones, memory[:1], 5, trigram_penalty=math.inf) == [[1, 1, 1, 2, 1]]


# ------------------------------------------------------------------------------------- metrics
HYPS = ["the heart is normal . the lungs are clear .", "no pleural effusion .", "",
        "mild cardiomegaly . small left effusion .", "the heart is normal . <unk> <unk> .",
        "lungs are clear . no pneumothorax . no pneumothorax .", "the the the ."]
REFS = ["the heart size is normal . the lungs are clear .", "there is no pleural effusion or pneumothorax .",
        "the lungs are clear .", "moderate cardiomegaly . small left pleural effusion .",
        "the heart is normal . <unk> effusion .", "no pneumothorax .", "heart  is normal ."]


@pytest.mark.skipif(not HAS_JAVA, reason="METEOR needs java")
def test_nlg_metrics_equal_pycocoevalcap():
    session = nlg.shared_meteor()
    scorer = nlg.NLGScorer(HYPS, REFS)
    mine = scorer.values()
    # pycocoevalcap's own scorers (its Meteor object drives the same jar process)
    ref = nlg.pycocoevalcap_scores(HYPS, REFS, meteor=session.meteor)
    assert set(mine) == set(nlg.METRICS) == set(ref)
    for name in nlg.METRICS:
        assert mine[name] == pytest.approx(ref[name], rel=1e-9, abs=1e-12), name
    # a bootstrap resample (repeats included) equals pycocoevalcap on the resampled items
    idx = np.array([0, 0, 3, 5, 6, 6, 1])
    again = nlg.pycocoevalcap_scores([HYPS[i] for i in idx], [REFS[i] for i in idx], meteor=session.meteor)
    for name in nlg.METRICS:
        assert scorer.value(name, idx) == pytest.approx(again[name], rel=1e-9, abs=1e-12), name
    records = nlg.score_with_ci(scorer, n_resamples=20, seed=3, groups=["a", "a", "b", "c", "d", "e", "e"],
                                prefix="full_")
    assert set(records) == {"full_" + m for m in nlg.METRICS}
    for name, rec in records.items():
        assert rec["value"] == pytest.approx(mine[name[5:]]) and rec["n_resamples"] == 20 and rec["seed"] == 3
        assert rec["ci_low"] <= rec["ci_high"]


def test_rouge_lcs_matches_pycocoevalcap_on_random_texts():
    from pycocoevalcap.rouge.rouge import Rouge

    rng = np.random.default_rng(0)
    words = "a b c d e . <unk>".split()
    rouge = Rouge()
    for _ in range(200):
        h = " ".join(rng.choice(words, size=rng.integers(0, 25)))
        r = " ".join(rng.choice(words, size=rng.integers(1, 25)))
        assert nlg.rouge_l(h, r) == pytest.approx(rouge.calc_score([h], [r]), abs=1e-12)


def test_clinical_efficacy_equals_a_hand_count():
    from place_bench.plugins.datasets.synthetic.labeler import clinical_efficacy, label_text
    from place_bench.plugins.datasets.synthetic.lexicon import OBSERVATIONS

    gen = ["there is a right pleural effusion .", "no pneumothorax . heart size is normal .",
           "mild cardiomegaly . small left pleural effusion .", "lungs are clear .", "possible pneumonia ."]
    ref = ["small right pleural effusion .", "there is a right pneumothorax .", "mild cardiomegaly .",
           "the lungs are clear . no pleural effusion or pneumothorax .", "possible pneumonia ."]
    g, r = [label_text(t) for t in gen], [label_text(t) for t in ref]
    pred, truth = rg.clinical_efficacy_scores(g, r, OBSERVATIONS)
    assert pred.shape == truth.shape == (5, 14)
    # positives: generated {PE}, {NF}, {Card, PE}, {NF}, {}; reference {PE}, {PTX}, {Card}, {NF}, {}
    # PE tp1 fp1; NF tp1 fp1; Card tp1; PTX fn1  ->  micro tp 3, fp 2, fn 1
    assert rg.ce_metric("precision", pred, truth) == pytest.approx(3 / 5)
    assert rg.ce_metric("recall", pred, truth) == pytest.approx(3 / 4)
    assert rg.ce_metric("f1", pred, truth) == pytest.approx(2 * 0.6 * 0.75 / 1.35)
    # macro over the 14 observations: F1 PE 2/3, NF 2/3, Card 1, every other 0
    assert rg.ce_metric("f1_macro", pred, truth) == pytest.approx((2 / 3 + 2 / 3 + 1) / 14)
    assert rg.ce_metric("precision_macro", pred, truth) == pytest.approx((0.5 + 0.5 + 1) / 14)
    assert rg.ce_metric("recall_macro", pred, truth) == pytest.approx(3 / 14)
    per_obs = clinical_efficacy(g, r, OBSERVATIONS)
    assert rg.ce_metric("f1_macro", pred, truth) == pytest.approx(np.mean([v["f1"] for v in per_obs.values()]))
    # uncertain ("possible pneumonia") counts as positive on request: one more true positive
    pred_u, truth_u = rg.clinical_efficacy_scores(g, r, OBSERVATIONS, uncertain_as_positive=True)
    assert rg.ce_metric("precision", pred_u, truth_u) == pytest.approx(4 / 6)


def test_missing_java_is_a_clear_error(monkeypatch, subject, iu, tmp_path):
    monkeypatch.setattr(shutil, "which", lambda *a, **k: None)
    with pytest.raises(nlg.JavaNotFoundError, match="java"):
        nlg.require_java()
    with pytest.raises(nlg.JavaNotFoundError, match="java"):
        nlg.NLGScorer(["a ."], ["a ."])
    nlg.NLGScorer(["a ."], ["a ."], families=("bleu", "rouge_l", "cider"))  # no java needed
    task = rg.ReportGenerationTask(**TINY)
    with pytest.raises(nlg.JavaNotFoundError, match="java"):  # before any training
        next(task.run(context(subject, iu, tmp_path), task.units(None, [0])))


# ------------------------------------------------------------------------------------- the task
@pytest.mark.skipif(not HAS_JAVA, reason="METEOR needs java")
def test_training_lowers_the_loss_and_beats_an_untrained_decoder(subject, iu, tmp_path):
    ctx = context(subject, iu, tmp_path)
    before = {k: v.clone() for k, v in subject.model.state_dict().items()}
    task = rg.ReportGenerationTask(**TINY)
    [result] = list(task.run(ctx, task.units(None, [0])))
    assert result.unit == Unit(None, 0, None) and result.primary_metric == "bleu4"
    assert result.n_test == 20 and len(result.item_ids) == 20
    names = [f"{p}{m}" for p in ("", "full_") for m in ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l")]
    names += [f"ce_{m}" for m in rg.CE_METRICS] + [f"ce_latent_{m}" for m in rg.CE_METRICS]
    assert set(result.metrics) == set(names) | {"cider", "full_cider"}
    for name, m in result.metrics.items():
        assert m.get("unbounded", False) == (name in ("cider", "full_cider")), name
        assert 0.0 <= m["value"] and m["n_resamples"] == 30 and m["seed"] == 0, name
        assert m["value"] <= 1.0 or m.get("unbounded"), name
        assert m["ci_low"] <= m["ci_high"], name
    extra = result.extra
    assert set(extra["unbounded_metrics"]) == {"cider", "full_cider"}
    assert extra["views"] == 2 and extra["cleaner"] == "iu_xray" and extra["max_length"] == 60
    assert extra["vocab_threshold"] == 3 and extra["vocab_size"] > 20 and extra["n_train"] == 40
    assert extra["loss_history"][-1][1] < extra["loss_history"][0][1] < extra["initial_loss"] + 0.5
    assert extra["loss_history"][-1][1] < 0.75 * extra["initial_loss"]
    assert [h[0] for h in extra["val_history"]] == [5, 10, 15, 20]
    assert extra["best_val_bleu4"] == max(h[2] for h in extra["val_history"])
    assert extra["decode"]["beam_size"] == 2 and extra["n_studies"] == 20
    assert extra["clinical_efficacy"]["latent"].startswith("latent image truth")
    assert set(result.predictions) == {"per_item__rouge_l", "per_item__full_rouge_l"}
    assert np.mean(result.predictions["per_item__rouge_l"]) == pytest.approx(result.metrics["rouge_l"]["value"])
    lines = [json.loads(x) for x in Path(result.files["samples"]).read_text().splitlines()]
    assert [x["id"] for x in lines] == result.item_ids
    assert set(lines[0]) == {"id", "study_id", "generated", "reference", "reference_full"}
    assert all(len(x["reference"].split()) <= 59 for x in lines)
    # the checkpoint's model is untouched and still in eval mode
    after = subject.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before) and not subject.model.training

    untrained = rg.ReportGenerationTask(**dict(TINY, epochs=0, nlg_metrics=("bleu",), clinical_efficacy=False))
    [base] = list(untrained.run(ctx, untrained.units(None, [0])))
    assert base.extra["iters"] == 0 and base.extra["best_val_bleu4"] is None
    assert set(base.metrics) == {f"{p}bleu{k}" for p in ("", "full_") for k in range(1, 5)}
    assert result.metrics["bleu4"]["value"] > base.metrics["bleu4"]["value"] + 0.02


def test_mimic_one_view_grouped_by_study(subject, mimic, tmp_path):
    ctx = context(subject, mimic, tmp_path)
    task = rg.ReportGenerationTask(**dict(TINY, epochs=2, val_interval=1, beam_size=1, nlg_metrics=("bleu", "rouge_l"),
                                          by_dataset={"mimic_rrg": dict(vocab_threshold=2, max_length=30)}))
    [result] = list(task.run(ctx, task.units(None, [1])))
    extra = result.extra
    assert extra["views"] == 1 and extra["cleaner"] == "mimic_cxr" and extra["max_length"] == 30
    assert extra["vocab_threshold"] == 2 and extra["dataset_overrides"] == {"vocab_threshold": 2, "max_length": 30}
    # R2Gen's MIMIC entries are images: several per study; the bootstrap resamples studies
    assert result.n_test == 14 and extra["n_studies"] == 10
    assert "ce_latent_f1_macro" in result.metrics and extra["epochs_run"] == 2
    assert all(len(json.loads(x)["reference"].split()) <= 29
               for x in Path(result.files["samples"]).read_text().splitlines())
    [again] = list(task.run(ctx, [Unit(None, 1)]))  # same seed, same result
    assert again.metrics == result.metrics and again.extra["loss_history"] == extra["loss_history"]


def test_configuration_errors():
    with pytest.raises(ValueError, match="unknown keys"):
        rg.ReportGenerationTask(decoder=dict(layers=3))
    with pytest.raises(ValueError, match="cannot be set per dataset"):
        rg.ReportGenerationTask(by_dataset={"iu_xray": dict(n_resamples=5)})
    with pytest.raises(ValueError, match="bleu"):
        rg.ReportGenerationTask(nlg_metrics=("rouge_l",))
    task = rg.ReportGenerationTask()
    assert task.resolved("iu_xray") == {"cleaner": "iu_xray", "vocab_threshold": 3, "max_length": 60}
    assert task.resolved("mimic_rrg") == {"cleaner": "mimic_cxr", "vocab_threshold": 10, "max_length": 100}
    assert task.units(None, [0, 1]) == [Unit(None, 0), Unit(None, 1)]
    assert task.decoder_cfg == rg.DECODER_DEFAULTS
