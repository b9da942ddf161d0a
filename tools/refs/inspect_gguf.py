#!/usr/bin/env python3
"""Describes the GGUF files llama.cpp's converter wrote for the tiny models and
checks every tensor against the Hugging Face safetensors it came from.

Needs numpy and llama.cpp's gguf-py (pass the llama.cpp source tree). For each
GGUF tensor it finds the Hugging Face tensor, dequantizes the GGUF data and
reports which relation holds: identical, identical after adding 1 (the Gemma
RMSNorm convention), identical after a transpose, or the llama-style Q/K row
permutation; for quantized tensors it compares with gguf-py's own quantization
of the Hugging Face values. Writes <gguf>.json beside each file (or to --out).

Usage: inspect_gguf.py --llama-cpp DIR --hf MODEL_DIR [--hf-extra DIR] FILE.gguf...
"""

import argparse
import json
import os
import re
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_np import read_safetensors  # noqa: E402


TEXT_MAP = [
    (r"token_embd\.weight", "embed_tokens.weight"),
    (r"output_norm\.weight", "norm.weight"),
    (r"blk\.(\d+)\.attn_norm\.weight", r"layers.\1.input_layernorm.weight"),
    (r"blk\.(\d+)\.attn_q\.weight", r"layers.\1.self_attn.q_proj.weight"),
    (r"blk\.(\d+)\.attn_k\.weight", r"layers.\1.self_attn.k_proj.weight"),
    (r"blk\.(\d+)\.attn_v\.weight", r"layers.\1.self_attn.v_proj.weight"),
    (r"blk\.(\d+)\.attn_q_norm\.weight", r"layers.\1.self_attn.q_norm.weight"),
    (r"blk\.(\d+)\.attn_k_norm\.weight", r"layers.\1.self_attn.k_norm.weight"),
    (r"blk\.(\d+)\.attn_output\.weight", r"layers.\1.self_attn.o_proj.weight"),
    (r"blk\.(\d+)\.post_attention_norm\.weight", r"layers.\1.post_attention_layernorm.weight"),
    (r"blk\.(\d+)\.ffn_norm\.weight", r"layers.\1.pre_feedforward_layernorm.weight"),
    (r"blk\.(\d+)\.ffn_gate\.weight", r"layers.\1.mlp.gate_proj.weight"),
    (r"blk\.(\d+)\.ffn_up\.weight", r"layers.\1.mlp.up_proj.weight"),
    (r"blk\.(\d+)\.ffn_down\.weight", r"layers.\1.mlp.down_proj.weight"),
    (r"blk\.(\d+)\.post_ffw_norm\.weight", r"layers.\1.post_feedforward_layernorm.weight"),
]
VISION_MAP = [
    (r"v\.patch_embd\.(weight|bias)", r"embeddings.patch_embedding.\1"),
    (r"v\.position_embd\.weight", "embeddings.position_embedding.weight"),
    (r"v\.blk\.(\d+)\.ln1\.(weight|bias)", r"encoder.layers.\1.layer_norm1.\2"),
    (r"v\.blk\.(\d+)\.ln2\.(weight|bias)", r"encoder.layers.\1.layer_norm2.\2"),
    (r"v\.blk\.(\d+)\.attn_q\.(weight|bias)", r"encoder.layers.\1.self_attn.q_proj.\2"),
    (r"v\.blk\.(\d+)\.attn_k\.(weight|bias)", r"encoder.layers.\1.self_attn.k_proj.\2"),
    (r"v\.blk\.(\d+)\.attn_v\.(weight|bias)", r"encoder.layers.\1.self_attn.v_proj.\2"),
    (r"v\.blk\.(\d+)\.attn_out\.(weight|bias)", r"encoder.layers.\1.self_attn.out_proj.\2"),
    (r"v\.blk\.(\d+)\.ffn_up\.(weight|bias)", r"encoder.layers.\1.mlp.fc1.\2"),
    (r"v\.blk\.(\d+)\.ffn_down\.(weight|bias)", r"encoder.layers.\1.mlp.fc2.\2"),
    (r"v\.post_ln\.(weight|bias)", r"post_layernorm.\1"),
    (r"mm\.soft_emb_norm\.weight", "mm_soft_emb_norm.weight"),
    (r"mm\.input_projection\.weight", "mm_input_projection_weight"),
]


def is_vision(hf):
    return "vision_tower." in hf or "multi_modal_projector." in hf


