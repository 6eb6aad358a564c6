"""``rrg``: radiology report generation on the pretrained image encoder (datasets.md sections 1.7, 2.7).

Protocol (the R2Gen card with the evaluated image encoder in place of ResNet-101; BenchX freezes it):

* **Text**: R2Gen's cleaning (:func:`clean_report_iu_xray` / :func:`clean_report_mimic_cxr`: collapse
  repeated periods, drop list numbering "1." .. "5.", lower-case, split on ". ", strip a fixed set of
  punctuation per sentence, re-join with " . " and end with " ."; MIMIC also turns newlines into
  spaces and collapses runs of underscores and spaces). Word-level vocabulary from the cleaned
  *training* reports: tokens seen ``>= vocab_threshold`` times (3 IU / 10 MIMIC) plus ``<unk>``,
  sorted, ids from 1; id 0 is BOS, EOS and padding. A report is ``[0] + ids + [0]`` cut to
  ``max_length`` ids (60 IU / 100 MIMIC), so a target has at most ``max_length - 1`` words.
* **Images**: IU X-ray's two views (frontal, lateral) and MIMIC's one view go through the section
  2.0 pipeline (train: letterbox + seeded random crop, never flipped -- pitfall 17; eval: centre
  crop). The image encoder (``ctx.model.encode_image``) gives each view's ``local_tokens``; the views'
  tokens are concatenated (R2Gen concatenates its two feature maps). Frozen by default (eval mode,
  no gradient; the checkpoint is never touched); ``finetune_encoder=True`` trains a deep copy at
  ``lr_visual``.
* **Head**: linear projection of the tokens to the decoder width + LayerNorm + a learned per-view
  embedding, ``decoder.visual_layers`` pre-norm Transformer encoder layers over them (R2Gen has 3),
  and a ``transformers`` ``BertLMHeadModel`` decoder (causal self-attention + cross-attention to the
  visual tokens) of ``decoder.num_layers`` x ``decoder.hidden_size`` with ``decoder.num_heads`` heads
  (R2Gen scale: 3 x 512, 8 heads, FFN 512). Weights are drawn from the unit's seed.
* **Training**: teacher-forced token cross-entropy (mean over target tokens, EOS included), Adam
  (amsgrad, weight decay 5e-5; lr 1e-4 head, 5e-5 visual when fine-tuned), StepLR per epoch,
  gradient value clip 0.1, batch 16, ``epochs`` (``max_iters`` caps the iterations). Every
  ``val_interval`` epochs the whole validation split is decoded and scored with BLEU-4 against
  the truncated references; the best state is kept (``patience`` rounds without improvement stop).
* **Decoding**: greedy (``beam_size=1``) or beam search (R2Gen: 3), summed log-probabilities, no
  length penalty, at most ``max_length`` tokens; ``trigram_penalty`` (default 0) lowers the
  log-probability of a token that would repeat a trigram of the hypothesis (``inf`` blocks it).
* **Metrics** on the whole test split (:mod:`place_bench.evaluation.nlg`, pycocoevalcap's BLEU-1..4,
  METEOR, ROUGE-L, CIDEr-D) against (a) R2Gen-compatible references: cleaned, vocabulary-mapped
  (``<unk>``), truncated, decoded from ids (pitfall 13) -- ``bleu1``..``bleu4``, ``meteor``,
  ``rouge_l`` (primary ``bleu4``); and (b) full cleaned references -- ``full_bleu4`` ... Clinical
  efficacy: the suite's rule labeler (CheXpert-14) on the generated vs the full cleaned reference
  report: micro ``ce_precision`` / ``ce_recall`` / ``ce_f1`` and macro ``ce_*_macro`` over the 14
  observations (an observation with no positive anywhere scores 0); on synthetic data also against
  the latent image truth (``ce_latent_*``, when the native root holds ``latent.jsonl``). Percentile
  bootstrap intervals over studies (``n_resamples``, default 200: corpus BLEU / CIDEr / METEOR are
  recomputed per resample from per-item statistics). CIDEr is not bounded by 1: ``cider`` /
  ``full_cider`` carry ``"unbounded": true`` in the record (listed again in
  ``extra.unbounded_metrics``).

Outputs per unit: a ``samples`` JSONL (``id``, ``study_id``, ``generated``, ``reference`` (truncated),
``reference_full``) copied beside the record, per-item ROUGE-L for paired comparisons, and in
``extra`` the vocabulary size, the best validation BLEU-4 and its epoch / iteration, the loss and
validation histories and the decoding settings.
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from place_bench.engine.task import EvalContext, Task, Unit, UnitResult, per_dataset_overrides
from place_bench.hookspecs import hookimpl

__all__ = [
    "ReportGenerationTask",
    "ReportHead",
    "Vocabulary",
    "beam_decode",
    "clean_report",
    "clean_report_iu_xray",
    "clean_report_mimic_cxr",
    "clinical_efficacy_scores",
    "greedy_decode",
]

DEVIATIONS = [
    "visual features: the evaluated encoder's local tokens (frozen by default, as BenchX) instead of R2Gen's "
    "ResNet-101 feature maps",
    "decoder: a transformers BertLMHeadModel (+ optional Transformer encoder layers over the visual tokens) "
    "instead of R2Gen's memory-driven Transformer (no relational memory)",
    "images: section 2.0 letterbox + random crop, no horizontal flip (datasets.md section 5, pitfall 17)",
    "beam search: a hypothesis ending with EOS leaves the beam and is replaced by the next candidate "
    "(R2Gen keeps the slot at -1000); trigram blocking off by default (inactive in R2Gen's beam path too)",
    "metrics also against full cleaned references (full_*) and clinical efficacy from the suite's rule labeler",
]

#: Per-dataset defaults of the R2Gen card (datasets.md section 1.7).
DATASET_DEFAULTS = {
    "iu_xray": dict(cleaner="iu_xray", vocab_threshold=3, max_length=60),
    "mimic_rrg": dict(cleaner="mimic_cxr", vocab_threshold=10, max_length=100),
}
FALLBACK_DEFAULTS = dict(cleaner="mimic_cxr", vocab_threshold=10, max_length=100)
DECODER_DEFAULTS = dict(num_layers=3, hidden_size=512, num_heads=8, intermediate_size=512, dropout=0.1,
                        visual_layers=3)
#: Settings ``by_dataset`` may change for one dataset.
DATASET_OVERRIDES = ("cleaner", "vocab_threshold", "max_length", "epochs", "max_iters", "lr", "lr_visual",
                     "lr_step", "lr_gamma", "batch_size", "eval_batch_size", "val_interval", "patience",
                     "beam_size", "val_beam_size", "views", "decoder", "weight_decay", "trigram_penalty")
NLG_FAMILIES = ("bleu", "meteor", "rouge_l", "cider")
UNBOUNDED = ("cider",)
EOS = BOS = PAD = 0
UNK = "<unk>"


# --------------------------------------------------------------------------------------------
# Text: R2Gen cleaning and the word vocabulary
# --------------------------------------------------------------------------------------------

# List numbering "1." .. "5." as R2Gen removes it: every "1. " goes, ". N. " and " N. " become ". ".
_NUMBERING = (("1. ", ""),) + tuple((f". {k}. ", ". ") for k in range(2, 6)) + tuple((f" {k}. ", ". ")
                                                                                   for k in range(2, 6))
# Characters removed from each sentence. R2Gen's class ``[.,?;*!%^&_+():-\[\]{}]`` holds the range
# ``:-\[`` (so ':' ';' '<' '=' '>' '?' '@' and '[' go; the hyphen stays); quotes, slashes and
# backslashes are removed before it.
_SENTENCE_DROP = str.maketrans("", "", ".,?;*!%^&_+():<=>@[]{}" + "\"/\\'")


def _drop_numbering(text: str) -> str:
    for old, new in _NUMBERING:
        text = text.replace(old, new)
    return text


def _join_sentences(text: str) -> str:
    sentences = [s.strip().lower().translate(_SENTENCE_DROP) for s in text.strip().lower().split(". ")]
    # R2Gen keeps empty sentences (its emptiness test compares a string with a list)
    return " . ".join(sentences) + " ."


def clean_report_iu_xray(report: str) -> str:
    """R2Gen's IU X-ray cleaning: collapse repeated periods, drop list numbering, lower-case, split
    on ". ", strip punctuation per sentence, join with " . " and end with " ."."""
    return _join_sentences(_drop_numbering(re.sub(r"\.{2,}", ".", str(report))))


def clean_report_mimic_cxr(report: str) -> str:
    """R2Gen's MIMIC-CXR cleaning: as IU after turning newlines into spaces and collapsing runs of
    underscores and of spaces."""
    text = re.sub(r" {2,}", " ", re.sub(r"_{2,}", "_", str(report).replace("\n", " ")))
    return _join_sentences(_drop_numbering(re.sub(r"\.{2,}", ".", text)))


CLEANERS: dict[str, Callable[[str], str]] = {"iu_xray": clean_report_iu_xray, "mimic_cxr": clean_report_mimic_cxr}


def clean_report(report: str, cleaner: str) -> str:
    try:
        return CLEANERS[cleaner](report)
    except KeyError:
        raise ValueError(f"cleaner must be one of {sorted(CLEANERS)}, got {cleaner!r}") from None


class Vocabulary:
    """R2Gen's word vocabulary: ``tokens`` (``<unk>`` among them) sorted, ids from 1; id 0 is BOS,
    EOS and padding."""

    def __init__(self, tokens: Sequence[str]):
        words = sorted(set(tokens) | {UNK})
        self.idx2token = ["<eos>"] + words
        self.token2idx = {t: i + 1 for i, t in enumerate(words)}
        self.unk = self.token2idx[UNK]

    @classmethod
    def build(cls, cleaned_reports: Sequence[str], threshold: int) -> "Vocabulary":
        """Tokens seen at least ``threshold`` times in ``cleaned_reports`` (whitespace tokens)."""
        counts = Counter(t for text in cleaned_reports for t in text.split())
        return cls([t for t, c in counts.items() if c >= int(threshold)])

    def __len__(self) -> int:
        return len(self.idx2token)

    def encode(self, cleaned: str, max_length: int) -> list[int]:
        """``[0] + ids + [0]`` of a cleaned report, cut to ``max_length`` ids (R2Gen)."""
        return ([BOS] + [self.token2idx.get(t, self.unk) for t in cleaned.split()] + [EOS])[: int(max_length)]

    def decode(self, ids: Sequence[int]) -> str:
        """Tokens of ``ids`` up to the first 0, joined by spaces."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            out.append(self.idx2token[i])
        return " ".join(out)


# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


class ReportHead(nn.Module):
    """Visual projection (+ optional Transformer encoder layers) and a ``BertLMHeadModel`` decoder
    with cross-attention; ``encoder`` is a trainable image encoder or None (frozen features come
    from outside)."""

    def __init__(self, local_dim: int, vocab_size: int, views: int, max_length: int, num_layers: int = 3,
                 hidden_size: int = 512, num_heads: int = 8, intermediate_size: int | None = None,
                 dropout: float = 0.1, visual_layers: int = 0, encoder: nn.Module | None = None):
        super().__init__()
        from transformers import BertConfig, BertLMHeadModel

        self.encoder = encoder
        h = int(hidden_size)
        self.project = nn.Sequential(nn.Linear(int(local_dim), h), nn.LayerNorm(h), nn.Dropout(float(dropout)))
        self.view_embedding = nn.Parameter(torch.randn(int(views), h) * 0.02)
        self.visual = None
        if int(visual_layers) > 0:
            layer = nn.TransformerEncoderLayer(h, int(num_heads), int(intermediate_size or 4 * h), float(dropout),
                                               batch_first=True, norm_first=True)
            self.visual = nn.TransformerEncoder(layer, int(visual_layers), norm=nn.LayerNorm(h),
                                                enable_nested_tensor=False)
        config = BertConfig(vocab_size=int(vocab_size), hidden_size=h, num_hidden_layers=int(num_layers),
                            num_attention_heads=int(num_heads), intermediate_size=int(intermediate_size or 4 * h),
                            hidden_dropout_prob=float(dropout), attention_probs_dropout_prob=float(dropout),
                            max_position_embeddings=int(max_length) + 2, type_vocab_size=1, is_decoder=True,
                            add_cross_attention=True, pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
        self.decoder = BertLMHeadModel(config)

    def memory(self, images: torch.Tensor, encode: Callable[[torch.Tensor], Any] | None = None) -> torch.Tensor:
        """Visual tokens ``(B, V * N, H)`` of images ``(B, V, 3, S, S)``; ``encode`` (frozen
        features, run without gradient) or this head's own ``encoder``."""
        b, v = images.shape[:2]
        flat = images.flatten(0, 1)
        if self.encoder is not None:
            tokens = self.encoder(flat).local_tokens
        else:
            with torch.no_grad():
                tokens = encode(flat).local_tokens
        tokens = tokens.float().reshape(b, v, tokens.shape[1], tokens.shape[2])
        x = self.project(tokens) + self.view_embedding[:v, None, :]
        x = x.reshape(b, -1, x.shape[-1])
        return self.visual(x) if self.visual is not None else x

    def logits(self, memory: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None):
        out = self.decoder(input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=memory,
                           use_cache=False)
        return out.logits

    def loss(self, memory: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Teacher-forced cross-entropy of ``ids[:, 1:]`` given ``ids[:, :-1]`` (mean over the
        ``mask[:, 1:]`` targets, R2Gen's ``LanguageModelCriterion``)."""
        logits = self.logits(memory, ids[:, :-1], mask[:, :-1]).float()
        target, tmask = ids[:, 1:], mask[:, 1:].float()
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="none")
        return (nll * tmask.reshape(-1)).sum() / tmask.sum().clamp(min=1.0)

    def next_log_probs(self, memory: torch.Tensor, seqs: torch.Tensor) -> torch.Tensor:
        return F.log_softmax(self.logits(memory, seqs)[:, -1].float(), dim=-1)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def _trigram_penalty(seqs: torch.Tensor, logp: torch.Tensor, penalty: float) -> torch.Tensor:
    """Lower by ``penalty`` the log-probability of tokens that would repeat a trigram of each row
    (``seqs`` without the BOS column)."""
    if not penalty or seqs.shape[1] < 3:
        return logp
    rows = seqs[:, 1:].tolist()
    mask = torch.zeros_like(logp, dtype=torch.bool)
    for r, toks in enumerate(rows):
        if len(toks) < 3:
            continue
        last = (toks[-2], toks[-1])
        for j in range(len(toks) - 2):
            if (toks[j], toks[j + 1]) == last:
                mask[r, toks[j + 2]] = True
    return logp.masked_fill(mask, -math.inf) if math.isinf(penalty) else logp - mask.float() * float(penalty)


@torch.no_grad()
def greedy_decode(step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], memory: torch.Tensor,
                  max_new: int, trigram_penalty: float = 0.0) -> list[list[int]]:
    """Arg-max decoding; ``step(memory, seqs)`` gives next-token log-probabilities ``(B, vocab)`` of
    sequences ``seqs`` (BOS first). Returns each row's tokens without BOS / EOS."""
    b = memory.shape[0]
    seqs = torch.full((b, 1), BOS, dtype=torch.long, device=memory.device)
    done = torch.zeros(b, dtype=torch.bool, device=memory.device)
    for _ in range(int(max_new)):
        logp = _trigram_penalty(seqs, step(memory, seqs), trigram_penalty)
        tok = torch.where(done, torch.full_like(done, EOS, dtype=torch.long), logp.argmax(-1))
        seqs = torch.cat([seqs, tok[:, None]], dim=1)
        done |= tok == EOS
        if bool(done.all()):
            break
    out = []
    for row in seqs[:, 1:].tolist():
        out.append(row[: row.index(EOS)] if EOS in row else row)
    return out


@torch.no_grad()
def beam_decode(step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], memory: torch.Tensor,
                beam_size: int, max_new: int, trigram_penalty: float = 0.0) -> list[list[int]]:
    """Beam search (summed log-probabilities, no length penalty). ``beam_size`` hypotheses stay
    alive; one that emits EOS is finished and replaced by the next-best candidate; a row stops when
    no alive hypothesis can beat its best finished one (scores only fall); at ``max_new`` tokens
    the alive hypotheses count as finished. Returns the best finished tokens of each row.
    ``beam_size=1`` equals :func:`greedy_decode`."""
    k = int(beam_size)
    if k <= 1:
        return greedy_decode(step, memory, max_new, trigram_penalty)
    b, device = memory.shape[0], memory.device
    mem = memory.repeat_interleave(k, dim=0)
    seqs = torch.full((b * k, 1), BOS, dtype=torch.long, device=device)
    scores = torch.full((b, k), -math.inf, device=device)
    scores[:, 0] = 0.0
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(b)]
    active = [True] * b
    for _ in range(int(max_new)):
        logp = _trigram_penalty(seqs, step(mem, seqs), trigram_penalty)
        vocab = logp.shape[-1]
        cand = (scores.reshape(-1, 1) + logp).reshape(b, k * vocab)
        top_s, top_i = cand.topk(min(2 * k, k * vocab), dim=-1)
        top_s, top_i = top_s.tolist(), top_i.tolist()
        new_src = [[0] * k for _ in range(b)]
        new_tok = [[EOS] * k for _ in range(b)]
        new_score = [[-math.inf] * k for _ in range(b)]
        prefixes = seqs[:, 1:].tolist()
        for row in range(b):
            if not active[row]:
                continue
            n = 0
            for s, i in zip(top_s[row], top_i[row]):
                if s == -math.inf:
                    break
                src, tok = divmod(i, vocab)
                if tok == EOS:
                    finished[row].append((s, prefixes[row * k + src]))
                    continue
                new_src[row][n], new_tok[row][n], new_score[row][n] = src, tok, s
                n += 1
                if n == k:
                    break
            best_done = max((f[0] for f in finished[row]), default=-math.inf)
            if n == 0 or (finished[row] and best_done >= new_score[row][0]):
                active[row] = False
        if not any(active):
            break
        src = torch.tensor(new_src, device=device) + torch.arange(b, device=device)[:, None] * k
        seqs = torch.cat([seqs[src.reshape(-1)], torch.tensor(new_tok, device=device).reshape(-1, 1)], dim=1)
        scores = torch.tensor(new_score, device=device)
    else:  # max_new reached: the alive hypotheses end here
        prefixes = seqs[:, 1:].tolist()
        flat = scores.tolist()
        for row in range(b):
            if active[row]:
                for j in range(k):
                    if flat[row][j] > -math.inf:
                        finished[row].append((flat[row][j], prefixes[row * k + j]))
    return [max(f, key=lambda x: x[0])[1] if f else [] for f in finished]


