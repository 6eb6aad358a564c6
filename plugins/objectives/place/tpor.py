"""T-PORs: textual pathological observation representations (PLACE, spec/place.md, "reconstruction").

The paper (abstract and summaries only) says observations come from the report and stresses
long reports with complex discourse; the reconstruction (spec/place.md, "T-PORs") takes one
observation per report sentence: the mean of the sentence's word features over its
[start, end) word span after one text-encoder pass, in the joint space of width d. Padding
sentences are masked. Option ``source='clauses'`` splits each sentence further at the words
",", ";", "and" and "but" (the splitting words are left out of the clauses).

Nothing here is registered; :mod:`.pcma` owns a :class:`TPOR`.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

SOURCES = ("sentences", "clauses")
CLAUSE_BREAKS = frozenset({",", ";", "and", "but"})


def clause_spans(
    spans: torch.Tensor, mask: torch.Tensor, words: Sequence[Sequence[str]], breaks=CLAUSE_BREAKS
) -> tuple[torch.Tensor, torch.Tensor]:
    """Split sentence spans into clause spans at the words in ``breaks`` (case-insensitive).

    :param spans: (B, S, 2) long, [start, end) word indices of each sentence.
    :param mask: (B, S) bool, True = a real sentence.
    :param words: per report (B of them), the words' text; word w of report b is
        ``words[b][w]`` (the order of ``TextFeatures.word_features``).
    :returns: clause spans (B, C, 2) long and mask (B, C) bool, C >= 1; clauses keep
        reading order, the splitting words belong to no clause, and empty clauses
        (two breaks in a row, a break at a sentence edge) are dropped.
    """
    if len(words) != spans.shape[0]:
        raise ValueError(
            f"tpor.source='clauses' needs the words of every report: got {len(words)} word lists for {spans.shape[0]} reports"
        )
    rows: list[list[tuple[int, int]]] = []
    for b in range(spans.shape[0]):
        row: list[tuple[int, int]] = []
        for s in range(spans.shape[1]):
            if not bool(mask[b, s]):
                continue
            start, end = (int(v) for v in spans[b, s])
            current = start
            for w in range(start, end):
                token = words[b][w].strip().lower() if w < len(words[b]) else ""
                if token in breaks:
                    if w > current:
                        row.append((current, w))
                    current = w + 1
            if end > current:
                row.append((current, end))
        rows.append(row)
    n = max(1, max((len(r) for r in rows), default=0))
    out = torch.zeros(spans.shape[0], n, 2, dtype=torch.long, device=spans.device)
    out_mask = torch.zeros(spans.shape[0], n, dtype=torch.bool, device=spans.device)
    for b, row in enumerate(rows):
        if row:
            out[b, : len(row)] = torch.tensor(row, dtype=torch.long, device=spans.device)
            out_mask[b, : len(row)] = True
    return out, out_mask


def span_means(
    features: torch.Tensor, spans: torch.Tensor, span_mask: torch.Tensor, word_mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean of the word features over each span.

    :param features: (B, W, d) word features (axis 1 = word index).
    :param spans: (B, S, 2) long [start, end) word indices; span_mask: (B, S) bool.
    :param word_mask: (B, W) bool, True = a real word; padded words never count.
    :returns: (B, S, d) span means (zero at masked spans) and the (B, S) mask of spans
        that are real and hold at least one real word.
    """
    b, w, _ = features.shape
    positions = torch.arange(w, device=features.device)
    member = (positions >= spans[..., :1]) & (positions < spans[..., 1:2]) & span_mask[..., None]  # (B, S, W)
    if word_mask is not None:
        member = member & word_mask[:, None, :].bool()
    weights = member.to(features.dtype)
    counts = weights.sum(-1)  # (B, S)
    means = torch.einsum("bsw,bwd->bsd", weights, features) / counts.clamp(min=1)[..., None]
    return means, counts > 0


class TPOR(nn.Module):
    """Sentence- (or clause-) level textual observations of each report.

    Input: ``outputs.word_local`` (B, W, d) when the model has a text local projection;
    otherwise ``outputs.text.word_features`` (B, W, D) through this module's own linear
    layer ``D -> d`` (``in_dim`` = D must then be given, since the objective is built
    before it sees a batch).

    :param embed_dim: d, the joint-space width (filled by the model).
    :param in_dim: width D of the text encoder's word features, for the own linear
        layer; None = no own layer (``word_local`` is required).
    :param source: ``'sentences'`` (default, spec/place.md) or ``'clauses'``.
    """

    def __init__(self, embed_dim: int, in_dim: int | None = None, source: str = "sentences"):
        super().__init__()
        if source not in SOURCES:
            raise ValueError(f"tpor.source must be one of {SOURCES}, got {source!r}")
        self.source = source
        self.embed_dim = int(embed_dim)
        self.input_proj = nn.Linear(int(in_dim), self.embed_dim) if in_dim else None

    def word_inputs(self, outputs) -> torch.Tensor:
        """(B, W, d) the word features this module averages (see the class docstring)."""
        if outputs.word_local is not None:
            return outputs.word_local
        if self.input_proj is None:
            raise ValueError(
                "T-PORs need word_local (set model.text_local_projection) or the objective's "
                "text_in_dim (the text encoder's width) for their own projection"
            )
        return self.input_proj(outputs.text.word_features) * outputs.text.word_mask[..., None]

    def spans(self, text) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S, 2) [start, end) word spans of the observations and their (B, S) mask."""
        spans, mask = text.sentence_spans, text.sentence_mask.bool()
        if self.source == "clauses":
            spans, mask = clause_spans(spans, mask, text.batch.words)
        return spans, mask

    def forward(self, outputs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """T-PORs of a :class:`~place_bench.model.outputs.PairOutputs`.

        :returns: ``tpor`` (B, S, d) (axis 1 = observation in reading order; not
            normalized, zero at padding), ``mask`` (B, S) bool (True = a real
            observation with at least one word) and ``spans`` (B, S, 2).
        """
        features = self.word_inputs(outputs)
        spans, mask = self.spans(outputs.text)
        spans, mask = spans.to(features.device), mask.to(features.device)
        tpor, mask = span_means(features, spans, mask, outputs.text.word_mask.to(features.device))
        return tpor, mask, spans
