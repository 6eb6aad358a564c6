"""Seeded splits and nested label fractions (datasets.md section 3.3).

Every random choice goes through :func:`legacy_permutation`, numpy's legacy
``RandomState(seed).permutation``: the generator behind ``pandas.DataFrame.sample(random_state=s)``,
``sklearn.model_selection.train_test_split(random_state=s)`` and ``numpy.random.choice(n, k,
replace=False)`` after ``numpy.random.seed(s)``. The reference protocols' memberships are
therefore reproduced without depending on pandas or scikit-learn versions.

Label fractions (``frac_rank``)
    Each train row of a manifest carries ``frac_rank``, its 0-based rank in the protocol's seeded
    ordering of the train rows. The fraction-``p`` subset is the rows with
    ``frac_rank < fraction_size(p, n_train)`` where ``fraction_size(p, n) = round(p * n)``
    (Python ``round``, as pandas ``sample(frac=p)``), and ``n_train`` is the sidecar's
    ``frac_base``. Subsets are nested by construction: 1 % is contained in 10 % in 100 %.

    * :func:`frac_ranks` -- plain seeded order; the 1 % / 10 % subsets equal pandas
      ``df.sample(frac=p, random_state=seed)`` on the train rows in the same order (MGCA).
    * :func:`stratified_frac_ranks` -- the ``suite`` protocol: within each stratum a seeded
      permutation; strata interleaved proportionally (the element of within-stratum rank ``j`` of
      a stratum of size ``n_s`` is placed at position ``j / n_s``); the first element of every
      stratum sits at position 0, so any prefix at least as long as the number of strata holds
      one element of each stratum (with strata = positive-label patterns, the 1 % subset has a
      positive for every label that has one in train whenever it is that large).
"""

from __future__ import annotations

import math
from typing import Hashable, Sequence

import numpy as np

__all__ = [
    "assign_groups",
    "fraction_size",
    "frac_ranks",
    "group_holdout",
    "in_fraction",
    "legacy_permutation",
    "ranks_of",
    "sklearn_split_indices",
    "split_members",
    "stratified_frac_ranks",
]


def legacy_permutation(n: int, seed: int) -> np.ndarray:
    """``numpy.random.RandomState(seed).permutation(n)`` (int64)."""
    return np.random.RandomState(seed).permutation(int(n)).astype(np.int64)


def ranks_of(order: Sequence[int] | np.ndarray) -> np.ndarray:
    """Inverse of a permutation: ``rank[order[i]] = i``."""
    order = np.asarray(order, dtype=np.int64)
    rank = np.empty(order.size, dtype=np.int64)
    rank[order] = np.arange(order.size, dtype=np.int64)
    return rank


