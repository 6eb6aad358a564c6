"""Text encoders from transformers (BERT family), from a local folder or a config."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from place_bench.data.report_text import sentence_char_spans
from place_bench.hookspecs import hookimpl
from place_bench.model.outputs import TextBatch, TextFeatures
from place_bench.model.weights import PartialLoadError, require_local_path

WORD_POOLINGS = ("mean", "sum", "first")


class HFTextEncoder(nn.Module):
    """A transformers encoder returning :class:`TextFeatures` for reports.

    Exactly one of ``model_path`` and ``config`` is given:

    :param model_path: a local folder with ``config.json``, the weights and (unless
        ``tokenizer_path`` is given) the tokenizer, as ``save_pretrained`` writes it.
        Hub ids are not fetched.
    :param config: keyword arguments of a transformers config for a randomly
        initialised model, e.g. ``dict(model_type="bert", hidden_size=64,
        num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)``;
        ``tokenizer_path`` is then required.
    :param tokenizer_path: a tokenizer folder, or a WordPiece ``vocab.txt`` file.
    :param num_layers: keep only the first N transformer layers (MGCA uses 6).
    :param max_length: tokens per report, special tokens included; longer reports
        are truncated: sentences with no token left are dropped, a sentence cut in
        the middle keeps its remaining words.
    :param word_pooling: how sub-word features merge into a word: mean, sum or first.
    :param word_layers: word features are the sum of the last N layers' hidden
        states (GLoRIA uses 4); token features and the CLS embedding stay the last layer's.
    :param lowercase: lower-case reports before tokenizing (for cased vocabularies
        this is usually wrong; uncased tokenizers lower-case themselves).
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        config: dict | None = None,
        tokenizer_path: str | os.PathLike | None = None,
        num_layers: int | None = None,
        max_length: int = 128,
        word_pooling: str = "mean",
        return_cls_attention: bool = True,
        lowercase: bool = False,
        word_layers: int = 1,
    ):
        super().__init__()
        from transformers import AutoConfig, AutoModel

        if (model_path is None) == (config is None):
            raise ValueError("text_encoder: give exactly one of model_path (a local folder) and config")
        if word_pooling not in WORD_POOLINGS:
            raise ValueError(f"text_encoder.word_pooling: {word_pooling!r} is not one of {WORD_POOLINGS}")
        self.max_length = int(max_length)
        self.word_pooling = word_pooling
        self.return_cls_attention = return_cls_attention
        self.lowercase = lowercase
        if word_layers < 1:
            raise ValueError(f"text_encoder.word_layers must be >= 1, got {word_layers}")
        self.word_layers = int(word_layers)
        attn = "eager" if return_cls_attention else "sdpa"
        if model_path is not None:
            folder = require_local_path(
                model_path, "text_encoder.model_path", "a folder holding config.json, the weights and the tokenizer"
            )
            extra = {"add_pooling_layer": False} if _is_bert_like(folder) else {}
            with _quiet_transformers():  # missing keys are checked below; the pooler is dropped on purpose
                self.model, info = AutoModel.from_pretrained(
                    str(folder), local_files_only=True, attn_implementation=attn, output_loading_info=True, **extra
                )
            if info.get("missing_keys"):
                missing = sorted(info["missing_keys"])
                raise PartialLoadError(
                    f"refusing a partial load of the text encoder from '{folder}': "
                    f"{len(missing)} missing keys ({', '.join(missing[:5])})"
                )
            tokenizer_path = tokenizer_path or folder
        else:
            if tokenizer_path is None:
                raise ValueError("text_encoder.tokenizer_path is required when the model is built from config")
            cfg = dict(config)
            model_type = cfg.pop("model_type", "bert")
            hf_config = AutoConfig.for_model(model_type, **cfg)
            hf_config._attn_implementation = attn
            # No pooler: nothing uses it, and unused parameters break DDP.
            extra = {"add_pooling_layer": False} if model_type == "bert" else {}
            self.model = AutoModel.from_config(hf_config, attn_implementation=attn, **extra)
        self.tokenizer = _load_tokenizer(tokenizer_path)
        if num_layers is not None:
            self._keep_first_layers(int(num_layers))
        self.feature_dim = int(self.model.config.hidden_size)

    def _keep_first_layers(self, n: int) -> None:
        encoder = getattr(self.model, "encoder", None)
        layers = getattr(encoder, "layer", None)
        if not isinstance(layers, nn.ModuleList):
            raise ValueError("text_encoder.num_layers: this model has no encoder.layer list to cut")
        if not 1 <= n <= len(layers):
            raise ValueError(f"text_encoder.num_layers: {n} is outside 1..{len(layers)}")
        encoder.layer = layers[:n]
        self.model.config.num_hidden_layers = n

    # -- tokenization -------------------------------------------------------------------
    def tokenize(self, reports: Sequence[str]) -> TextBatch:
        """Tokenize reports, keeping for each token its word and for each word its sentence."""
        texts = [r.lower() if self.lowercase else r for r in reports]
        enc = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_offsets_mapping=True,
            return_tensors="pt",
        )
        batch_size, length = enc["input_ids"].shape
        word_ids = torch.full((batch_size, length), -1, dtype=torch.long)
        all_words: list[list[str]] = []
        all_sentences: list[list[str]] = []
        word_sentence_rows: list[list[int]] = []
        for b, text in enumerate(texts):
            spans = sentence_char_spans(text)
            offsets = enc["offset_mapping"][b].tolist()
            first_token: dict[int, int] = {}  # tokenizer word id -> index of its word here
            word_chars: list[list[int]] = []  # [start, end) characters of each word
            for t, wid in enumerate(enc.word_ids(b)):
                if wid is None:
                    continue
                start, end = offsets[t]
                if wid not in first_token:
                    first_token[wid] = len(word_chars)
                    word_chars.append([start, end])
                word_chars[first_token[wid]][1] = end
                word_ids[b, t] = first_token[wid]
            in_text = [_sentence_of(start, spans) for start, _ in word_chars]
            # The splitter covers every non-blank character, so -1 is rare (a
            # tokenizer that normalises offsets); such a word joins the sentence before it.
            for i, s in enumerate(in_text):
                if s < 0:
                    in_text[i] = in_text[i - 1] if i > 0 else next((x for x in in_text if x >= 0), 0)
            kept = sorted(set(in_text))
            renumber = {s: i for i, s in enumerate(kept)}
            all_words.append([text[a:z] for a, z in word_chars])
            # A sentence cut by truncation keeps only the text of its kept words.
            last_char = {s: max(z for (_, z), w in zip(word_chars, in_text) if w == s) for s in kept}
            all_sentences.append([text[spans[s][0]:min(spans[s][1], last_char[s])] for s in kept])
            word_sentence_rows.append([renumber[s] for s in in_text])
        n_words = max(1, max(len(w) for w in all_words))
        word_to_sentence = torch.full((batch_size, n_words), -1, dtype=torch.long)
        for b, row in enumerate(word_sentence_rows):
            word_to_sentence[b, : len(row)] = torch.tensor(row, dtype=torch.long)
        return TextBatch(
            input_ids=enc["input_ids"],
            attention_mask=enc["attention_mask"].bool(),
            word_ids=word_ids,
            word_to_sentence=word_to_sentence,
            words=all_words,
            sentences=all_sentences,
        )

    # -- forward ---------------------------------------------------------------------------
    def forward(self, reports: TextBatch | Sequence[str]) -> TextFeatures:
        batch = reports if isinstance(reports, TextBatch) else self.tokenize(reports)
        device = next(self.model.parameters()).device
        batch = batch.to(device)
        out = self.model(
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask.long(),
            output_attentions=self.return_cls_attention,
            output_hidden_states=self.word_layers > 1,
            return_dict=True,
        )
        tokens = out.last_hidden_state
        mask = batch.attention_mask
        word_source = tokens
        if self.word_layers > 1:
            layers = out.hidden_states[1:]  # [0] is the embedding layer
            if self.word_layers > len(layers):
                raise ValueError(f"text_encoder.word_layers={self.word_layers} but the model has {len(layers)} layers")
            word_source = torch.stack(layers[-self.word_layers:]).sum(0)
        word_features, word_mask = merge_subwords(word_source, batch.word_ids, batch.word_to_sentence.shape[1], self.word_pooling)
        spans, sentence_mask = sentence_spans(batch.word_to_sentence)
        cls_attention = None
        if self.return_cls_attention and out.attentions:
            cls_attention = out.attentions[-1][:, :, 0, :] * mask[:, None, :]
        return TextFeatures(
            cls_embedding=tokens[:, 0],
            token_features=tokens * mask[..., None],
            token_mask=mask,
            word_features=word_features,
            word_mask=word_mask,
            sentence_spans=spans,
            sentence_mask=sentence_mask,
            cls_attention=cls_attention,
            batch=batch,
        )