def hf_name(gguf_name, hf_names):
    for pat, rep in TEXT_MAP + VISION_MAP:
        if re.fullmatch(pat, gguf_name):
            suffix = re.sub(pat, rep, gguf_name)
            want_vision = gguf_name.startswith(("v.", "mm."))
            hits = [n for n in hf_names if (n == suffix or n.endswith("." + suffix))
                    and is_vision(n) == want_vision]
            if len(hits) == 1:
                return hits[0]
            return None
    return None


def llama_permute(w, n_head):
    """The row permutation convert_hf_to_gguf.py applies to LLaMA-style Q/K."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def relation(g, h, n_heads):
    """How the GGUF values g relate to the Hugging Face values h."""
    if g.shape == h.shape and np.array_equal(g, h):
        return "identical"
    if g.shape == h.shape and np.array_equal(g, h + np.float32(1)):
        return "hf + 1"
    if g.shape == h.T.shape and np.array_equal(g, h.T):
        return "transposed"
    if g.ndim == 2 and g.shape == h.shape:
        for nh in n_heads:
            if h.shape[0] % (2 * nh) == 0 and np.array_equal(g, llama_permute(h, nh)):
                return "llama Q/K permutation (n_head %d)" % nh
    return None


def inspect(path, gguf, hf, out_path):
    r = gguf.GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        val = f.contents()
        if isinstance(val, list) and len(val) > 8:
            val = {"array_len": len(val), "first": val[:8], "last": val[-3:]}
        meta[k] = val
    arch = meta.get("general.architecture")
    n_heads = [meta.get("%s.attention.head_count" % arch, 0), meta.get("%s.attention.head_count_kv" % arch, 0),
               meta.get("clip.vision.attention.head_count", 0)]
    n_heads = [n for n in n_heads if n]
    tensors = []
    relations = {}
    for t in r.tensors:
        name = t.name
        shape_ne = [int(x) for x in t.shape]  # GGUF order: fastest dimension first
        row = {"name": name, "type": t.tensor_type.name, "ne": shape_ne, "n_bytes": int(t.n_bytes)}
        g = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32)
        g = g.reshape(list(reversed(shape_ne)))
        src = hf_name(name, hf.keys())
        row["hf"] = src
        if src is not None:
            h = hf[src]
            rel = relation(g, h, n_heads)
            if rel is None and t.tensor_type.name not in ("F32", "F16", "BF16"):
                for shift, label in ((0.0, "quantize(hf)"), (1.0, "quantize(hf + 1)")):
                    for cand, lab2 in ((h, ""), (h.T, " transposed")):
                        try:
                            q = gguf.quants.quantize(np.ascontiguousarray(cand + np.float32(shift)),
                                                     t.tensor_type)
                            dq = gguf.quants.dequantize(q, t.tensor_type).reshape(g.shape)
                        except Exception:  # noqa: BLE001
                            continue
                        if np.array_equal(dq, g):
                            rel = label + lab2
                            break
                    if rel:
                        break
            if rel is None and t.tensor_type.name == "F16":
                for cand, lab in ((h, "f16(hf)"), (h.T, "f16(hf) transposed")):
                    if cand.shape == g.shape and np.array_equal(cand.astype(np.float16).astype(np.float32), g):
                        rel = lab
            if rel is None:
                diff = None
                if h.shape == g.shape:
                    diff = float(np.abs(h - g).max())
                rel = "DIFFERENT (max abs diff %s)" % diff
            row["relation"] = rel
            relations.setdefault(rel, []).append(name)
        tensors.append(row)
    summary = {
        "file": os.path.basename(path),
        "bytes": os.path.getsize(path),
        "metadata": meta,
        "tensors": tensors,
        "relations": {k: (v if len(v) <= 6 else v[:6] + ["... %d in all" % len(v)])
                      for k, v in relations.items()},
        "unmatched": [t["name"] for t in tensors if t["hf"] is None],
    }
    with open(out_path, "w") as f:
        json.dump(summary, f, indent=1, default=str, ensure_ascii=False)
        f.write("\n")
    print("%s: %d tensors, %d kv" % (path, len(tensors), len(meta)))
    for k, v in summary["relations"].items():
        print("   %-40s %s" % (k, v))
    if summary["unmatched"]:
        print("   no HF source:", summary["unmatched"])
    return summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-cpp", required=True)
    ap.add_argument("--hf", required=True, help="the model folder the GGUF was converted from")
    ap.add_argument("--out", help="summary JSON path (one file only)")
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.llama_cpp, "gguf-py"))
    import gguf  # noqa: E402
    hf = read_safetensors(args.hf)
    for fn in args.files:
        out = args.out or os.path.splitext(fn)[0] + ".json"
        inspect(fn, gguf, hf, out)


if __name__ == "__main__":
    main()
