"""The demo model's architecture: Gemma 3 (text only), scaled down.

Size budget: <= 8 MB for the whole model folder, weights in bf16 (Gemma 3's
own checkpoint dtype, so the engine's bf16 path is the one exercised).
  embedding (tied LM head)     4096 x 192                     =   786,432
  per layer  q 256x192, k 128x192, v 128x192, o 192x256      =   147,456
             gate/up 512x192 each, down 192x512              =   294,912
             4 RMSNorms of 192, q/k norms of 64             =       896
  6 layers                                                   = 2,659,584
  final norm                                                 =       192
  total                                                      = 3,446,208 (6.9 MB bf16)
Choices that mirror the real family so the engine's general paths are tested:
  - q_dim (4 x 64 = 256) != hidden (192), as in every Gemma 3 size;
  - GQA with 2 KV heads for 4 query heads (group 2, more than one KV head);
  - query_pre_attn_scalar = hidden / heads = 48 != head_dim, as in 27B;
  - 5 sliding layers (window 128) then 1 global layer;
  - RoPE theta 10k on sliding layers, 1M with linear x8 on the global layer
    (the 4B/12B/27B settings);
  - tied embeddings, scaled by sqrt(hidden) at the input.
"""

VOCAB_SIZE = 4096
HIDDEN = 192
LAYERS = 6
LAYER_TYPES = ["sliding_attention"] * 5 + ["full_attention"]

ARCH = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=HIDDEN,
    intermediate_size=512,
    num_hidden_layers=LAYERS,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    hidden_activation="gelu_pytorch_tanh",
    max_position_embeddings=2048,
    initializer_range=0.02,
    rms_norm_eps=1e-6,
    pad_token_id=0,
    bos_token_id=2,
    eos_token_id=[1, 106],
    tie_word_embeddings=True,
    attention_bias=False,
    attention_dropout=0.0,
    query_pre_attn_scalar=48,
    sliding_window=128,
    layer_types=LAYER_TYPES,
    final_logit_softcapping=None,
    attn_logit_softcapping=None,
    use_cache=True,
)
ROPE_GLOBAL = {"rope_type": "linear", "factor": 8.0, "rope_theta": 1000000.0}
ROPE_LOCAL = {"rope_type": "default", "rope_theta": 10000.0}


def build_config():
    """A transformers Gemma3TextConfig for the demo model (either config dialect)."""
    import inspect

    from transformers import Gemma3TextConfig

    params = inspect.signature(Gemma3TextConfig.__init__).parameters
    if "rope_parameters" in params:  # transformers >= 5
        cfg = Gemma3TextConfig(**ARCH, rope_parameters={"full_attention": dict(ROPE_GLOBAL),
                                                        "sliding_attention": dict(ROPE_LOCAL)})
    else:
        cfg = Gemma3TextConfig(**ARCH, rope_theta=ROPE_GLOBAL["rope_theta"],
                               rope_local_base_freq=ROPE_LOCAL["rope_theta"],
                               rope_scaling={"rope_type": "linear", "factor": 8.0})
    cfg.architectures = ["Gemma3ForCausalLM"]
    return cfg


def check_config_json(d):
    """Asserts that a saved config.json dict holds the intended architecture."""
    for k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
              "num_key_value_heads", "head_dim", "vocab_size", "sliding_window",
              "query_pre_attn_scalar", "layer_types", "tie_word_embeddings"):
        assert d.get(k) == ARCH[k], (k, d.get(k), ARCH[k])
    assert d.get("architectures") == ["Gemma3ForCausalLM"], d.get("architectures")
    assert d.get("model_type") == "gemma3_text", d.get("model_type")
    if "rope_parameters" in d:
        rp = d["rope_parameters"]
        g, l = rp["full_attention"], rp["sliding_attention"]
        assert g["rope_theta"] == 1e6 and g["rope_type"] == "linear" and g["factor"] == 8.0, rp
        assert l["rope_theta"] == 1e4 and l["rope_type"] == "default", rp
    else:
        assert d["rope_theta"] == 1e6 and d["rope_local_base_freq"] == 1e4, d
        assert d["rope_scaling"]["factor"] == 8.0, d


def count_params():
    h, q, kv, inter = HIDDEN, 4 * 64, 2 * 64, 512
    per_layer = q * h + 2 * kv * h + h * q + 3 * inter * h + 4 * h + 2 * 64
    return VOCAB_SIZE * h + LAYERS * per_layer + h


if __name__ == "__main__":
    print(count_params(), "parameters,", 2 * count_params() / 1e6, "MB in bf16")