def fraction_size(fraction: float, n: int) -> int:
    """Rows in the fraction-``fraction`` subset of ``n`` train rows: ``round(fraction * n)``."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    return int(round(fraction * n))


def in_fraction(frac_rank: int | None, fraction: float, n_train: int) -> bool:
    """Whether a row with ``frac_rank`` belongs to the fraction-``fraction`` subset."""
    return frac_rank is not None and frac_rank < fraction_size(fraction, n_train)


def frac_ranks(n: int, seed: int = 42) -> np.ndarray:
    """``frac_rank`` of ``n`` train rows (given in the protocol's row order): the rank of each row
    in ``legacy_permutation(n, seed)``. Row ``i`` is in the fraction-``p`` subset iff
    ``rank[i] < round(p * n)``, which selects exactly the rows of pandas
    ``df.sample(frac=p, random_state=seed)``."""
    return ranks_of(legacy_permutation(n, seed))


def stratified_frac_ranks(strata: Sequence[Hashable], seed: int = 42) -> np.ndarray:
    """Nested, stratified ``frac_rank`` for rows whose stratum keys are ``strata``.

    Strata are ordered by (descending "weight", ``repr(key)``) where the weight of a number key is
    the number, of a tuple of numbers its sum (more positive labels first, so the first ranks
    cover most labels), and 0 otherwise. Within a stratum, rows are ordered by their :func:`frac_ranks` ``(n, seed)`` rank
    (one seeded permutation of all rows); the row of within-stratum rank ``j`` in a stratum of
    ``n_k`` rows gets position ``j / n_k``; positions are merged in increasing order, ties broken
    by stratum order. Deterministic for a given (strata, seed).
    """
    keys = list(strata)
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)

    numbers = (int, float, bool, np.integer, np.floating)

    def weight(k):
        if isinstance(k, numbers):
            return float(k)
        if isinstance(k, tuple) and all(isinstance(v, numbers) for v in k):
            return float(sum(k))
        return 0.0

    distinct = sorted(set(keys), key=lambda k: (-weight(k), repr(k)))
    index_of = {k: i for i, k in enumerate(distinct)}
    stratum = np.fromiter((index_of[k] for k in keys), dtype=np.int64, count=n)
    position = np.empty(n, dtype=np.float64)
    global_rank = frac_ranks(n, seed)
    for s in range(len(distinct)):
        members = np.flatnonzero(stratum == s)
        within = ranks_of(np.argsort(global_rank[members], kind="stable"))
        position[members] = within / members.size
    order = np.lexsort((stratum, position))  # last key is primary
    return ranks_of(order)


def sklearn_split_indices(n: int, test_size: int | float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions ``(train, test)`` that ``train_test_split(range(n), test_size=test_size,
    random_state=seed)`` returns (shuffle on, no stratification), in its order.

    ``n_test = test_size`` for an int, ``ceil(test_size * n)`` for a float; ``n_train = n - n_test``;
    with ``p = RandomState(seed).permutation(n)``, test is ``p[:n_test]`` and train
    ``p[n_test:]``.
    """
    if isinstance(test_size, (int, np.integer)) and not isinstance(test_size, bool):
        n_test = int(test_size)
    else:
        n_test = math.ceil(float(test_size) * n)
    if not 0 < n_test < n:
        raise ValueError(f"test_size={test_size} gives {n_test} test rows out of {n}")
    perm = legacy_permutation(n, seed)
    return perm[n_test:], perm[:n_test]


def group_holdout(groups: Sequence[str], n_rows: int, seed: int) -> np.ndarray:
    """Boolean mask of the rows held out when whole groups (patients) are drawn until at least
    ``n_rows`` rows are taken.

    Distinct groups are sorted, permuted with ``legacy_permutation(n_groups, seed)`` and taken in
    that order; every row of a taken group is held out, so the result is patient-disjoint from
    the rest and holds ``>= n_rows`` rows (all rows if there are fewer).
    """
    groups = list(groups)
    distinct = sorted(set(groups))
    index = {g: i for i, g in enumerate(distinct)}
    gid = np.fromiter((index[g] for g in groups), dtype=np.int64, count=len(groups))
    sizes = np.bincount(gid, minlength=len(distinct))
    order = legacy_permutation(len(distinct), seed)
    taken = np.zeros(len(distinct), dtype=bool)
    total = 0
    for g in order:
        if total >= n_rows:
            break
        taken[g] = True
        total += int(sizes[g])
    return taken[gid]


def assign_groups(
    groups: Sequence[str], held_out: Sequence[tuple[str, float]], seed: int, rest: str = "train"
) -> list[str]:
    """Split rows by group: sorted distinct groups are permuted (``legacy_permutation``); the
    first ``round(f * n_groups)`` go to the first held-out split, the next ones to the second,
    ...; the remaining groups to ``rest``. Returns one split name per row.

    Example: ``assign_groups(ids, [("test", 0.15), ("valid", 0.15)], seed=0)``.
    """
    groups = list(groups)
    distinct = sorted(set(groups))
    perm = legacy_permutation(len(distinct), seed)
    split_of: dict[str, str] = {}
    start = 0
    for name, fraction in held_out:
        k = int(round(fraction * len(distinct)))
        for g in perm[start : start + k]:
            split_of[distinct[g]] = name
        start += k
    for g in perm[start:]:
        split_of[distinct[g]] = rest
    return [split_of[g] for g in groups]


def split_members(split: str, subsets: Sequence[str] | None, name: str) -> bool:
    """Whether a manifest row belongs to split ``name``: its ``split`` is ``name`` or ``name`` is
    listed in its ``subsets`` (``*_compat`` protocols record reference-code overlaps that way)."""
    return split == name or (subsets is not None and name in subsets)
