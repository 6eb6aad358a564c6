"""The output contract of the encoders, which heads and objectives consume.

Shapes use B = batch, D = feature width, N = image grid cells, T = text tokens,
W = words, S = sentences. Padding positions are marked by boolean masks (True =
real); their feature values are zero and must not be relied on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch


@dataclass
class ImageFeatures:
    """What an image encoder returns for a batch of images.

    global_embedding: (B, D) float, the pooled feature (ViT: the CLS token after
        the final norm; CNN: global average pooling of the last stage).
    local_tokens: (B, N, D_local) float, one token per grid cell in row-major
        order (row y from the top, then column x from the left), N = gh * gw.
    grid_size: (gh, gw), the grid of ``local_tokens``; cell (y, x) covers input
        pixels [y*H/gh, (y+1)*H/gh) x [x*W/gw, (x+1)*W/gw).
    cls_attention: (B, heads, N) float or None: the last block's attention of the
        CLS query over the N patch tokens (a slice of a softmax over all tokens,
        so rows sum to at most 1). None for encoders without a CLS token.
    """

    global_embedding: torch.Tensor
    local_tokens: torch.Tensor
    grid_size: tuple[int, int]
    cls_attention: torch.Tensor | None = None


@dataclass
class TextBatch:
    """A tokenized batch of reports, with the word and sentence structure kept.

    input_ids, attention_mask: (B, T) long / bool.
    word_ids: (B, T) long, the index of the word each token belongs to, -1 for
        special and padding tokens. Words are the tokenizer's pre-tokenized words
        (punctuation marks are words of their own).
    word_to_sentence: (B, W) long, the sentence of each word, -1 for padding.
    words: per report, the words' text.
    sentences: per report, the sentences' text (after truncation to the tokens kept).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    word_ids: torch.Tensor
    word_to_sentence: torch.Tensor
    words: list[list[str]] = field(default_factory=list)
    sentences: list[list[str]] = field(default_factory=list)

    def to(self, device: torch.device | str) -> "TextBatch":
        return TextBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.word_ids.to(device),
            self.word_to_sentence.to(device),
            self.words,
            self.sentences,
        )


@dataclass
class TextFeatures:
    """What a text encoder returns for a :class:`TextBatch`.

    cls_embedding: (B, D) float, the first token's final hidden state.
    token_features: (B, T, D) float; token_mask: (B, T) bool.
    word_features: (B, W, D) float, sub-word features merged per word (mean by
        default); word_mask: (B, W) bool.
    sentence_spans: (B, S, 2) long, [start, end) word indices of each sentence;
        sentence_mask: (B, S) bool (S >= 1; an empty report has no True entry).
    cls_attention: (B, heads, T) float or None, the last layer's attention of the
        first token over all tokens (zero at padding).
    batch: the input batch (words, sentences, ids).
    """

    cls_embedding: torch.Tensor
    token_features: torch.Tensor
    token_mask: torch.Tensor
    word_features: torch.Tensor
    word_mask: torch.Tensor
    sentence_spans: torch.Tensor
    sentence_mask: torch.Tensor
    cls_attention: torch.Tensor | None
    batch: TextBatch


@dataclass
class PairOutputs:
    """What objectives consume: encoder features of B image-report pairs and their projections.

    image, text: the encoders' outputs (local tokens, grid, words, sentence spans,
        CLS attention: see :class:`ImageFeatures` and :class:`TextFeatures`).
    image_global, text_global: (B, d) joint-space projections of the global
        features, NOT normalized (objectives normalize as their method says).
    patch_local: (B, N, d) local projection of the image's local tokens, or None
        when the model has no ``image_local_projection``.
    word_local: (B, W, d) local projection of the word features, or None.
    images: (B, C, H, W) the normalized input images, for objectives that run the
        image encoder again (masked-patch objectives).
    encode_image: the model's image encoder as a callable ``(images, patch_mask=None)
        -> ImageFeatures``; ``patch_mask`` (B, gh, gw) bool marks grid cells to hide.
    project_local: the model's patch projection head (local tokens -> d), or None.
    """

    image: ImageFeatures
    text: TextFeatures
    image_global: torch.Tensor
    text_global: torch.Tensor
    patch_local: torch.Tensor | None = None
    word_local: torch.Tensor | None = None
    images: torch.Tensor | None = None
    encode_image: Callable[..., ImageFeatures] | None = None
    project_local: Callable[[torch.Tensor], torch.Tensor] | None = None
