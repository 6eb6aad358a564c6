"""Seeded splits and nested label fractions (datasets.md section 3.3)."""

from __future__ import annotations

import numpy as np
import pytest

from place_bench.data import splits as sp


def test_fraction_size_uses_round_like_pandas():
    # hand: round(2.5) = 2 (half to even), round(25.0) = 25, round(1860.27) = 1860, round(1.5) = 2
    assert sp.fraction_size(0.01, 250) == 2
    assert sp.fraction_size(0.1, 250) == 25
    assert sp.fraction_size(0.01, 186_027) == 1860
    assert sp.fraction_size(0.015, 100) == 2
    assert sp.fraction_size(1.0, 7) == 7
    with pytest.raises(ValueError):
        sp.fraction_size(1.5, 10)


def test_ranks_of_inverts_a_permutation():
    assert sp.ranks_of([2, 0, 1]).tolist() == [1, 2, 0]


def test_frac_rank_subsets_are_nested():
    n = 250
    rank = sp.frac_ranks(n, seed=42)
    assert sorted(rank.tolist()) == list(range(n))
    one, ten, full = (
        {i for i in range(n) if sp.in_fraction(int(rank[i]), p, n)} for p in (0.01, 0.1, 1.0)
    )
    assert len(one) == 2 and len(ten) == 25 and len(full) == 250
    assert one < ten < full
    assert not sp.in_fraction(None, 1.0, n)


def test_frac_rank_matches_pandas_sample():
    pd = pytest.importorskip("pandas")
    n = 137
    df = pd.DataFrame({"x": range(n)})
    rank = sp.frac_ranks(n, seed=42)
    for p in (0.01, 0.1, 0.5, 1.0):
        expected = set(df.sample(frac=p, random_state=42).index)
        assert expected == {i for i in range(n) if rank[i] < sp.fraction_size(p, n)}


def test_legacy_permutation_is_what_mgca_np_random_choice_draws():
    state = np.random.get_state()
    try:
        np.random.seed(0)
        drawn = np.random.choice(1000, size=50, replace=False)  # MGCA's CheXpert validation draw
    finally:
        np.random.set_state(state)
    assert drawn.tolist() == sp.legacy_permutation(1000, 0)[:50].tolist()


@pytest.mark.parametrize("n, test_size", [(26_684, 5337 * 2), (26_684, 0.3), (10_674, 0.5), (8006, 0.5), (31, 0.3)])
def test_sklearn_split_replica(n, test_size):
    model_selection = pytest.importorskip("sklearn.model_selection")
    train, test = model_selection.train_test_split(np.arange(n), test_size=test_size, random_state=0)
    mine_train, mine_test = sp.sklearn_split_indices(n, test_size, 0)
    assert mine_train.tolist() == train.tolist()
    assert mine_test.tolist() == test.tolist()


def test_sklearn_split_sizes_by_hand():
    # ceil(0.3 * 26684) = ceil(8005.2) = 8006 test rows; 18678 train rows
    train, test = sp.sklearn_split_indices(26_684, 0.3, 0)
    assert (train.size, test.size) == (18_678, 8006)
    train, test = sp.sklearn_split_indices(26_684, 10_674, 0)
    assert (train.size, test.size) == (16_010, 10_674)
    with pytest.raises(ValueError):
        sp.sklearn_split_indices(10, 10, 0)


def test_stratified_ranks_interleave_strata_by_hand():
    # 3 positives and 297 negatives: positives sit at positions 0, 1/3, 2/3; negatives at j/297.
    # Ties go to the positive stratum (higher weight). Negatives before 1/3: j = 0..98 (99 of them);
    # before 2/3: j = 0..197 (198). So positives get ranks 0, 1 + 99 = 100 and 2 + 198 = 200.
    strata = [0] * 150 + [1] + [0] * 100 + [1, 1] + [0] * 47
    rank = sp.stratified_frac_ranks(strata, seed=42)
    assert sorted(rank.tolist()) == list(range(300))
    assert sorted(int(rank[i]) for i, s in enumerate(strata) if s == 1) == [0, 100, 200]
    # the 1 % subset (3 rows) therefore holds one positive
    assert sum(1 for i, s in enumerate(strata) if s == 1 and rank[i] < sp.fraction_size(0.01, 300)) == 1


def test_stratified_ranks_cover_every_label_pattern_first():
    strata = [(0, 0)] * 40 + [(1, 0)] * 5 + [(0, 1)] * 3 + [(1, 1)] * 2
    rank = sp.stratified_frac_ranks(strata, seed=7)
    first = {strata[i] for i in range(len(strata)) if rank[i] < 4}
    assert first == {(0, 0), (1, 0), (0, 1), (1, 1)}
    # (1, 1) has the most positives: it takes rank 0
    assert strata[int(np.flatnonzero(rank == 0)[0])] == (1, 1)
    # deterministic
    assert sp.stratified_frac_ranks(strata, seed=7).tolist() == rank.tolist()


def test_group_holdout_takes_whole_groups():
    groups = ["a", "a", "b", "c", "c", "c", "d", "e", "e"]
    sizes = {"a": 2, "b": 1, "c": 3, "d": 1, "e": 2}
    held = sp.group_holdout(groups, n_rows=3, seed=0)
    taken = {g for g, h in zip(groups, held) if h}
    assert all(h == (g in taken) for g, h in zip(groups, held))  # whole groups only
    n_held = int(held.sum())
    assert n_held >= 3
    assert n_held - min(sizes[g] for g in taken) < 3  # stopped as soon as 3 rows were reached
    assert sp.group_holdout(groups, n_rows=100, seed=0).all()


def test_assign_groups_sizes_by_hand():
    groups = [f"g{k // 2}" for k in range(40)]  # 20 groups of 2 rows
    split = sp.assign_groups(groups, [("test", 0.15), ("valid", 0.15)], seed=0)
    by_group = {}
    for g, s in zip(groups, split):
        by_group.setdefault(g, set()).add(s)
    assert all(len(v) == 1 for v in by_group.values())
    n = {s: sum(1 for v in by_group.values() if s in v) for s in ("train", "valid", "test")}
    assert n == {"test": 3, "valid": 3, "train": 14}  # round(0.15 * 20) = 3


def test_split_members():
    assert sp.split_members("train", ["valid"], "valid")
    assert sp.split_members("valid", [], "valid")
    assert not sp.split_members("train", None, "valid")