def merge_subwords(
    tokens: torch.Tensor, word_ids: torch.Tensor, n_words: int, pooling: str = "mean"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge token features (B, T, D) into word features (B, W, D) by ``word_ids`` (B, T).

    Tokens with word id -1 are ignored. Returns the word features (zero at padding)
    and the word mask (B, W).
    """
    b, t, d = tokens.shape
    valid = word_ids >= 0
    slot = torch.where(valid, word_ids, torch.full_like(word_ids, n_words))  # n_words = trash slot
    flat = (slot + torch.arange(b, device=tokens.device)[:, None] * (n_words + 1)).reshape(-1)
    if pooling == "first":
        is_first = valid & torch.cat([torch.ones_like(word_ids[:, :1], dtype=torch.bool), word_ids[:, 1:] != word_ids[:, :-1]], 1)
        weights = is_first.to(tokens.dtype)
    else:
        weights = valid.to(tokens.dtype)
    summed = tokens.new_zeros(b * (n_words + 1), d).index_add_(0, flat, (tokens * weights[..., None]).reshape(-1, d))
    counts = tokens.new_zeros(b * (n_words + 1)).index_add_(0, flat, weights.reshape(-1))
    summed = summed.view(b, n_words + 1, d)[:, :n_words]
    counts = counts.view(b, n_words + 1)[:, :n_words]
    word_mask = counts > 0
    if pooling == "mean":
        summed = summed / counts.clamp(min=1)[..., None]
    return summed, word_mask


def sentence_spans(word_to_sentence: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[start, end) word spans (B, S, 2) and mask (B, S) from each word's sentence (B, W).

    Sentences are numbered 0..S-1 in reading order and their words are contiguous.
    """
    b = word_to_sentence.shape[0]
    n_sentences = max(1, int(word_to_sentence.max().item()) + 1) if word_to_sentence.numel() else 1
    spans = torch.zeros(b, n_sentences, 2, dtype=torch.long, device=word_to_sentence.device)
    mask = torch.zeros(b, n_sentences, dtype=torch.bool, device=word_to_sentence.device)
    positions = torch.arange(word_to_sentence.shape[1], device=word_to_sentence.device)
    for s in range(n_sentences):
        member = word_to_sentence == s
        present = member.any(1)
        big = word_to_sentence.shape[1]
        start = torch.where(member, positions, torch.full_like(positions, big)).min(1).values
        end = torch.where(member, positions + 1, torch.zeros_like(positions)).max(1).values
        spans[:, s, 0] = torch.where(present, start, 0)
        spans[:, s, 1] = torch.where(present, end, 0)
        mask[:, s] = present
    return spans, mask


def _sentence_of(char: int, spans: list[tuple[int, int]]) -> int:
    for i, (start, end) in enumerate(spans):
        if start <= char < end:
            return i
    return -1


@contextlib.contextmanager
def _quiet_transformers():
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _is_bert_like(folder: Path) -> bool:
    import json

    try:
        return json.loads((folder / "config.json").read_text()).get("model_type") == "bert"
    except (OSError, ValueError):
        return False


def _load_tokenizer(path: str | os.PathLike) -> Any:
    from transformers import AutoTokenizer, BertTokenizerFast

    p = require_local_path(path, "text_encoder.tokenizer_path", "a tokenizer folder or a WordPiece vocab.txt")
    if p.is_file():
        return BertTokenizerFast(vocab_file=str(p))
    tokenizer = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    if not tokenizer.is_fast:
        raise ValueError(f"text_encoder.tokenizer_path: '{p}' gives a slow tokenizer; word offsets need a fast one")
    return tokenizer


@hookimpl
def place_bench_register(registrar):
    registrar.add("text_encoder", "hf_text", HFTextEncoder)