# --------------------------------------------------------------------------------------------
# Clinical efficacy (the suite's rule labeler)
# --------------------------------------------------------------------------------------------


def _positive_matrix(labels: Sequence[Mapping[str, Any]], observations: Sequence[str],
                     uncertain_as_positive: bool) -> np.ndarray:
    pos = {1, -1} if uncertain_as_positive else {1}
    return np.array([[lab.get(o) in pos for o in observations] for lab in labels], dtype=bool).reshape(
        len(labels), len(observations))


def _prf(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        r = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), 0.0)
        f = np.where(p + r > 0, 2 * p * r / np.where(p + r > 0, p + r, 1.0), 0.0)
    return p, r, f


def ce_metric(name: str, pred: np.ndarray, ref: np.ndarray) -> float:
    """``precision`` / ``recall`` / ``f1`` (micro: counts summed over observations) or
    ``*_macro`` (mean of per-observation values; 0 for an observation without positives) of
    positive matrices ``(N, L)``."""
    tp = (pred & ref).sum(axis=0).astype(np.float64)
    fp = (pred & ~ref).sum(axis=0).astype(np.float64)
    fn = (~pred & ref).sum(axis=0).astype(np.float64)
    base, _, kind = name.partition("_")
    if kind == "macro":
        p, r, f = _prf(tp, fp, fn)
    elif kind == "":
        p, r, f = (float(x[0]) for x in _prf(np.array([tp.sum()]), np.array([fp.sum()]), np.array([fn.sum()])))
        return {"precision": p, "recall": r, "f1": f}[base]
    else:
        raise ValueError(f"unknown clinical-efficacy metric {name!r}")
    return float({"precision": p, "recall": r, "f1": f}[base].mean())


