"""Report-generation (NLG) metrics as pycocoevalcap computes them, with bootstrap intervals.

Metrics (datasets.md sections 1.7 and 2.7): BLEU-1..4 (corpus level, brevity penalty with the
"closest" reference length), METEOR 1.5 (``meteor-1.5.jar -l en -norm``, the corpus aggregate the
jar reports), ROUGE-L (LCS F-measure, beta 1.2, mean over items) and CIDEr-D (pycocoevalcap's
``Cider``: n = 1..4, sigma 6, document frequencies from the evaluated references, x10). Inputs are
already-cleaned texts (R2Gen and BenchX skip the PTB tokenizer, and so does the suite); every
text is whitespace-normalized (``" ".join(text.split())``) and tokenized once.

Values equal ``pycocoevalcap``'s scorers called on ``{i: [hypothesis]}`` / ``{i: [reference]}``
(one reference per item). The scorer keeps each item's sufficient statistics so that a corpus
metric can be recomputed cheaply on any multiset of items (a bootstrap resample):

* BLEU: per item ``testlen, reflen, guess[1..4], correct[1..4]``; the corpus score of a resample
  is pycocoevalcap's formula on their (multiplicity-weighted) sums;
* CIDEr-D: per item sparse n-gram count rows; a resample recomputes the document frequencies
  over its (repeated) references, exactly as ``Cider`` would on the resampled items;
* METEOR: per item the jar's statistics line (``SCORE``); a resample sends ``EVAL`` with the
  resampled lines to the same jar process and reads the aggregate;
* ROUGE-L: per-item scores (the metric is their mean).

METEOR needs Java (``java`` on PATH); :func:`require_java` fails with a clear message before any
scoring. One METEOR process (about 10 s to start: it loads the paraphrase table) is shared by all
scorers of a Python process (:func:`shared_meteor`). SPICE is never used (it downloads CoreNLP).

Bootstrap: :func:`score_with_ci` draws resamples of *groups* (studies; default one item per group)
with :func:`place_bench.evaluation.bootstrap.bootstrap_ci` and evaluates every metric on the
items of the drawn groups. CIDEr is not bounded by 1; callers that store records in [0, 1] keep
it apart (the ``rrg`` task stores it in ``extra``).
"""

from __future__ import annotations

import atexit
import math
import shutil
import threading
from collections import Counter
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from place_bench.evaluation.bootstrap import bootstrap_ci

__all__ = [
    "METRICS",
    "CiderD",
    "JavaNotFoundError",
    "MeteorSession",
    "NLGScorer",
    "bleu_from_stats",
    "bleu_stats",
    "corpus_bleu",
    "lcs_length",
    "normalize",
    "require_java",
    "require_pycocoevalcap",
    "rouge_l",
    "score_with_ci",
    "shared_meteor",
]

#: Metric names in the order they are reported.
METRICS = ("bleu1", "bleu2", "bleu3", "bleu4", "meteor", "rouge_l", "cider")
#: The metric families a :class:`NLGScorer` can compute (``bleu`` = BLEU-1..4).
FAMILIES = ("bleu", "meteor", "rouge_l", "cider")

_SMALL, _TINY = 1e-9, 1e-15  # pycocoevalcap's BLEU smoothing constants
JAVA_MESSAGE = (
    "METEOR (pycocoevalcap's meteor-1.5.jar) needs Java, but no 'java' executable is on PATH; "
    "install a Java runtime (e.g. openjdk-17-jre-headless) or leave 'meteor' out of the metrics"
)


class JavaNotFoundError(RuntimeError):
    """``java`` is not on PATH (METEOR cannot run)."""


def require_java() -> str:
    """The path of ``java``; :class:`JavaNotFoundError` naming java when there is none."""
    path = shutil.which("java")
    if path is None:
        raise JavaNotFoundError(JAVA_MESSAGE)
    return path


