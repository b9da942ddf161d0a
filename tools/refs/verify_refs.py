#!/usr/bin/env python3
"""Re-checks the committed reference data with numpy alone (no torch).

For every model of tests/data/models/ it reads config.json (transformers'
dialect) and the safetensors, runs gemma3_reference.py in float64, and checks
ref/logits.npy, ref/greedy_logits.npy (teacher-forced on prompt + greedy),
ref/greedy.npy (their argmax) and, for vision-small, ref/image_embeds.npy and
both mask variants. It then shows how far each plausible implementation slip
moves the logits, i.e. how strongly a test against these files catches it.

Usage: verify_refs.py [MODELS_DIR]   (default: tests/data/models of this repo)
Exit status 1 when a check fails.
"""

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemma3_reference as R  # noqa: E402
from safetensors_np import read_safetensors  # noqa: E402

FAILED = []


def close(label, got, want, rel=1e-4):
    """Passes when max|got - want| <= rel * max(1, max|want|) (float32 HF
    logits against a float64 recomputation: ~1e-5 observed)."""
    diff = float(np.abs(np.asarray(got, np.float64) - want).max())
    tol = rel * max(1.0, float(np.abs(want).max()))
    ok = diff <= tol
    print("  %-46s max|diff| %.2e (tol %.1e) %s" % (label, diff, tol, "ok" if ok else "FAIL"))
    if not ok:
        FAILED.append(label)
    return diff


def text_cfg(c):
    """The reference's hyper-parameters from a transformers 5 config.json."""
    rp = c["rope_parameters"]

    def rope(kind):
        r = rp[kind]
        return (r["rope_theta"], r.get("factor", 1.0) if r.get("rope_type") == "linear" else 1.0)

    return dict(n_layers=c["num_hidden_layers"], n_heads=c["num_attention_heads"],
                n_kv_heads=c["num_key_value_heads"], head_dim=c["head_dim"],
                eps=c["rms_norm_eps"], query_pre_attn_scalar=c["query_pre_attn_scalar"],
                sliding_window=c["sliding_window"], layer_types=c["layer_types"],
                rope_local=rope("sliding_attention"), rope_global=rope("full_attention"),
                final_logit_softcapping=c.get("final_logit_softcapping"))


def split(weights, prefix):
    return {k[len(prefix):]: v.astype(np.float64) for k, v in weights.items() if k.startswith(prefix)}


def slips(cfg, w):
    """(label, cfg, weights, kwargs) for implementation slips worth catching."""
    out = [("sliding window one shorter", cfg, w, dict(window_delta=-1)),
           ("sliding window one longer", cfg, w, dict(window_delta=1))]
    if cfg["rope_global"][1] != 1.0:
        out.append(("global rope scaling ignored",
                    dict(cfg, rope_global=(cfg["rope_global"][0], 1.0)), w, {}))
    out.append(("local/global rope theta swapped",
                dict(cfg, rope_local=(cfg["rope_global"][0], cfg["rope_local"][1]),
                     rope_global=(cfg["rope_local"][0], cfg["rope_global"][1])), w, {}))
    if cfg["query_pre_attn_scalar"] != cfg["head_dim"]:
        out.append(("scale 1/sqrt(head_dim)", dict(cfg, query_pre_attn_scalar=cfg["head_dim"]), w, {}))
    if cfg["final_logit_softcapping"]:
        out.append(("no final softcapping", dict(cfg, final_logit_softcapping=None), w, {}))
    out.append(("RMSNorm x*w instead of x*(1+w)", cfg,
                {k: (v - 1.0 if k.endswith("norm.weight") else v) for k, v in w.items()}, {}))
    out.append(("no q/k norm", cfg,
                {k: (np.full_like(v, 0.0) if k.endswith(("q_norm.weight", "k_norm.weight")) else v)
                 for k, v in w.items()}, {}))
    out.append(("all layers global", dict(cfg, layer_types=["full_attention"] * cfg["n_layers"]),
                w, {}))
    return out


