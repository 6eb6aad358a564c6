"""Deterministic NegEx-like rule labeler: report text -> CheXpert-14 labels (§4.6).

Algorithm, per sentence (text lower-cased, split at ``.``/``!``/``?`` followed by
whitespace or the end, and at newlines):

1. fixed phrases (:data:`.lexicon.FIXED`: "lungs are clear", "heart size is
   normal", "no acute cardiopulmonary process", borderline heart size ...) give
   their fixed values; generic mentions overlapping them are ignored;
2. every generic mention (:data:`.lexicon.MENTIONS`) is uncertain (-1) when an
   uncertainty cue scopes over it, else negative (0) when a negation cue does,
   else positive (1). Pre-cues scope forward to the end of the clause, post-cues
   backward to its start (clauses end at ``;``, "but", "however", "although",
   "though", "which", "whereas"; commas do *not* end a clause, so coordinated
   lists stay in scope); "versus" makes its comma-bounded phrase uncertain.
   Uncertainty wins over negation (so "cannot be excluded" is -1);
3. values are combined over sentences with priority ``1 > -1 > 0``; unmentioned
   observations stay blank; "No Finding" follows :func:`.lexicon.combine_labels`.

Hedged-positive wording ("likely", "consistent with", "concerning for") is not a
cue: such mentions are positive, a convention shared with the generator.
"""

from __future__ import annotations

import bisect
import re
from typing import Iterable, Mapping, Optional, Sequence

from place_bench.data import report_text

from .lexicon import (
    CLAUSE_BREAK,
    FIXED,
    MENTIONS,
    NEG_POST,
    NEG_PRE,
    OBSERVATIONS,
    PHRASE_BREAK,
    UNC_BIDIR,
    UNC_POST,
    UNC_PRE,
    combine_labels,
)



def split_sentences(text: str) -> list[str]:
    """Lower-cased sentences of ``text`` without their final stop, whitespace (line wraps included) collapsed.

    Uses the suite's report splitter, so a MIMIC line wrap inside a sentence
    ("No focal\n consolidation.") stays one sentence and keeps its negation.
    """
    return [" ".join(s.split()).lower().rstrip(".!?").rstrip() for s in report_text.split_sentences(text)]


def _spans(patterns: Iterable[re.Pattern], s: str) -> list[tuple[int, int]]:
    return [m.span() for p in patterns for m in p.finditer(s)]


def _overlaps(span: tuple[int, int], others: Sequence[tuple[int, int]]) -> bool:
    return any(span[0] < o[1] and o[0] < span[1] for o in others)


def _bounds(breaks: list[int], start: int, end: int, length: int) -> tuple[int, int]:
    """(start, end) of the segment between the break positions around [start, end)."""
    i = bisect.bisect_right(breaks, start)
    lo = breaks[i - 1] if i > 0 else 0
    j = bisect.bisect_left(breaks, end)
    hi = breaks[j] if j < len(breaks) else length
    return lo, hi


def label_sentence(sentence: str) -> list[tuple[str, int]]:
    """(observation, value) pairs found in one sentence (any case)."""
    s = sentence.lower()
    found: list[tuple[str, int]] = []
    fixed_spans: list[tuple[int, int]] = []
    for pat, assertions in FIXED:
        for m in pat.finditer(s):
            if _overlaps(m.span(), fixed_spans):
                continue
            fixed_spans.append(m.span())
            found.extend(assertions)

    unc_pre, unc_post, unc_bidir = _spans(UNC_PRE, s), _spans(UNC_POST, s), _spans(UNC_BIDIR, s)
    unc_all = unc_pre + unc_post + unc_bidir
    neg_pre = [c for c in _spans(NEG_PRE, s) if not _overlaps(c, unc_all)]
    neg_post = [c for c in _spans(NEG_POST, s) if not _overlaps(c, unc_all)]
    clause_breaks = sorted(m.start() for m in CLAUSE_BREAK.finditer(s))
    phrase_breaks = sorted(m.start() for m in PHRASE_BREAK.finditer(s))

    for obs, patterns in MENTIONS.items():
        for span in _spans(patterns, s):
            if _overlaps(span, fixed_spans):
                continue
            lo, hi = _bounds(clause_breaks, span[0], span[1], len(s))
            plo, phi = _bounds(phrase_breaks, span[0], span[1], len(s))
            uncertain = (
                any(lo <= c[0] and c[1] <= span[0] for c in unc_pre)
                or any(span[1] <= c[0] and c[1] <= hi for c in unc_post)
                or any(plo <= c[0] and c[1] <= phi for c in unc_bidir)
            )
            negated = (
                any(lo <= c[0] and c[1] <= span[0] for c in neg_pre)
                or any(span[1] <= c[0] and c[1] <= hi for c in neg_post)
            )
            found.append((obs, -1 if uncertain else 0 if negated else 1))
    return found


def label_text(text: str) -> dict[str, Optional[int]]:
    """CheXpert-14 labels of free text (all sentences count)."""
    pairs: list[tuple[str, int]] = []
    for sentence in split_sentences(text):
        pairs.extend(label_sentence(sentence))
    return combine_labels(pairs)


def label_sections(sections: Mapping[str, str],
                   names: Sequence[str] = ("findings", "impression")) -> dict[str, Optional[int]]:
    """Labels of the named sections of a report (default: findings + impression).

    Other sections (indication, comparison ...) are ignored, so a diagnosis leaked
    into the indication ("?pleural effusion") does not become a label.
    """
    return label_text("\n".join(sections[n] for n in names if sections.get(n)))


def clinical_efficacy(predicted: Sequence[Mapping[str, Optional[int]]],
                      reference: Sequence[Mapping[str, Optional[int]]],
                      observations: Sequence[str] = OBSERVATIONS,
                      uncertain_as_positive: bool = False) -> dict[str, dict[str, float]]:
    """Per-observation precision / recall / F1 of label dicts (positive = value 1).

    Blank and 0 are negative; -1 counts as positive when ``uncertain_as_positive``.
    Observations with no positives anywhere get precision = recall = F1 = 0.
    """
    if len(predicted) != len(reference):
        raise ValueError(f"{len(predicted)} predictions vs {len(reference)} references")
    pos = {1, -1} if uncertain_as_positive else {1}
    out: dict[str, dict[str, float]] = {}
    for obs in observations:
        tp = fp = fn = 0
        for p, r in zip(predicted, reference):
            pp, rp = p.get(obs) in pos, r.get(obs) in pos
            tp += pp and rp
            fp += pp and not rp
            fn += rp and not pp
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        out[obs] = {"precision": prec, "recall": rec, "f1": f1, "support": float(tp + fn)}
    return out
