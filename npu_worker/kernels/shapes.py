# The GEMM shapes of Gemma 3's text decoder layers, per model size: each
# projection y [tokens, out] = x [tokens, in] W^T with W [out, in] as stored
# in the model files (so the NPU kernel's Bt operand is W itself).
#
# Sizes are those of the published Gemma 3 configs (hidden_size,
# intermediate_size, num_attention_heads, num_key_value_heads, head_dim).

MODELS = {
    #        hidden, intermediate, heads, kv_heads, head_dim
    "1b": (1152, 6912, 4, 1, 256),
    "4b": (2560, 10240, 8, 4, 256),
    "12b": (3840, 15360, 16, 8, 256),
    "27b": (5376, 21504, 32, 16, 128),
}


def gemm_shapes(model):
    """[(name, k, n)]: the layer's projections, k = in, n = out."""
    hidden, inter, heads, kv_heads, head_dim = MODELS[model]
    q, kv = heads * head_dim, kv_heads * head_dim
    shapes = [
        ("q_proj", hidden, q),
        ("kv_proj", hidden, kv),  # k_proj and v_proj share a shape
        ("o_proj", q, hidden),
        ("gate_up_proj", hidden, inter),  # gate_proj and up_proj share a shape
        ("down_proj", inter, hidden),
    ]
    # Distinct (k, n) only: 27B's q_proj and o_proj differ, 1B's do not.
    seen, out = set(), []
    for name, k, n in shapes:
        if (k, n) not in seen:
            seen.add((k, n))
            out.append((name, k, n))
    return out


if __name__ == "__main__":
    import sys

    for name, k, n in gemm_shapes(sys.argv[1] if len(sys.argv) > 1 else "1b"):
        print(name, k, n)