def check_text(folder, name):
    c = json.load(open(os.path.join(folder, "config.json")))
    cfg = text_cfg(c)
    w = split(read_safetensors(folder), "model.")
    ref = os.path.join(folder, "ref")
    prompt = np.load(os.path.join(ref, "prompt_ids.npy"))
    greedy = np.load(os.path.join(ref, "greedy.npy"))
    full = np.concatenate([prompt, greedy])
    lg = R.text_forward(w, cfg, R.embed_tokens(w, c["hidden_size"], full))
    n = len(prompt)
    close("logits.npy", np.load(os.path.join(ref, "logits.npy")), lg[:n])
    close("greedy_logits.npy (teacher-forced)", np.load(os.path.join(ref, "greedy_logits.npy")),
          lg[n - 1: n - 1 + len(greedy)])
    am_ok = np.array_equal(lg[n - 1: n - 1 + len(greedy)].argmax(-1), greedy)
    print("  %-46s %s" % ("greedy.npy == argmax", "ok" if am_ok else "FAIL"))
    if not am_ok:
        FAILED.append(name + " greedy")
    base = lg[:n]
    print("  what each slip changes (max |d logits| over the prompt):")
    for label, cfg2, w2, kw in slips(cfg, w):
        v = R.text_forward(w2, cfg2, R.embed_tokens(w2, c["hidden_size"], prompt), **kw)
        flips = int((v.argmax(-1) != base.argmax(-1)).sum())
        print("    %-40s %8.3f   argmax changes at %d/%d positions"
              % (label, np.abs(v - base).max(), flips, n))


def check_vision(folder, name):
    c = json.load(open(os.path.join(folder, "config.json")))
    tc, vc = c["text_config"], c["vision_config"]
    cfg = text_cfg(tc)
    allw = read_safetensors(folder)
    w = split(allw, "language_model.model.")
    vw = split(allw, "vision_tower.")
    pw = split(allw, "multi_modal_projector.")
    ref = os.path.join(folder, "ref")
    pv = np.load(os.path.join(ref, "pixel_values.npy")).astype(np.float64)
    img = R.vision_forward(vw, pw, dict(patch_size=vc["patch_size"], n_layers=vc["num_hidden_layers"],
                                        n_heads=vc["num_attention_heads"], eps=vc["layer_norm_eps"]),
                           pv, c["mm_tokens_per_image"])
    close("image_embeds.npy", np.load(os.path.join(ref, "image_embeds.npy")), img)
    prompt = np.load(os.path.join(ref, "prompt_ids.npy"))
    tt = np.load(os.path.join(ref, "token_type_ids.npy"))
    greedy = np.load(os.path.join(ref, "greedy.npy"))
    full = np.concatenate([prompt, greedy])
    tt_full = np.concatenate([tt, np.zeros(len(greedy), tt.dtype)])
    emb = R.embed_tokens(w, tc["hidden_size"], full)
    emb[np.flatnonzero(tt_full)] = img
    n = len(prompt)
    lg = R.text_forward(w, cfg, emb, extra_allowed=R.image_block_mask(tt_full))
    close("logits.npy (image block bidirectional)", np.load(os.path.join(ref, "logits.npy")), lg[:n])
    causal = R.text_forward(w, cfg, emb[:n])
    close("logits_without_token_type_ids.npy (causal)",
          np.load(os.path.join(ref, "logits_without_token_type_ids.npy")), causal)
    close("greedy_logits.npy (teacher-forced)", np.load(os.path.join(ref, "greedy_logits.npy")),
          lg[n - 1: n - 1 + len(greedy)])
    am_ok = np.array_equal(lg[n - 1: n - 1 + len(greedy)].argmax(-1), greedy)
    print("  %-46s %s" % ("greedy.npy == argmax", "ok" if am_ok else "FAIL"))
    if not am_ok:
        FAILED.append(name + " greedy")
    print("  what each slip changes (max |d logits| over the prompt):")
    emb_p = emb[:n]
    mask = R.image_block_mask(tt)
    base = lg[:n]
    variants = [("causal mask over the image block", causal)]
    for label, cfg2, w2, kw in slips(cfg, w):
        e2 = R.embed_tokens(w2, tc["hidden_size"], prompt)
        e2[np.flatnonzero(tt)] = img
        variants.append((label, R.text_forward(w2, cfg2, e2, extra_allowed=mask, **kw)))
    e3 = emb_p.copy()
    e3[np.flatnonzero(tt)] *= np.float32(np.sqrt(tc["hidden_size"]))
    variants.append(("image embeddings scaled by sqrt(hidden)",
                     R.text_forward(w, cfg, e3, extra_allowed=mask)))
    for label, v in variants:
        flips = int((v.argmax(-1) != base.argmax(-1)).sum())
        print("    %-40s %8.3f   argmax changes at %d/%d positions"
              % (label, np.abs(v - base).max(), flips, n))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "tests", "data", "models")
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not os.path.isfile(os.path.join(folder, "ref", "ref.json")):
            continue
        print(name)
        arch = json.load(open(os.path.join(folder, "config.json")))["architectures"][0]
        if arch == "Gemma3ForConditionalGeneration":
            check_vision(folder, name)
        else:
            check_text(folder, name)
    print("%d failure(s)" % len(FAILED))
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()
