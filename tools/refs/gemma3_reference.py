"""A from-scratch Gemma 3 forward pass in float64 numpy, written from the
architecture description. make_models.py checks the Hugging Face outputs of
tests/data/models/*/ref/ against it, verify_refs.py re-checks the committed
files with it (numpy only, no torch), and it is the plainest statement of the
math the engine implements; every step names its shapes.

Weights come as a dict name -> float64 array in Hugging Face's own naming, with
the text prefix (e.g. "model." or "model.language_model.") and the vision
prefix (e.g. "model.vision_tower.") already stripped by the caller.
"""

import math

import numpy as np

f64 = np.float64


def rms_norm(x, w, eps):
    """Gemma RMSNorm: x / rms(x) * (1 + w). x: [..., d], w: [d]."""
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * (1.0 + w)


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def softmax(s):
    s = s - s.max(-1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(-1, keepdims=True)


def rope(x, pos, theta, linear_factor):
    """NeoX-style rotary embedding on halves. x: [T, heads, D], pos: [T]."""
    d = x.shape[-1]
    inv_freq = 1.0 / theta ** (np.arange(0, d, 2, dtype=f64) / d)  # [D/2]
    ang = (pos.astype(f64)[:, None] / linear_factor) * inv_freq[None, :]  # [T, D/2]
    cos = np.concatenate([np.cos(ang), np.cos(ang)], -1)[:, None, :]  # [T, 1, D]
    sin = np.concatenate([np.sin(ang), np.sin(ang)], -1)[:, None, :]
    x1, x2 = x[..., : d // 2], x[..., d // 2:]
    return x * cos + np.concatenate([-x2, x1], -1) * sin


def text_forward(w, cfg, embeds, extra_allowed=None, window_delta=0):
    """Runs the decoder on input embeddings.

    w: text weights (keys like "layers.0.self_attn.q_proj.weight", "norm.weight",
       "embed_tokens.weight"), float64.
    cfg: dict with n_layers, n_heads, n_kv_heads, head_dim, eps,
       query_pre_attn_scalar, sliding_window, layer_types (list of
       "sliding_attention"/"full_attention"), rope_local (theta, factor),
       rope_global (theta, factor), final_logit_softcapping (None or float).
    embeds: [T, hidden] already scaled by sqrt(hidden) (image rows unscaled).
    extra_allowed: optional bool [T, T]; OR-ed into every layer's mask (the
       bidirectional image block).
    window_delta: test hook; the window used is sliding_window + window_delta.
    Returns logits [T, vocab].
    """
    t = embeds.shape[0]
    h_, kv, d = cfg["n_heads"], cfg["n_kv_heads"], cfg["head_dim"]
    eps = cfg["eps"]
    pos = np.arange(t)
    q_idx, k_idx = pos[:, None], pos[None, :]
    causal = k_idx <= q_idx  # [T, T]
    window = cfg["sliding_window"] + window_delta
    local = causal & (q_idx - k_idx < window)  # the last `window` tokens, self included
    if extra_allowed is not None:
        causal = causal | extra_allowed
        local = local | extra_allowed
    scale = cfg["query_pre_attn_scalar"] ** -0.5
    x = embeds.astype(f64)  # [T, hidden]
    for i in range(cfg["n_layers"]):
        p = "layers.%d." % i
        sliding = cfg["layer_types"][i] == "sliding_attention"
        theta, factor = cfg["rope_local"] if sliding else cfg["rope_global"]
        hn = rms_norm(x, w[p + "input_layernorm.weight"], eps)  # [T, hidden]
        q = (hn @ w[p + "self_attn.q_proj.weight"].T).reshape(t, h_, d)  # [T, H, D]
        k = (hn @ w[p + "self_attn.k_proj.weight"].T).reshape(t, kv, d)  # [T, KV, D]
        v = (hn @ w[p + "self_attn.v_proj.weight"].T).reshape(t, kv, d)  # [T, KV, D]
        q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
        k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q = rope(q, pos, theta, factor)
        k = rope(k, pos, theta, factor)
        k = np.repeat(k, h_ // kv, axis=1)  # [T, H, D]; head j uses kv head j // (H/KV)
        v = np.repeat(v, h_ // kv, axis=1)
        s = np.einsum("thd,shd->hts", q, k) * scale  # [H, T, T]
        s = np.where((local if sliding else causal)[None], s, -np.inf)
        o = np.einsum("hts,shd->thd", softmax(s), v).reshape(t, h_ * d)  # [T, H*D]
        o = o @ w[p + "self_attn.o_proj.weight"].T  # [T, hidden]
        x = x + rms_norm(o, w[p + "post_attention_layernorm.weight"], eps)
        hn = rms_norm(x, w[p + "pre_feedforward_layernorm.weight"], eps)
        g = gelu_tanh(hn @ w[p + "mlp.gate_proj.weight"].T)  # [T, I]
        u = hn @ w[p + "mlp.up_proj.weight"].T  # [T, I]
        m = (g * u) @ w[p + "mlp.down_proj.weight"].T  # [T, hidden]
        x = x + rms_norm(m, w[p + "post_feedforward_layernorm.weight"], eps)
    x = rms_norm(x, w["norm.weight"], eps)
    logits = x @ w["embed_tokens.weight"].T  # [T, vocab] (tied head)
    cap = cfg.get("final_logit_softcapping")
    if cap:
        logits = np.tanh(logits / cap) * cap
    return logits


def embed_tokens(w, hidden, ids):
    """Token embeddings scaled by sqrt(hidden), the scale rounded to float32 as
    transformers holds it."""
    scale = float(np.float32(math.sqrt(hidden)))
    return w["embed_tokens.weight"][np.asarray(ids)] * scale  # [T, hidden]


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def vision_forward(vw, pw, vcfg, pixel_values, mm_tokens):
    """SigLIP tower + Gemma 3 projector.

    vw: vision weights (keys like "embeddings.patch_embedding.weight",
        "encoder.layers.0.self_attn.q_proj.weight", "post_layernorm.weight").
    pw: projector weights ("mm_input_projection_weight" [v_hidden, hidden],
        "mm_soft_emb_norm.weight" [v_hidden]).
    vcfg: dict with patch_size, n_layers, n_heads, eps.
    pixel_values: [3, S, S] normalized image.
    Returns image embeddings [mm_tokens, hidden].
    """
    ps = vcfg["patch_size"]
    cin, size, _ = pixel_values.shape
    n_side = size // ps
    wp = vw["embeddings.patch_embedding.weight"]  # [C, 3, ps, ps]
    c = wp.shape[0]
    # patches in row-major order, each flattened as (channel, y, x) like the conv kernel
    patches = (pixel_values.reshape(cin, n_side, ps, n_side, ps)
               .transpose(1, 3, 0, 2, 4).reshape(n_side * n_side, cin * ps * ps))
    x = patches @ wp.reshape(c, -1).T + vw["embeddings.patch_embedding.bias"]  # [P*P, C]
    x = x + vw["embeddings.position_embedding.weight"]
    n, nh = x.shape[0], vcfg["n_heads"]
    hd = c // nh
    eps = vcfg["eps"]
    for i in range(vcfg["n_layers"]):
        p = "encoder.layers.%d." % i

        def proj(name, inp, p=p):
            return inp @ vw[p + name + ".weight"].T + vw[p + name + ".bias"]

        hn = layer_norm(x, vw[p + "layer_norm1.weight"], vw[p + "layer_norm1.bias"], eps)
        q = proj("self_attn.q_proj", hn).reshape(n, nh, hd)
        k = proj("self_attn.k_proj", hn).reshape(n, nh, hd)
        v = proj("self_attn.v_proj", hn).reshape(n, nh, hd)
        a = softmax(np.einsum("thd,shd->hts", q, k) * hd ** -0.5)  # no mask
        o = np.einsum("hts,shd->thd", a, v).reshape(n, c)
        x = x + proj("self_attn.out_proj", o)
        hn = layer_norm(x, vw[p + "layer_norm2.weight"], vw[p + "layer_norm2.bias"], eps)
        x = x + proj("mlp.fc2", gelu_tanh(proj("mlp.fc1", hn)))
    x = layer_norm(x, vw["post_layernorm.weight"], vw["post_layernorm.bias"], eps)  # [P*P, C]
    side = int(round(math.sqrt(mm_tokens)))
    k = n_side // side
    grid = x.reshape(side, k, side, k, c)  # patch (row, col) = (r*k + i, s*k + j)
    pooled = grid.mean(axis=(1, 3)).reshape(side * side, c)  # [mm_tokens, C], row-major
    normed = rms_norm(pooled, pw["mm_soft_emb_norm.weight"], eps)
    return normed @ pw["mm_input_projection_weight"]  # [mm_tokens, hidden]


def image_block_mask(token_type_ids):
    """[T, T] bool: True where query and key are image tokens of the same image."""
    is_img = np.asarray(token_type_ids).astype(bool)
    starts = is_img & ~np.concatenate([[False], is_img[:-1]])
    group = np.where(is_img, np.cumsum(starts) - 1, -1)
    return is_img[:, None] & is_img[None, :] & (group[:, None] == group[None, :])