CE_METRICS = ("precision", "recall", "f1", "precision_macro", "recall_macro", "f1_macro")


def clinical_efficacy_scores(generated: Sequence[Mapping[str, Any]], reference: Sequence[Mapping[str, Any]],
                             observations: Sequence[str], uncertain_as_positive: bool = False
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Positive matrices ``(pred, ref)`` ``(N, L)`` of label dicts (1 positive; -1 too when
    ``uncertain_as_positive``; blank / 0 negative), for :func:`ce_metric`."""
    return (_positive_matrix(generated, observations, uncertain_as_positive),
            _positive_matrix(reference, observations, uncertain_as_positive))


def read_latent_truth(root: Path) -> dict[str, dict[str, int]]:
    """Synthetic emulations: sample id -> latent image-truth labels from ``<root>/latent.jsonl``
    (IU: ``ids.id``; MIMIC: every id in ``ids.entries``); empty when there is no such file."""
    path = Path(root) / "latent.jsonl"
    if not path.is_file():
        return {}
    out: dict[str, dict[str, int]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            truth = rec.get("image_truth")
            ids = rec.get("ids") or {}
            if not truth:
                continue
            for key in ([ids["id"]] if ids.get("id") else []) + list(ids.get("entries") or []):
                out[str(key)] = dict(truth)
    return out


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


class _EpochItems(torch.utils.data.Dataset):
    """A ReportGenerationDataset keyed by ``(index, epoch)`` (a fresh random crop per epoch)."""

    def __init__(self, dataset):
        self.dataset, self.epoch = dataset, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[(int(index), self.epoch)]
        return {"images": item["images"], "report": item["report"], "sample_id": item["sample_id"]}


def _collate(items: Sequence[dict]) -> dict:
    return {"images": torch.stack([it["images"] for it in items]), "reports": [it["report"] for it in items],
            "sample_ids": [it["sample_id"] for it in items]}


def _pad(seqs: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), PAD, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return ids, mask


# --------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------


class ReportGenerationTask(Task):
    """R2Gen-style report generation; see the module docstring for the protocol.

    :param pipeline: section 2.0 transform settings; None = the checkpoint's pretraining pipeline.
    :param splits: ``dict(train=, val=, test=)`` split names.
    :param views: images per study (None: the loader's default, 2 for ``iu_xray`` else 1).
    :param cleaner, vocab_threshold, max_length: None = the dataset's R2Gen values
        (:data:`DATASET_DEFAULTS`: IU ``iu_xray`` / 3 / 60, MIMIC ``mimic_cxr`` / 10 / 100).
    :param decoder: ``dict(num_layers, hidden_size, num_heads, intermediate_size, dropout,
        visual_layers)`` (defaults :data:`DECODER_DEFAULTS`, R2Gen scale).
    :param finetune_encoder: train a copy of the image encoder at ``lr_visual`` (default frozen).
    :param lr, lr_visual, weight_decay, betas, amsgrad: Adam; ``lr_step`` / ``lr_gamma``: StepLR
        per epoch; ``clip_grad_value``: gradient value clip (R2Gen 0.1; None: off).
    :param epochs, max_iters: training length (``max_iters`` caps iterations; ``epochs=0`` scores
        the untrained head); ``batch_size``, ``eval_batch_size``.
    :param train_augment: random crops for training images (else the eval transform).
    :param val_interval, patience: validation every N epochs (and after the last), stop after
        ``patience`` rounds without a better BLEU-4.
    :param beam_size, val_beam_size, trigram_penalty: decoding (``val_beam_size`` None = ``beam_size``).
    :param nlg_metrics: metric families among ``bleu``, ``meteor`` (needs Java), ``rouge_l``, ``cider``.
    :param clinical_efficacy, ce_uncertain_as_positive: labeler-based CE scores and their policy.
    :param n_resamples: bootstrap resamples (default 200: corpus metrics are recomputed per resample).
    :param by_dataset: dataset name -> overrides of :data:`DATASET_OVERRIDES`.
    """

    name = "rrg"
    needs = frozenset({"image"})
    uses_fractions = False

    def __init__(
        self,
        pipeline: dict | None = None,
        splits: dict | None = None,
        views: int | None = None,
        cleaner: str | None = None,
        vocab_threshold: int | None = None,
        max_length: int | None = None,
        decoder: dict | None = None,
        finetune_encoder: bool = False,
        lr: float = 1e-4,
        lr_visual: float = 5e-5,
        weight_decay: float = 5e-5,
        betas: Sequence[float] = (0.9, 0.999),
        amsgrad: bool = True,
        lr_step: int = 50,
        lr_gamma: float = 0.1,
        clip_grad_value: float | None = 0.1,
        epochs: int = 100,
        max_iters: int | None = None,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        train_augment: bool = True,
        val_interval: int = 1,
        patience: int = 50,
        beam_size: int = 3,
        val_beam_size: int | None = None,
        trigram_penalty: float = 0.0,
        nlg_metrics: Sequence[str] = NLG_FAMILIES,
        clinical_efficacy: bool = True,
        ce_uncertain_as_positive: bool = False,
        n_resamples: int = 200,
        num_workers: int = 4,
        variant: str | None = None,
        by_dataset: dict | None = None,
    ):
        settings = {k: v for k, v in locals().items() if k not in ("self", "__class__", "by_dataset")}
        self.by_dataset = per_dataset_overrides(by_dataset, DATASET_OVERRIDES)
        self._settings = settings
        if cleaner is not None and cleaner not in CLEANERS:
            raise ValueError(f"cleaner must be one of {sorted(CLEANERS)} or None, got {cleaner!r}")
        unknown = sorted(set(decoder or {}) - set(DECODER_DEFAULTS))
        if unknown:
            raise ValueError(f"decoder: unknown keys {unknown}; known: {sorted(DECODER_DEFAULTS)}")
        families = tuple(nlg_metrics)
        if not families or set(families) - set(NLG_FAMILIES):
            raise ValueError(f"nlg_metrics must be a non-empty subset of {NLG_FAMILIES}, got {families}")
        if "bleu" not in families:
            raise ValueError("nlg_metrics must include 'bleu' (the primary metric is bleu4)")
        if int(epochs) < 0 or int(batch_size) < 1 or int(val_interval) < 1 or int(patience) < 1:
            raise ValueError("epochs must be >= 0 and batch_size, val_interval, patience >= 1")
        if int(beam_size) < 1 or (val_beam_size is not None and int(val_beam_size) < 1):
            raise ValueError("beam sizes must be >= 1")
        if max_length is not None and int(max_length) < 2:
            raise ValueError(f"max_length must be >= 2 (BOS + one word), got {max_length}")
        self.pipeline = None if pipeline is None else dict(pipeline)
        self.splits = {"train": "train", "val": "valid", "test": "test", **(splits or {})}
        self.views = None if views is None else int(views)
        self.cleaner, self.vocab_threshold, self.max_length = cleaner, vocab_threshold, max_length
        self.decoder_cfg = {**DECODER_DEFAULTS, **(decoder or {})}
        self.finetune_encoder = bool(finetune_encoder)
        self.lr, self.lr_visual, self.weight_decay = float(lr), float(lr_visual), float(weight_decay)
        self.betas, self.amsgrad = tuple(float(b) for b in betas), bool(amsgrad)
        self.lr_step, self.lr_gamma = int(lr_step), float(lr_gamma)
        self.clip_grad_value = None if clip_grad_value is None else float(clip_grad_value)
        self.epochs = int(epochs)
        self.max_iters = None if max_iters is None else int(max_iters)
        self.batch_size = int(batch_size)
        self.eval_batch_size = int(eval_batch_size or batch_size)
        self.train_augment = bool(train_augment)
        self.val_interval, self.patience = int(val_interval), int(patience)
        self.beam_size = int(beam_size)
        self.val_beam_size = int(val_beam_size or beam_size)
        self.trigram_penalty = float(trigram_penalty)
        self.nlg_metrics = families
        self.clinical_efficacy = bool(clinical_efficacy)
        self.ce_uncertain_as_positive = bool(ce_uncertain_as_positive)
        self.n_resamples = int(n_resamples)
        self.num_workers = int(num_workers)
        self.variant = variant

    # -- configuration ----------------------------------------------------------------------
    def for_dataset(self, name: str) -> "ReportGenerationTask":
        """This task with ``by_dataset[name]`` applied (itself when there is none)."""
        overrides = self.by_dataset.get(name)
        if not overrides:
            return self
        merged = {**self._settings, **overrides}
        if "decoder" in overrides:
            merged["decoder"] = {**(self._settings.get("decoder") or {}), **overrides["decoder"]}
        return type(self)(**merged)

    def resolved(self, dataset: str) -> dict[str, Any]:
        """cleaner / vocab_threshold / max_length for ``dataset`` (explicit values win)."""
        base = DATASET_DEFAULTS.get(dataset, FALLBACK_DEFAULTS)
        return {"cleaner": self.cleaner or base["cleaner"],
                "vocab_threshold": int(self.vocab_threshold if self.vocab_threshold is not None
                                       else base["vocab_threshold"]),
                "max_length": int(self.max_length if self.max_length is not None else base["max_length"])}

    def protocol(self) -> dict[str, Any]:
        return {"pipeline": self.pipeline, "splits": self.splits, "views": self.views,
                "text": {"cleaner": self.cleaner, "vocab_threshold": self.vocab_threshold,
                         "max_length": self.max_length, "defaults": DATASET_DEFAULTS},
                "decoder": self.decoder_cfg, "finetune_encoder": self.finetune_encoder,
                "optimizer": {"type": "Adam", "lr": self.lr, "lr_visual": self.lr_visual,
                              "weight_decay": self.weight_decay, "betas": list(self.betas), "amsgrad": self.amsgrad},
                "schedule": {"type": "StepLR per epoch", "step": self.lr_step, "gamma": self.lr_gamma,
                             "epochs": self.epochs, "max_iters": self.max_iters},
                "clip_grad_value": self.clip_grad_value, "batch_size": self.batch_size,
                "train_augment": self.train_augment,
                "validation": {"interval_epochs": self.val_interval, "patience": self.patience,
                               "metric": "bleu4 (truncated references)", "beam_size": self.val_beam_size},
                "decoding": {"beam_size": self.beam_size, "trigram_penalty": self.trigram_penalty},
                "metrics": {"nlg": list(self.nlg_metrics), "clinical_efficacy": self.clinical_efficacy,
                            "ce_uncertain_as_positive": self.ce_uncertain_as_positive,
                            "n_resamples": self.n_resamples},
                "by_dataset": self.by_dataset}

    def units(self, fractions, seeds) -> list[Unit]:
        return [Unit(None, int(s), self.variant) for s in seeds]

    # -- data -------------------------------------------------------------------------------
    def _pipeline(self, ctx: EvalContext) -> dict:
        return dict(ctx.pipeline) if self.pipeline is None else self.pipeline

    def _dataset(self, ctx: EvalContext, split: str, train: bool = False, seed: int = 0):
        from place_bench.data.loaders import ReportGenerationDataset

        return ReportGenerationDataset(ctx.dataset.manifest, ctx.dataset.root, split=split,
                                       pipeline=self._pipeline(ctx), train=train, seed=seed, views=self.views)

    def _loader(self, items, batch_size: int, order: Sequence[int] | None = None):
        return torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=False,
                                           sampler=None if order is None else list(order),
                                           num_workers=self.num_workers, collate_fn=_collate,
                                           persistent_workers=False)

    @staticmethod
    def _study_ids(ctx: EvalContext, sample_ids: Sequence[str]) -> list[str]:
        from place_bench.data.manifest import iter_manifest

        try:
            rows = iter_manifest(ctx.dataset.manifest, columns=["sample_id", "study_id"])
            study = {r["sample_id"]: r.get("study_id") for r in rows}
        except Exception:  # a manifest without the column: every item its own study
            study = {}
        return [str(study.get(s) or s) for s in sample_ids]

    def _unit_dir(self, ctx: EvalContext, unit: Unit) -> Path:
        subject = re.sub(r"[^A-Za-z0-9]+", "", ctx.subject_id.replace("init:", "init"))[:16]
        name = f"{ctx.dataset.name}-{ctx.dataset.protocol}-{subject}-s{unit.seed}"
        if unit.variant:
            name += f"-{unit.variant}"
        return Path(ctx.work_dir) / "rrg" / re.sub(r"[^A-Za-z0-9._-]+", "_", name)

    # -- model ------------------------------------------------------------------------------
    def build_head(self, ctx: EvalContext, vocab_size: int, views: int, max_length: int, seed: int) -> ReportHead:
        torch.manual_seed(int(seed))
        encoder = None
        if self.finetune_encoder:
            encoder = copy.deepcopy(ctx.model.image_encoder)
            encoder.requires_grad_(True)
        local_dim = int(getattr(ctx.model.image_encoder, "local_dim", 0) or 0)
        if not local_dim:
            raise ValueError("rrg needs an image encoder with local tokens (image_encoder.local_dim)")
        cfg = self.decoder_cfg
        head = ReportHead(local_dim, vocab_size, views, max_length, num_layers=cfg["num_layers"],
                          hidden_size=cfg["hidden_size"], num_heads=cfg["num_heads"],
                          intermediate_size=cfg["intermediate_size"], dropout=cfg["dropout"],
                          visual_layers=cfg["visual_layers"], encoder=encoder)
        return head.to(ctx.device)

    @torch.no_grad()
    def generate(self, ctx: EvalContext, head: ReportHead, dataset, beam_size: int, max_new: int
                 ) -> tuple[list[str], list[list[int]]]:
        """Generated token ids of every item of ``dataset`` (in order) and their sample ids."""
        head.eval()
        ids, out = [], []
        for batch in self._loader(_EpochItems(dataset), self.eval_batch_size):
            memory = head.memory(batch["images"].to(ctx.device), ctx.model.encode_image)
            out.extend(beam_decode(head.next_log_probs, memory, beam_size, max_new, self.trigram_penalty))
            ids.extend(batch["sample_ids"])
        return ids, out

    # -- training ---------------------------------------------------------------------------
    def train(self, ctx: EvalContext, unit: Unit) -> tuple[ReportHead, Vocabulary, dict[str, Any]]:
        """Build the vocabulary and train a head for ``unit``; return the best-validation head
        (eval mode), the vocabulary and a JSON-able log."""
        text = self.resolved(ctx.dataset.name)
        seed = int(unit.seed)
        train_raw = self._dataset(ctx, self.splits["train"], train=self.train_augment, seed=seed)
        val_raw = self._dataset(ctx, self.splits["val"])
        cleaned_train = [clean_report((r["findings"] or r["report"] or "").strip(), text["cleaner"])
                         for r in train_raw.rows]
        vocab = Vocabulary.build(cleaned_train, text["vocab_threshold"])
        max_length = text["max_length"]
        encoded = [vocab.encode(c, max_length) for c in cleaned_train]
        by_id = {r["sample_id"]: e for r, e in zip(train_raw.rows, encoded)}
        val_refs = [vocab.decode(vocab.encode(clean_report((r["findings"] or r["report"] or "").strip(),
                                                           text["cleaner"]), max_length)[1:])
                    for r in val_raw.rows]

        head = self.build_head(ctx, len(vocab), train_raw.views, max_length, seed)
        visual = list(head.encoder.parameters()) if head.encoder is not None else []
        visual_ids = {id(p) for p in visual}
        rest = [p for p in head.parameters() if id(p) not in visual_ids]
        groups = [{"params": rest, "lr": self.lr}] + ([{"params": visual, "lr": self.lr_visual}] if visual else [])
        optimizer = torch.optim.Adam(groups, lr=self.lr, betas=self.betas, weight_decay=self.weight_decay,
                                     amsgrad=self.amsgrad)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, self.lr_step), gamma=self.lr_gamma)
        items = _EpochItems(train_raw)
        encode = ctx.model.encode_image

        best = {"bleu4": -math.inf, "epoch": None, "iter": None, "state": None}
        loss_history, val_history = [], []
        first_loss = None
        iters, waited, stopped_early = 0, 0, False
        t0 = time.perf_counter()
        for epoch in range(self.epochs):
            items.epoch = epoch
            order = np.random.default_rng([seed, epoch]).permutation(len(items)).tolist()
            head.train()  # a frozen encoder is not part of the head: ctx.model stays in eval mode
            losses = []
            for batch in self._loader(items, self.batch_size, order):
                ids, mask = _pad([by_id[s] for s in batch["sample_ids"]])
                memory = head.memory(batch["images"].to(ctx.device), encode)
                loss = head.loss(memory, ids.to(ctx.device), mask.to(ctx.device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if self.clip_grad_value is not None:
                    torch.nn.utils.clip_grad_value_(head.parameters(), self.clip_grad_value)
                optimizer.step()
                iters += 1
                value = float(loss.detach())
                first_loss = value if first_loss is None else first_loss
                losses.append(value)
                if self.max_iters is not None and iters >= self.max_iters:
                    break
            scheduler.step()
            loss_history.append([epoch + 1, float(np.mean(losses)) if losses else None])
            capped = self.max_iters is not None and iters >= self.max_iters
            last = capped or epoch + 1 == self.epochs
            if (epoch + 1) % self.val_interval == 0 or last:
                _, gen = self.generate(ctx, head, val_raw, self.val_beam_size, max_length)
                from place_bench.evaluation.nlg import corpus_bleu

                bleu4 = float(corpus_bleu([vocab.decode(g) for g in gen], val_refs)[3])
                val_history.append([epoch + 1, iters, bleu4])
                if bleu4 > best["bleu4"]:
                    best.update(bleu4=bleu4, epoch=epoch + 1, iter=iters,
                                state={k: v.detach().to("cpu", copy=True) for k, v in head.state_dict().items()})
                    waited = 0
                else:
                    waited += 1
                    if waited >= self.patience:
                        stopped_early = True
                        break
            if capped:
                break
        if best["state"] is not None:
            head.load_state_dict(best["state"])
        head.eval()
        log = {"vocab_size": len(vocab), "vocab_threshold": text["vocab_threshold"], "max_length": max_length,
               "cleaner": text["cleaner"], "views": train_raw.views, "n_train": len(train_raw), "n_val": len(val_raw),
               "epochs_run": len(loss_history), "iters": iters, "initial_loss": first_loss,
               "loss_history": loss_history, "val_history": val_history,
               "best_val_bleu4": None if best["state"] is None else best["bleu4"],
               "best_epoch": best["epoch"], "best_iter": best["iter"], "stopped_early": stopped_early,
               "train_seconds": round(time.perf_counter() - t0, 3),
               "head_parameters": int(sum(p.numel() for p in rest)),
               "encoder": "fine-tuned copy" if head.encoder is not None else "frozen (eval mode, no grad)"}
        if best["state"] is None:
            log["note"] = "no validation round (epochs=0): the untrained head was scored"
        return head, vocab, log

    # -- scoring ----------------------------------------------------------------------------
    def _clinical_efficacy(self, ctx: EvalContext, sample_ids: Sequence[str], generated: Sequence[str],
                           references: Sequence[str], groups: Sequence[str], seed: int
                           ) -> tuple[dict[str, dict], dict[str, Any]]:
        from place_bench.evaluation.nlg import ci_record, expand_groups
        from place_bench.plugins.datasets.synthetic.labeler import clinical_efficacy, label_text
        from place_bench.plugins.datasets.synthetic.lexicon import OBSERVATIONS

        members = {}
        for i, g in enumerate(groups):
            members.setdefault(g, []).append(i)
        member_list = [np.asarray(v) for v in members.values()]
        items = expand_groups(member_list)
        gen_labels = [label_text(t) for t in generated]
        ref_labels = [label_text(t) for t in references]
        metrics, extra = {}, {"observations": list(OBSERVATIONS), "labeler": "place_bench synthetic rule labeler",
                              "reference_text": "full cleaned reference",
                              "uncertain_as_positive": self.ce_uncertain_as_positive}

        def add(prefix: str, truth: Sequence[Mapping[str, Any]], key: str) -> None:
            pred, ref = clinical_efficacy_scores(gen_labels, truth, OBSERVATIONS, self.ce_uncertain_as_positive)
            for name in CE_METRICS:
                metrics[f"{prefix}{name}"] = ci_record(lambda g, name=name: ce_metric(name, pred[items(g)],
                                                                                      ref[items(g)]),
                                                       len(member_list), self.n_resamples, seed)
                metrics[f"{prefix}{name}"]["value"] = ce_metric(name, pred, ref)
            extra[key] = clinical_efficacy(gen_labels, truth, OBSERVATIONS, self.ce_uncertain_as_positive)

        add("ce_", ref_labels, "per_observation")
        latent = read_latent_truth(Path(ctx.dataset.root))
        if latent:
            missing = [s for s in sample_ids if s not in latent]
            if missing:
                extra["latent"] = f"latent.jsonl lacks {len(missing)} test ids (e.g. {missing[0]!r}); not scored"
            else:
                add("ce_latent_", [latent[s] for s in sample_ids], "per_observation_latent")
                extra["latent"] = "latent image truth from latent.jsonl (uncertain findings count as present)"
        return metrics, extra

    def score(self, ctx: EvalContext, unit: Unit, sample_ids: Sequence[str], generated: Sequence[str],
              refs_truncated: Sequence[str], refs_full: Sequence[str]) -> tuple[dict, dict, dict]:
        """(metrics, unbounded metrics, extra) of generated texts vs both reference sets."""
        from place_bench.evaluation.nlg import NLGScorer, require_java, score_with_ci

        if "meteor" in self.nlg_metrics:
            require_java()
        groups = self._study_ids(ctx, sample_ids)
        metrics, unbounded, extra = {}, {}, {"n_studies": len(set(groups))}
        per_item = {}
        for prefix, refs in (("", refs_truncated), ("full_", refs_full)):
            scorer = NLGScorer(generated, refs, families=self.nlg_metrics)
            for name, rec in score_with_ci(scorer, self.n_resamples, unit.seed, groups, prefix).items():
                if name[len(prefix):] in UNBOUNDED:  # CIDEr can exceed 1: recorded as unbounded
                    rec = dict(rec, unbounded=True)
                    unbounded[name] = rec
                metrics[name] = rec
            if "rouge_l" in self.nlg_metrics:
                per_item[f"per_item__{prefix}rouge_l"] = scorer.rouge_items.astype(np.float64)
        if self.clinical_efficacy:
            ce, ce_extra = self._clinical_efficacy(ctx, sample_ids, generated, refs_full, groups, unit.seed)
            metrics.update(ce)
            extra["clinical_efficacy"] = ce_extra
        return metrics, unbounded, {**extra, "per_item": per_item}

    def run(self, ctx: EvalContext, units: Sequence[Unit]) -> Iterator[UnitResult]:
        task = self.for_dataset(ctx.dataset.name)
        if "meteor" in task.nlg_metrics:  # fail before any training
            from place_bench.evaluation.nlg import require_java, require_pycocoevalcap

            require_java()
            require_pycocoevalcap()
        text = task.resolved(ctx.dataset.name)
        test_set = task._dataset(ctx, task.splits["test"])
        cleaned_test = [clean_report((r["findings"] or r["report"] or "").strip(), text["cleaner"])
                        for r in test_set.rows]
        for unit in units:
            t0 = time.perf_counter()
            head, vocab, log = task.train(ctx, unit)
            sample_ids, gen_ids = task.generate(ctx, head, test_set, task.beam_size, text["max_length"])
            if sample_ids != [r["sample_id"] for r in test_set.rows]:
                raise RuntimeError("rrg: test items came back out of order")
            generated = [vocab.decode(g) for g in gen_ids]
            refs_trunc = [vocab.decode(vocab.encode(c, text["max_length"])[1:]) for c in cleaned_test]
            refs_full = [" ".join(c.split()) for c in cleaned_test]
            metrics, unbounded, extra = task.score(ctx, unit, sample_ids, generated, refs_trunc, refs_full)
            per_item = extra.pop("per_item")
            studies = task._study_ids(ctx, sample_ids)
            out_dir = task._unit_dir(ctx, unit)
            out_dir.mkdir(parents=True, exist_ok=True)
            samples = out_dir / "samples.jsonl"
            with open(samples, "w", encoding="utf-8") as f:
                for sid, study, g, rt, rf in zip(sample_ids, studies, generated, refs_trunc, refs_full):
                    f.write(json.dumps({"id": sid, "study_id": study, "generated": g, "reference": rt,
                                        "reference_full": rf}, ensure_ascii=False) + "\n")
            extra.update(log, unbounded_metrics=unbounded, deviations=DEVIATIONS,
                         decode={"beam_size": task.beam_size, "val_beam_size": task.val_beam_size,
                                 "max_new_tokens": text["max_length"], "trigram_penalty": task.trigram_penalty,
                                 "length_penalty": None},
                         references={"primary": "cleaned, vocabulary-mapped, truncated to max_length - 1 words "
                                                "(R2Gen, decoded from ids)", "full_": "cleaned, full length"},
                         n_resamples=task.n_resamples, seconds=round(time.perf_counter() - t0, 3),
                         dataset_overrides=self.by_dataset.get(ctx.dataset.name))
            del head
            ctx.log(f"rrg {ctx.dataset.name} seed={unit.seed}: {log['iters']} iters, best val bleu4="
                    f"{log['best_val_bleu4']} at epoch {log['best_epoch']}, test bleu4={metrics['bleu4']['value']:.4f}")
            yield UnitResult(unit, metrics, "bleu4", n_test=len(sample_ids), extra=extra,
                             files={"samples": str(samples)}, item_ids=list(sample_ids), predictions=per_item)


@hookimpl
def place_bench_register(registrar):
    registrar.add("task", "rrg", ReportGenerationTask)