def require_pycocoevalcap():
    """Import ``pycocoevalcap`` or fail with an install hint."""
    try:
        import pycocoevalcap
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError("report-generation metrics need the 'pycocoevalcap' package "
                          "(pip install pycocoevalcap)") from None
    return pycocoevalcap


def normalize(text: str) -> str:
    """Whitespace-normalized text (single spaces, no leading/trailing space)."""
    return " ".join(str(text).split())


# ------------------------------------------------------------------------------------ BLEU
def bleu_stats(hypotheses: Sequence[str], references: Sequence[str], n: int = 4) -> np.ndarray:
    """Per-item BLEU statistics ``(N, 2 + 2n)``: ``testlen, reflen, guess[1..n], correct[1..n]``
    (pycocoevalcap's ``cook_test`` with one reference, whose length is the "closest")."""
    out = np.zeros((len(hypotheses), 2 + 2 * n), dtype=np.float64)
    for i, (hyp, ref) in enumerate(zip(hypotheses, references)):
        h, r = hyp.split(), ref.split()
        out[i, 0], out[i, 1] = len(h), len(r)
        for k in range(1, n + 1):
            hc = Counter(tuple(h[j:j + k]) for j in range(len(h) - k + 1))
            rc = Counter(tuple(r[j:j + k]) for j in range(len(r) - k + 1))
            out[i, 1 + k] = max(0, len(h) - k + 1)
            out[i, 1 + n + k] = sum(min(c, rc.get(g, 0)) for g, c in hc.items())
    return out


