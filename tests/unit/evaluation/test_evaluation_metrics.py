"""Whole-test-set metrics against hand computations and scikit-learn."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from place_bench.evaluation.metrics import (
    accuracy,
    auroc,
    binary_precision_recall_f1,
    f1,
    macro_f1,
    per_label_auroc,
    per_query_retrieval,
    precision,
    recall,
    retrieval_metrics,
    znormalize_per_class,
)


def _pairs_auroc(scores, targets):
    """AUROC by counting (positive, negative) pairs: concordant 1, tied 1/2."""
    pos = [s for s, t in zip(scores, targets) if t == 1]
    neg = [s for s, t in zip(scores, targets) if t == 0]
    credit = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return credit / (len(pos) * len(neg))


# ---------------------------------------------------------------------- AUROC


def test_binary_auroc_hand_counted_pairs():
    # positives 0.35, 0.8; negatives 0.1, 0.4: pairs (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) → 3/4
    scores = np.array([0.1, 0.4, 0.35, 0.8])
    targets = np.array([0, 0, 1, 1])
    assert auroc(scores, targets) == pytest.approx(0.75)
    assert auroc(scores, targets) == pytest.approx(roc_auc_score(targets, scores))


def test_binary_auroc_tie_counts_half():
    # positives 0.5, 0.9; negatives 0.2, 0.5: 1 + 1/2 + 1 + 1 = 3.5 of 4 pairs
    scores = np.array([0.2, 0.5, 0.5, 0.9])
    targets = np.array([0, 1, 0, 1])
    assert auroc(scores, targets) == pytest.approx(0.875)
    assert auroc(scores, targets) == pytest.approx(roc_auc_score(targets, scores))


def test_binary_auroc_random_matches_sklearn_and_pairs():
    rng = np.random.default_rng(1)
    targets = rng.integers(0, 2, 60)
    scores = np.round(rng.normal(size=60) + targets, 1)  # rounding makes ties
    assert auroc(scores, targets) == pytest.approx(roc_auc_score(targets, scores), abs=1e-12)
    assert auroc(scores, targets) == pytest.approx(_pairs_auroc(scores, targets), abs=1e-12)


def test_auroc_accepts_torch_tensors():
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8], dtype=torch.bfloat16)
    targets = torch.tensor([0, 0, 1, 1])
    assert auroc(scores, targets) == pytest.approx(0.75)


def test_binary_auroc_single_class_is_nan_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(auroc(np.array([0.1, 0.2, 0.3]), np.array([1, 1, 1])))


def test_multilabel_macro_matches_sklearn_and_skips_unscorable_labels():
    rng = np.random.default_rng(2)
    targets = rng.integers(0, 2, (50, 4))
    scores = rng.normal(size=(50, 4)) + targets
    assert auroc(scores, targets) == pytest.approx(roc_auc_score(targets, scores, average="macro"))
    per_label = per_label_auroc(scores, targets)
    expected = [roc_auc_score(targets[:, j], scores[:, j]) for j in range(4)]
    np.testing.assert_allclose(per_label, expected)

    targets[:, 1] = 0  # label 1 has no positives: skipped, not counted as 0.5 or nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = auroc(scores, targets)
        per_label = per_label_auroc(scores, targets)
    assert np.isnan(per_label[1])
    scorable = [roc_auc_score(targets[:, j], scores[:, j]) for j in (0, 2, 3)]
    assert value == pytest.approx(np.mean(scorable))


def test_multilabel_no_scorable_label_is_nan():
    scores = np.array([[0.1, 0.9], [0.4, 0.2], [0.3, 0.3]])
    targets = np.array([[1, 0], [1, 0], [1, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(auroc(scores, targets))


def test_per_label_auroc_with_names_returns_dict():
    scores = np.array([[0.1, 0.9], [0.4, 0.2], [0.35, 0.3], [0.8, 0.1]])
    targets = np.array([[0, 1], [0, 0], [1, 0], [1, 0]])
    out = per_label_auroc(scores, targets, label_names=["a", "b"])
    assert out == {"a": pytest.approx(0.75), "b": pytest.approx(1.0)}


def test_multiclass_ovr_macro_matches_sklearn():
    rng = np.random.default_rng(3)
    targets = rng.integers(0, 4, 80)
    logits = rng.normal(size=(80, 4))
    logits[np.arange(80), targets] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = roc_auc_score(targets, probs, multi_class="ovr", average="macro")
    assert auroc(probs, targets) == pytest.approx(expected)
    # logits are accepted too: one-vs-rest AUROC of each column against "class == c"
    by_hand = np.mean([roc_auc_score(targets == c, logits[:, c]) for c in range(4)])
    assert auroc(logits, targets) == pytest.approx(by_hand)


def test_multiclass_binary_softmax_equals_positive_column():
    rng = np.random.default_rng(4)
    targets = rng.integers(0, 2, 40)
    logits = rng.normal(size=(40, 2))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert auroc(probs, targets) == pytest.approx(roc_auc_score(targets, probs[:, 1]))


def test_auroc_rejects_bad_inputs():
    with pytest.raises(ValueError):
        auroc(np.array([0.1, 0.2]), np.array([0, 2]))
    with pytest.raises(ValueError):
        auroc(np.array([0.1, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError):
        auroc(np.zeros((3, 2)), np.array([0, 1, 2]))


# ------------------------------------------------------------- classification


def test_accuracy_argmax_and_threshold():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.4, 0.5, 0.1]])
    targets = np.array([1, 0, 1, 1])
    assert accuracy(scores, targets) == pytest.approx(0.75)
    assert accuracy(np.array([1, 0, 2, 1]), targets) == pytest.approx(0.75)
    probs = np.array([0.5, 0.49, 0.9, 0.1])  # 0.5 → 1 (>= threshold)
    assert accuracy(probs, np.array([1, 0, 1, 1])) == pytest.approx(0.75)
    with pytest.raises(ValueError):
        accuracy(np.array([2.3, -1.0]), np.array([1, 0]))  # logits are not probabilities


def test_macro_f1_matches_sklearn_with_all_classes():
    rng = np.random.default_rng(5)
    targets = rng.integers(0, 3, 30)
    pred = rng.integers(0, 3, 30)
    assert macro_f1(pred, targets, 3) == pytest.approx(f1_score(targets, pred, average="macro"))
    # class 3 absent everywhere still counts (F1 0)
    assert macro_f1(pred, targets, 4) == pytest.approx(f1_score(targets, pred, average="macro") * 3 / 4)
    scores = np.eye(3)[pred] * 0.9 + 0.05
    assert macro_f1(scores, targets, 3) == pytest.approx(macro_f1(pred, targets, 3))


def test_binary_precision_recall_f1_on_softmax_pairs():
    scores = np.array([[0.2, 0.8], [0.6, 0.4], [0.3, 0.7], [0.9, 0.1], [0.45, 0.55]])
    targets = np.array([1, 1, 0, 0, 1])
    pred = scores.argmax(axis=1)  # [1, 0, 1, 0, 1]: TP 2, FP 1, FN 1
    assert precision(scores, targets) == pytest.approx(2 / 3)
    assert recall(scores, targets) == pytest.approx(2 / 3)
    assert f1(scores, targets) == pytest.approx(2 / 3)
    assert precision(scores, targets) == pytest.approx(precision_score(targets, pred))
    assert recall(scores, targets) == pytest.approx(recall_score(targets, pred))
    assert binary_precision_recall_f1(scores, targets)["f1"] == pytest.approx(f1_score(targets, pred))
    assert accuracy(scores, targets) == pytest.approx(accuracy_score(targets, pred))
    with pytest.raises(ValueError):
        precision(np.zeros((5, 3)), targets)


# ------------------------------------------------------------------ retrieval

# 3 queries × 4 pool items. Pool labels [0, 1, 1, 0].
SIM = np.array(
    [
        [0.9, 0.1, 0.9, 0.3],  # tie 0 / 2: stable order 0, 2, 3, 1 → relevant (label 1): 0 1 0 1
        [0.2, 0.8, 0.5, 0.5],  # order 1, 2, 3, 0 → relevant (label 0): 0 0 1 1
        [0.3, 0.95, 0.0, 0.1],  # order 1, 0, 3, 2 → relevant (label 1): 1 0 0 1
    ]
)
QUERY = np.array([1, 0, 1])
POOL = np.array([0, 1, 1, 0])
EXPECTED = {  # K = 5 > pool size 4 → K' = 4
    "precision@1": [0.0, 0.0, 1.0],
    "hit@1": [0.0, 0.0, 1.0],
    "precision@2": [0.5, 0.0, 0.5],
    "hit@2": [1.0, 0.0, 1.0],
    "precision@5": [0.5, 0.5, 0.5],
    "hit@5": [1.0, 1.0, 1.0],
}


def test_per_query_retrieval_hand_fixture_with_tie():
    out = per_query_retrieval(SIM, QUERY, POOL, ks=(1, 2, 5))
    assert set(out) == set(EXPECTED)
    for name, values in EXPECTED.items():
        np.testing.assert_allclose(out[name], values, err_msg=name)


def test_retrieval_metrics_are_query_means():
    out = retrieval_metrics(SIM, QUERY, POOL, ks=(1, 2, 5))
    for name, values in EXPECTED.items():
        assert out[name] == pytest.approx(np.mean(values)), name


def test_retrieval_label_vectors_identical_only():
    vectors = {0: [1, 0, 1], 1: [0, 1, 1]}
    query = np.array([vectors[int(c)] for c in QUERY])
    pool = np.array([vectors[int(c)] for c in POOL])
    out = per_query_retrieval(SIM, query, pool, ks=(1, 2, 5))
    for name, values in EXPECTED.items():
        np.testing.assert_allclose(out[name], values, err_msg=name)
    pool[2] = [1, 1, 1]  # overlaps label 1 but is not identical → no longer relevant
    out = per_query_retrieval(SIM, query, pool, ks=(1,))
    np.testing.assert_allclose(out["hit@1"], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(per_query_retrieval(SIM, query, pool, ks=(2,))["precision@2"], [0.0, 0.0, 0.5])


def test_retrieval_chunking_does_not_change_results():
    rng = np.random.default_rng(6)
    sim = np.round(rng.normal(size=(7, 9)), 1)
    q, p = rng.integers(0, 3, 7), rng.integers(0, 3, 9)
    a = per_query_retrieval(sim, q, p, ks=(1, 3, 20))
    b = per_query_retrieval(sim, q, p, ks=(1, 3, 20), chunk_size=2)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


# -------------------------------------------------------------- z-normalization


def test_znormalize_per_class_hand_check():
    scores = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 8.0]])
    # column 0: mean 3, population s.d. sqrt(8/3); column 1: mean 4, s.d. sqrt(8)
    expected = np.array(
        [
            [-2 / np.sqrt(8 / 3), -2 / np.sqrt(8)],
            [0.0, -2 / np.sqrt(8)],
            [2 / np.sqrt(8 / 3), 4 / np.sqrt(8)],
        ]
    )
    np.testing.assert_allclose(znormalize_per_class(scores), expected)
    # ddof=1 divides by the sample s.d. instead: column 0 s.d. 2
    np.testing.assert_allclose(znormalize_per_class(scores, ddof=1)[:, 0], [-1.0, 0.0, 1.0])


def test_znormalize_constant_column_is_zero():
    scores = np.array([[1.0, 7.0], [2.0, 7.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = znormalize_per_class(scores)
    np.testing.assert_allclose(out[:, 1], [0.0, 0.0])
    np.testing.assert_allclose(out[:, 0], [-1.0, 1.0])


def test_counting_f1_precision_recall_equal_sklearn_on_random_draws():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n, c = int(rng.integers(1, 30)), int(rng.integers(2, 5))
        pred, targets = rng.integers(0, c, n), rng.integers(0, c, n)
        assert macro_f1(pred, targets, c) == pytest.approx(
            f1_score(targets, pred, labels=np.arange(c), average="macro", zero_division=0.0))
        bp, bt = rng.integers(0, 2, n), rng.integers(0, 2, n)
        assert precision(bp, bt) == pytest.approx(precision_score(bt, bp, zero_division=0.0))
        assert recall(bp, bt) == pytest.approx(recall_score(bt, bp, zero_division=0.0))
        assert binary_precision_recall_f1(bp, bt)["f1"] == pytest.approx(f1_score(bt, bp, zero_division=0.0))