def bleu_from_stats(stats: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Corpus BLEU-1..n (pycocoevalcap's ``BleuScorer.compute_score(option="closest")``) of the
    items in ``stats`` (from :func:`bleu_stats`), each counted ``weights[i]`` times (default once)."""
    total = stats.sum(axis=0) if weights is None else weights @ stats
    n = (stats.shape[1] - 2) // 2
    testlen, reflen = total[0], total[1]
    out, bleu = np.zeros(n), 1.0
    for k in range(n):
        bleu *= float(total[2 + n + k] + _TINY) / (total[2 + k] + _SMALL)
        out[k] = bleu ** (1.0 / (k + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    if ratio < 1:
        out *= math.exp(1 - 1 / ratio)
    return out


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> np.ndarray:
    """BLEU-1..4 of whitespace-normalized texts (no Java; used for model selection)."""
    hyps, refs = [normalize(h) for h in hypotheses], [normalize(r) for r in references]
    return bleu_from_stats(bleu_stats(hyps, refs))


# --------------------------------------------------------------------------------- ROUGE-L
def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, Hyyroe 2004)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return 0
    masks: dict[str, int] = {}
    for j, tok in enumerate(b):
        masks[tok] = masks.get(tok, 0) | (1 << j)
    full = (1 << len(b)) - 1
    v = full
    for tok in a:
        u = v & masks.get(tok, 0)
        v = ((v + u) | (v - u)) & full
    return len(b) - bin(v).count("1")


def rouge_l(hypothesis: str, reference: str, beta: float = 1.2) -> float:
    """pycocoevalcap's ROUGE-L of one item (tokens = ``text.split(" ")``, one reference)."""
    c, r = hypothesis.split(" "), reference.split(" ")
    lcs = lcs_length(r, c)
    prec, rec = lcs / float(len(c)), lcs / float(len(r))
    if prec != 0 and rec != 0:
        return ((1 + beta ** 2) * prec * rec) / float(rec + beta ** 2 * prec)
    return 0.0


# ---------------------------------------------------------------------------------- CIDEr-D
class CiderD:
    """pycocoevalcap's CIDEr (CIDEr-D: clipped tf-idf cosine with a length penalty) over sparse
    n-gram count matrices, so a resample only recomputes document frequencies and row sums.

    ``hypotheses`` / ``references``: one normalized text each per item.
    """

    def __init__(self, hypotheses: Sequence[str], references: Sequence[str], n: int = 4, sigma: float = 6.0):
        from scipy import sparse

        self.n, self.sigma, self.size = int(n), float(sigma), len(hypotheses)
        self.hyp: list = []
        self.ref: list = []
        self.ref_present: list = []
        for k in range(1, self.n + 1):
            index: dict[tuple, int] = {}
            mats = []
            for texts in (hypotheses, references):
                rows, cols, vals = [], [], []
                for i, text in enumerate(texts):
                    w = text.split()
                    for g, c in Counter(tuple(w[j:j + k]) for j in range(len(w) - k + 1)).items():
                        rows.append(i)
                        cols.append(index.setdefault(g, len(index)))
                        vals.append(float(c))
                mats.append((rows, cols, vals))
            shape = (self.size, max(1, len(index)))
            h, r = (sparse.csr_matrix((v, (ro, co)), shape=shape) for ro, co, v in mats)
            self.hyp.append(h)
            self.ref.append(r)
            self.ref_present.append((r > 0).astype(np.float64).tocsc())
        # pycocoevalcap's "length" is the number of bigram occurrences (its n == 1 index)
        self.len_hyp = np.asarray(self.hyp[1].sum(axis=1)).ravel() if self.n > 1 else np.zeros(self.size)
        self.len_ref = np.asarray(self.ref[1].sum(axis=1)).ravel() if self.n > 1 else np.zeros(self.size)
        self.penalty = np.exp(-((self.len_hyp - self.len_ref) ** 2) / (2 * self.sigma ** 2))

    def item_scores(self, weights: np.ndarray | None = None) -> np.ndarray:
        """CIDEr-D of every item when the corpus holds item ``i`` ``weights[i]`` times."""
        w = np.ones(self.size) if weights is None else np.asarray(weights, dtype=np.float64)
        ref_len = np.log(float(w.sum()))
        total = np.zeros(self.size)
        for h, r, present in zip(self.hyp, self.ref, self.ref_present):
            df = np.asarray(present.T @ w).ravel()
            idf = ref_len - np.log(np.maximum(1.0, df))
            vh, vr = h.multiply(idf).tocsr(), r.multiply(idf).tocsr()
            norm_h = np.sqrt(np.asarray(vh.multiply(vh).sum(axis=1)).ravel())
            norm_r = np.sqrt(np.asarray(vr.multiply(vr).sum(axis=1)).ravel())
            num = np.asarray(vh.minimum(vr).multiply(vr).sum(axis=1)).ravel()
            both = (norm_h != 0) & (norm_r != 0)
            val = np.where(both, num / np.where(both, norm_h * norm_r, 1.0), num)
            total += val * self.penalty
        return total / self.n * 10.0

    def score(self, weights: np.ndarray | None = None) -> float:
        """Corpus CIDEr-D (the mean item score, each item counted ``weights[i]`` times)."""
        scores = self.item_scores(weights)
        if weights is None:
            return float(scores.mean())
        w = np.asarray(weights, dtype=np.float64)
        return float(w @ scores / w.sum())


# ---------------------------------------------------------------------------------- METEOR
class MeteorSession:
    """A running ``meteor-1.5.jar -stdio`` process, started by pycocoevalcap's own ``Meteor``
    class (so the command and options are pycocoevalcap's); :attr:`meteor` is that object.

    :meth:`stats` returns an item's statistics line, :meth:`evaluate` the per-item scores and the
    corpus aggregate of any list of statistics lines (repeats allowed).
    """

    def __init__(self):
        require_java()
        require_pycocoevalcap()
        from pycocoevalcap.meteor.meteor import Meteor

        self.meteor = Meteor()
        self.lock = threading.Lock()
        self.closed = False
        if self.meteor.meteor_p.poll() is not None:
            raise RuntimeError(f"METEOR (java) exited at start with status {self.meteor.meteor_p.returncode}")

    @staticmethod
    def _clean(text: str) -> str:
        return normalize(text.replace("|||", ""))

    def _readline(self) -> str:
        line = self.meteor.meteor_p.stdout.readline()
        if not line:
            raise RuntimeError("METEOR (java) stopped answering (process exited?)")
        return line.decode().strip()

    def stats(self, hypothesis: str, references: Sequence[str]) -> str:
        line = " ||| ".join(("SCORE", " ||| ".join(self._clean(r) for r in references), self._clean(hypothesis)))
        with self.lock:
            self.meteor.meteor_p.stdin.write(f"{line}\n".encode())
            self.meteor.meteor_p.stdin.flush()
            return self._readline()

    def evaluate(self, stats: Sequence[str]) -> tuple[list[float], float]:
        if not stats:
            raise ValueError("METEOR of no items")
        line = "EVAL ||| " + " ||| ".join(stats)
        with self.lock:
            self.meteor.meteor_p.stdin.write(f"{line}\n".encode())
            self.meteor.meteor_p.stdin.flush()
            per_item = [float(self._readline()) for _ in stats]
            return per_item, float(self._readline())

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            proc = self.meteor.meteor_p
            try:
                proc.stdin.close()
            except OSError:  # pragma: no cover
                pass
            proc.kill()
            proc.wait()


_SHARED: dict[str, MeteorSession] = {}
_SHARED_LOCK = threading.Lock()


def shared_meteor() -> MeteorSession:
    """The process-wide :class:`MeteorSession` (started on first use, closed at exit)."""
    with _SHARED_LOCK:
        session = _SHARED.get("meteor")
        if session is None or session.closed or session.meteor.meteor_p.poll() is not None:
            session = MeteorSession()
            _SHARED["meteor"] = session
            atexit.register(session.close)
        return session


# ----------------------------------------------------------------------------------- scorer
class NLGScorer:
    """Sufficient statistics of ``hypotheses`` against ``references`` (one each per item) for
    :data:`METRICS`; :meth:`value` evaluates a metric on all items or on an index multiset.

    ``families``: which of ``bleu``, ``meteor``, ``rouge_l``, ``cider`` to prepare (METEOR checks
    for Java first); ``meteor``: a :class:`MeteorSession` (default :func:`shared_meteor`).
    """

    def __init__(self, hypotheses: Sequence[str], references: Sequence[str],
                 families: Iterable[str] = FAMILIES, meteor: MeteorSession | None = None):
        if len(hypotheses) != len(references):
            raise ValueError(f"{len(hypotheses)} hypotheses vs {len(references)} references")
        if not hypotheses:
            raise ValueError("no items to score")
        self.families = tuple(families)
        unknown = sorted(set(self.families) - set(FAMILIES))
        if unknown:
            raise ValueError(f"unknown NLG metric families {unknown}; known: {list(FAMILIES)}")
        self.hyps = [normalize(h) for h in hypotheses]
        self.refs = [normalize(r) for r in references]
        self.size = len(self.hyps)
        if "meteor" in self.families:
            require_java()
            self.meteor_session = meteor or shared_meteor()
            self.meteor_stats = [self.meteor_session.stats(h, [r]) for h, r in zip(self.hyps, self.refs)]
            self.meteor_items, self.meteor_value = self.meteor_session.evaluate(self.meteor_stats)
        if "bleu" in self.families:
            self.bleu = bleu_stats(self.hyps, self.refs)
        if "rouge_l" in self.families:
            self.rouge_items = np.array([rouge_l(h, r) for h, r in zip(self.hyps, self.refs)])
        if "cider" in self.families:
            self.cider = CiderD(self.hyps, self.refs)

    @property
    def metrics(self) -> list[str]:
        out = []
        for name in METRICS:
            family = "bleu" if name.startswith("bleu") else name
            if family in self.families:
                out.append(name)
        return out

    def _weights(self, idx: np.ndarray | None) -> np.ndarray | None:
        return None if idx is None else np.bincount(np.asarray(idx, dtype=np.int64), minlength=self.size).astype(np.float64)

    def value(self, name: str, idx: np.ndarray | None = None) -> float:
        """Metric ``name`` on all items (``idx`` None) or on items ``idx`` (repeats count)."""
        if name.startswith("bleu"):
            return float(bleu_from_stats(self.bleu, self._weights(idx))[int(name[4:]) - 1])
        if name == "rouge_l":
            return float(self.rouge_items.mean() if idx is None else self.rouge_items[np.asarray(idx)].mean())
        if name == "cider":
            return self.cider.score(self._weights(idx))
        if name == "meteor":
            if idx is None:
                return self.meteor_value
            return self.meteor_session.evaluate([self.meteor_stats[i] for i in np.asarray(idx).tolist()])[1]
        raise ValueError(f"unknown NLG metric {name!r}; known: {list(METRICS)}")

    def values(self) -> dict[str, float]:
        return {name: self.value(name) for name in self.metrics}


def _groups(groups: Sequence[Any] | None, size: int) -> list[np.ndarray]:
    if groups is None:
        return [np.array([i]) for i in range(size)]
    if len(groups) != size:
        raise ValueError(f"{len(groups)} group keys for {size} items")
    members: dict[Any, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return [np.asarray(v, dtype=np.int64) for v in members.values()]


def expand_groups(members: Sequence[np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``group indices -> item indices`` (the items of every drawn group, repeats kept)."""
    def items(gidx: np.ndarray) -> np.ndarray:
        return np.concatenate([members[g] for g in np.asarray(gidx).tolist()])
    return items


def ci_record(metric_fn: Callable[[np.ndarray], float], n_groups: int, n_resamples: int, seed: int,
              level: float = 0.95) -> dict[str, Any]:
    """``bootstrap_ci(metric_fn, arange(n_groups)).as_record()``; a finite value whose resamples
    are mostly undefined keeps ``ci_low = ci_high = None`` with the reason (as the tasks'
    ``with_ci``)."""
    try:
        return bootstrap_ci(metric_fn, np.arange(n_groups), n_resamples=n_resamples, level=level,
                            seed=seed).as_record()
    except ValueError as exc:
        value = float(metric_fn(np.arange(n_groups)))
        if not math.isfinite(value):
            raise
        return {"value": value, "ci_low": None, "ci_high": None, "n_resamples": int(n_resamples), "n_valid": 0,
                "seed": int(seed), "level": float(level), "ci_error": str(exc)}


def score_with_ci(scorer: NLGScorer, n_resamples: int = 200, seed: int = 0, groups: Sequence[Any] | None = None,
                  prefix: str = "", level: float = 0.95) -> dict[str, dict[str, Any]]:
    """``{prefix + metric: record}`` for every metric of ``scorer``: the whole-set value and a
    percentile bootstrap interval over ``groups`` (one key per item, e.g. the study id; default
    each item its own group). Every metric sees the same resamples (same ``seed``)."""
    members = _groups(groups, scorer.size)
    items = expand_groups(members)
    out = {}
    for name in scorer.metrics:
        out[prefix + name] = ci_record(lambda g, name=name: scorer.value(name, items(g)), len(members),
                                       n_resamples, seed, level)
        out[prefix + name]["value"] = scorer.value(name)  # the whole-set value, in item order
    return out


def pycocoevalcap_scores(hypotheses: Sequence[str], references: Sequence[str],
                         meteor: Any | None = None) -> dict[str, float]:
    """The metrics of :data:`METRICS` from pycocoevalcap's scorers called directly (reference
    implementation for tests). ``meteor``: a ``pycocoevalcap`` ``Meteor`` object, or None to skip."""
    require_pycocoevalcap()
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    gts = {i: [normalize(r)] for i, r in enumerate(references)}
    res = {i: [normalize(h)] for i, h in enumerate(hypotheses)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"bleu{k + 1}": float(b) for k, b in enumerate(bleu)}
    if meteor is not None:
        out["meteor"] = float(meteor.compute_score(gts, res)[0])
    out["rouge_l"] = float(Rouge().compute_score(gts, res)[0])
    out["cider"] = float(Cider().compute_score(gts, res)[0])
    return out


def as_mapping(records: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """``{name: value}`` of metric records."""
    return {k: float(v["value"]) for k, v in records.items()}
