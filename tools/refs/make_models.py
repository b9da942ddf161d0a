#!/usr/bin/env python3
"""Creates the tiny random-weight Gemma 3 models of tests/data/models/ and the
Hugging Face reference outputs every engine correctness test compares against.

Needs torch, transformers (5.x, Gemma 3 classes), safetensors, numpy, Pillow,
sentencepiece and tokenizers: run it on the device machine (see README.md).
Everything runs on the CPU in float32 (no TF32, deterministic); weights come
from a fixed seed, so a re-run with the same library versions writes the same
files.

For every model it writes <out>/<name>/ (save_pretrained folder + tokenizer)
and <out>/<name>/ref/ (prompt, logits, greedy continuation, ref.json), then
checks itself:
  * the saved folder reloads to bit-identical logits (float32 models), or to
    the same bf16 values (bf16 models);
  * an independent float64 numpy forward pass (gemma3_reference.py), built from the
    intended hyper-parameters rather than from transformers' parsed config,
    matches the Hugging Face logits; on a mismatch it tries a few plausible
    misreadings (window off by one, rope scaling ignored, ...) and reports
    which one transformers implements;
  * the greedy tokens are the argmax of a full re-computation.
Failures are collected and printed at the end (exit status 1); the run goes
on so that one run reports every problem.

Usage: make_models.py --out DIR --tok512 DIR --tok640 DIR
"""

import argparse
import copy
import inspect
import json
import re
import os
import shutil
import sys
import tempfile
import traceback

import numpy as np
import torch

import transformers
from transformers import (Gemma3Config, Gemma3ForCausalLM, Gemma3ForConditionalGeneration,
                          Gemma3TextConfig, SiglipVisionConfig)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gemma3_reference as R  # noqa: E402

SEED = 20250917
PROMPT_LEN = 40
N_GREEDY = 32
N_PROMPT_CANDIDATES = 16
MIN_DISTINCT = 8
ERRORS = []
OPTIONAL_FAILURES = []
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

# The models. Embeddings are small (N(0, 0.05), as a real init) so that the
# residual stream is dominated by the blocks' outputs: with large tied
# embeddings a random model only predicts its input token again. The final
# RMSNorm weight w is N(final_norm_w, 0.3) instead, so that logits spread over
# several units (clear greedy margins) and text-small's
# final_logit_softcapping (30) changes them measurably.
MODELS = {
    "text-small": dict(
        arch="Gemma3ForCausalLM", dtype="float32", vocab=512, hidden=64, layers=8, heads=4,
        kv_heads=2, head_dim=32, inter=128, window=16, qpas=32, softcap=30.0,
        rope_local=(10000.0, 1.0), rope_global=(1000000.0, 8.0), embed_std=0.05, final_norm_w=20.0,
        tokenizer="tok512", shard=None),
    "text-1b-like": dict(
        arch="Gemma3ForCausalLM", dtype="bfloat16", vocab=512, hidden=64, layers=7, heads=4,
        kv_heads=1, head_dim=32, inter=128, window=16, qpas=32, softcap=None,
        rope_local=(10000.0, 1.0), rope_global=(1000000.0, 1.0), embed_std=0.05, final_norm_w=12.0,
        tokenizer=None, shard="2.5 shards"),
    "text-27b-like": dict(
        arch="Gemma3ForCausalLM", dtype="bfloat16", vocab=512, hidden=96, layers=6, heads=2,
        kv_heads=1, head_dim=128, inter=192, window=16, qpas=168, softcap=None,
        rope_local=(10000.0, 1.0), rope_global=(1000000.0, 8.0), embed_std=0.05, final_norm_w=12.0,
        tokenizer=None, shard=None),
    "vision-small": dict(
        arch="Gemma3ForConditionalGeneration", dtype="float32", vocab=640, hidden=64, layers=8,
        heads=4, kv_heads=2, head_dim=32, inter=128, window=16, qpas=32, softcap=None,
        rope_local=(10000.0, 1.0), rope_global=(1000000.0, 8.0), embed_std=0.05, final_norm_w=12.0,
        tokenizer="tok640", shard=None,
        vision=dict(image_size=64, patch_size=8, hidden=32, layers=2, heads=2, inter=64,
                    eps=1e-6),
        mm_tokens=16, boi=600, eoi=601, image_token=602),
}
EPS = 1e-6
LIN_STD, BIAS_STD, NORM_STD = 0.05, 0.02, 0.3


# ---- helpers ---------------------------------------------------------------------
def step(name, optional=False):
    """Error collector: `with step("..."):` reports an exception and goes on.

    A failure in an optional step is recorded in OPTIONAL_FAILURES only.
    """

    class _Step:
        def __enter__(self):
            print("== " + name, flush=True)

        def __exit__(self, typ, val, tb):
            if typ is None:
                return False
            msg = "%s: %s: %s" % (name, typ.__name__, val)
            print("!! " + msg, flush=True)
            traceback.print_exception(typ, val, tb)
            (OPTIONAL_FAILURES if optional else ERRORS).append(msg)
            return True  # swallow, keep going

    return _Step()


def check(cond, msg):
    if not cond:
        print("!! CHECK FAILED: " + msg, flush=True)
        ERRORS.append(msg)
    return cond


def layer_types(n):
    return ["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(n)]


def rope_parameters(spec):
    lt, lf = spec["rope_local"]
    gt, gf = spec["rope_global"]
    local = {"rope_type": "default", "rope_theta": lt}
    glob = ({"rope_type": "default", "rope_theta": gt} if gf == 1.0 else
            {"rope_type": "linear", "factor": gf, "rope_theta": gt})
    return {"sliding_attention": local, "full_attention": glob}


def text_config(spec):
    common = dict(
        vocab_size=spec["vocab"], hidden_size=spec["hidden"], intermediate_size=spec["inter"],
        num_hidden_layers=spec["layers"], num_attention_heads=spec["heads"],
        num_key_value_heads=spec["kv_heads"], head_dim=spec["head_dim"],
        hidden_activation="gelu_pytorch_tanh", max_position_embeddings=2048,
        rms_norm_eps=EPS, pad_token_id=0, bos_token_id=2, eos_token_id=[1, 106],
        tie_word_embeddings=True, attention_bias=False, query_pre_attn_scalar=spec["qpas"],
        sliding_window=spec["window"], layer_types=layer_types(spec["layers"]),
        final_logit_softcapping=spec["softcap"], attn_logit_softcapping=None)
    cfg = Gemma3TextConfig(rope_parameters=rope_parameters(spec), **common)
    rp = getattr(cfg, "rope_parameters", None)
    want = rope_parameters(spec)
    ok = isinstance(rp, dict) and all(
        rp.get(k, {}).get("rope_theta") == want[k]["rope_theta"] and
        rp.get(k, {}).get("factor", 1.0) == want[k].get("factor", 1.0) for k in want)
    if not ok:  # an older dialect: rope_theta / rope_local_base_freq / rope_scaling
        print("rope_parameters not taken (%r); using the legacy keys" % (rp,))
        gt, gf = spec["rope_global"]
        cfg = Gemma3TextConfig(
            rope_theta=gt, rope_local_base_freq=spec["rope_local"][0],
            rope_scaling=None if gf == 1.0 else {"rope_type": "linear", "factor": gf}, **common)
    check(list(cfg.layer_types) == layer_types(spec["layers"]), "layer_types kept")
    return cfg


def model_config(spec):
    tc = text_config(spec)
    if spec["arch"] == "Gemma3ForCausalLM":
        return tc
    v = spec["vision"]
    vc = SiglipVisionConfig(
        hidden_size=v["hidden"], intermediate_size=v["inter"], num_hidden_layers=v["layers"],
        num_attention_heads=v["heads"], num_channels=3, image_size=v["image_size"],
        patch_size=v["patch_size"], hidden_act="gelu_pytorch_tanh", layer_norm_eps=v["eps"],
        vision_use_head=False)
    cfg = Gemma3Config(text_config=tc, vision_config=vc, mm_tokens_per_image=spec["mm_tokens"],
                       boi_token_index=spec["boi"], eoi_token_index=spec["eoi"],
                       image_token_index=spec["image_token"], tie_word_embeddings=True,
                       pad_token_id=0, bos_token_id=2, eos_token_id=[1, 106])
    for attr, want in (("image_token_id", spec["image_token"]), ("boi_token_id", spec["boi"]),
                       ("eoi_token_id", spec["eoi"]), ("image_token_index", spec["image_token"]),
                       ("boi_token_index", spec["boi"]), ("eoi_token_index", spec["eoi"])):
        if getattr(cfg, attr, None) != want:
            print("config: setting %s=%d (was %r)" % (attr, want, getattr(cfg, attr, None)))
            setattr(cfg, attr, want)
    return cfg


def randomize(model, seed, embed_std, final_norm_w):
    """Overwrites every parameter with seeded noise scaled like a real init.

    Gemma RMSNorm weights w (applied as 1 + w) get N(0, 0.3) so that the +1
    convention is really exercised, except the final norm: N(final_norm_w, 0.3).
    SigLIP LayerNorms get 1 + N(0, 0.1) weights and N(0, 0.1) biases.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):  # tied weights appear once
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            cls = type(parent).__name__

            def noise(std):
                return torch.randn(p.shape, generator=gen, dtype=torch.float32) * std

            if "RMSNorm" in cls and re.fullmatch(r"model\.(language_model\.)?norm\.weight", name):
                val = noise(NORM_STD) + final_norm_w
            elif "RMSNorm" in cls:
                val = noise(NORM_STD)
            elif "LayerNorm" in cls:
                val = noise(0.1) + (1.0 if name.endswith("weight") else 0.0)
            elif name.endswith("embed_tokens.weight"):
                val = noise(embed_std)
            elif name.endswith("position_embedding.weight"):
                val = noise(0.1)
            elif name.endswith("mm_input_projection_weight"):
                val = noise(0.1)
            elif name.endswith(".bias"):
                val = noise(BIAS_STD)
            else:
                val = noise(LIN_STD)
            p.copy_(val.to(p.dtype))


def load(cls, folder, **kw):
    try:
        return cls.from_pretrained(folder, dtype=torch.float32, **kw).eval()
    except TypeError:
        return cls.from_pretrained(folder, torch_dtype=torch.float32, **kw).eval()


def prefix_of(keys, suffix):
    hits = [k[: -len(suffix)] for k in keys if k.endswith(suffix)]
    assert len(hits) == 1, (suffix, hits)
    return hits[0]


def strip(sd, prefix):
    """The weights under prefix, prefix removed, as float64 numpy arrays."""
    return {k[len(prefix):]: v.to(torch.float64).numpy() for k, v in sd.items() if k.startswith(prefix)}


def ref_cfg(spec):
    return dict(hidden=spec["hidden"], n_layers=spec["layers"], n_heads=spec["heads"],
                n_kv_heads=spec["kv_heads"], head_dim=spec["head_dim"], eps=EPS,
                query_pre_attn_scalar=spec["qpas"], sliding_window=spec["window"],
                layer_types=layer_types(spec["layers"]), rope_local=spec["rope_local"],
                rope_global=spec["rope_global"], final_logit_softcapping=spec["softcap"])


def variants(cfg):
    """Plausible misreadings of the architecture, tried when the logits differ."""
    out = []
    for delta in (-1, 1):
        out.append(("sliding window %+d" % delta, cfg, dict(window_delta=delta)))
    c = dict(cfg, rope_global=(cfg["rope_global"][0], 1.0))
    out.append(("global rope scaling ignored", c, {}))
    c = dict(cfg, rope_local=(cfg["rope_local"][0], cfg["rope_global"][1]))
    out.append(("rope scaling on local layers too", c, {}))
    c = dict(cfg, query_pre_attn_scalar=cfg["head_dim"])
    out.append(("scale by head_dim", c, {}))
    c = dict(cfg, final_logit_softcapping=None)
    out.append(("no softcapping", c, {}))
    c = dict(cfg, rope_local=cfg["rope_global"], rope_global=cfg["rope_local"])
    out.append(("local/global rope swapped", c, {}))
    return out


def compare(name, got, want, rel=1e-4):
    """Max abs difference, passes when under rel * max(1, max|want|): float32
    transformers against the float64 reference (about 1e-5 seen)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    diff = float(np.abs(got - want).max())
    tol = rel * max(1.0, float(np.abs(want).max()))
    ok = diff <= tol
    print("   %-48s max|diff| %.3g (tol %.3g) %s" % (name, diff, tol, "ok" if ok else "MISMATCH"))
    return ok, diff


def save_npy(path, arr, dtype):
    np.save(path, np.ascontiguousarray(np.asarray(arr, dtype=dtype)))


def tensor_listing(folder):
    """name dtype shape file, for every tensor of a safetensors folder."""
    from safetensors import safe_open
    rows = []
    for fn in sorted(os.listdir(folder)):
        if fn.endswith(".safetensors"):
            with safe_open(os.path.join(folder, fn), framework="pt") as f:
                for k in f.keys():
                    sl = f.get_slice(k)
                    rows.append((k, str(sl.get_dtype()), list(sl.get_shape()), fn))
    return sorted(rows)


def versions():
    out = {"transformers": transformers.__version__, "torch": torch.__version__,
           "numpy": np.__version__, "python": sys.version.split()[0]}
    for mod in ("safetensors", "tokenizers", "sentencepiece", "PIL"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            out[mod] = "unavailable: %s" % e
    return out


# ---- greedy ------------------------------------------------------------------------
def greedy(model, ids, **extra):
    """32 greedy tokens with model.generate; EOS disabled so all 32 are produced."""
    gc = copy.deepcopy(model.generation_config)
    gc.do_sample = False
    gc.max_new_tokens = N_GREEDY
    gc.min_new_tokens = None
    gc.eos_token_id = None
    gc.pad_token_id = 0
    gc.top_k = None
    gc.top_p = None
    gc.temperature = None
    with torch.no_grad():
        out = model.generate(input_ids=ids[None], attention_mask=torch.ones_like(ids)[None],
                             generation_config=gc, output_logits=True,
                             return_dict_in_generate=True, **extra)
    seq = out.sequences[0, ids.shape[0]:]
    step_logits = torch.stack([lg[0] for lg in out.logits]).float()  # [32, vocab]
    return seq, step_logits


def margins(step_logits):
    """Per step, the gap between the largest and second largest logit."""
    top2 = np.sort(np.asarray(step_logits, np.float64), -1)[:, -2:]
    return (top2[:, 1] - top2[:, 0]).tolist()


def pick_prompt(info, cands, run):
    """Runs greedy decoding on each candidate prompt and keeps, among those
    whose 32 greedy tokens hold at least MIN_DISTINCT different ids, the one
    whose smallest top-1/top-2 logit gap is largest: tests comparing greedy
    tokens then neither hinge on a near tie nor pass on a model stuck
    repeating one token."""
    best = None
    mins, distinct = [], []
    for i, c in enumerate(cands):
        seq, sl = run(c)
        mn = min(margins(sl))
        nd = len(set(seq.tolist()))
        mins.append(mn)
        distinct.append(nd)
        key = (nd >= MIN_DISTINCT, mn if nd >= MIN_DISTINCT else nd)
        if best is None or key > best[0]:
            best = (key, i, (seq, sl))
    info["prompt_candidates_min_margins"] = mins
    info["prompt_candidates_distinct_greedy_tokens"] = distinct
    info["prompt_candidate_chosen"] = best[1]
    info["greedy_margins"] = margins(best[2][1])
    return best[1], best[2]


def degeneracy(name, info, prompt, logits, seq):
    """A random model must not just echo its input: record and check."""
    am = logits.argmax(-1).numpy()
    echo = float((am == prompt).mean())
    distinct = len(set(seq.tolist()))
    info.setdefault("checks", {})["prompt_argmax_equals_input_fraction"] = echo
    info["checks"]["greedy_distinct_tokens"] = distinct
    check(echo < 0.5, "%s: argmax echoes the input at %.0f%% of positions" % (name, 100 * echo))
    check(distinct >= MIN_DISTINCT, "%s: greedy output has only %d distinct tokens" % (name, distinct))


# ---- text models -------------------------------------------------------------------
def make_text(name, spec, out_dir, tok_dirs, info):
    folder = os.path.join(out_dir, name)
    ref = os.path.join(folder, "ref")
    os.makedirs(ref, exist_ok=True)
    cfg = model_config(spec)
    seed = SEED + sum(map(ord, name))
    torch.manual_seed(seed)
    model = Gemma3ForCausalLM(cfg).eval()
    randomize(model, seed, spec["embed_std"], spec["final_norm_w"])
    sd0 = {k: v.clone() for k, v in model.state_dict().items()}
    if "lm_head.weight" in sd0:
        check(torch.equal(sd0["lm_head.weight"], sd0["model.embed_tokens.weight"]),
              name + ": lm_head tied to embed_tokens")

    # save
    torch_dtype = torch.bfloat16 if spec["dtype"] == "bfloat16" else torch.float32
    model_s = model.to(torch_dtype)
    kw = {}
    if spec["shard"]:
        total = sum(p.numel() * p.element_size() for p in model_s.parameters())
        kw["max_shard_size"] = int(total / 2.5)
    model_s.save_pretrained(folder, **kw)
    if spec["tokenizer"]:
        for fn in os.listdir(tok_dirs[spec["tokenizer"]]):
            shutil.copy(os.path.join(tok_dirs[spec["tokenizer"]], fn), folder)

    # reload as float32 (bf16 values widened) and compute the references
    m = load(Gemma3ForCausalLM, folder)
    sd1 = m.state_dict()
    for k, v in sd0.items():
        want = v.to(torch_dtype).float()
        if not torch.equal(sd1[k].float(), want):
            check(False, "%s: reloaded %s differs from the saved values" % (name, k))
            break
    rng = np.random.RandomState(seed % (2 ** 31))
    cands = [np.concatenate([[2], rng.randint(4, spec["vocab"], PROMPT_LEN - 1)]).astype(np.int32)
             for _ in range(N_PROMPT_CANDIDATES)]
    pick, (seq, step_logits) = pick_prompt(info, cands, lambda c: greedy(m, torch.tensor(c, dtype=torch.long)))
    prompt = cands[pick]
    ids = torch.tensor(prompt, dtype=torch.long)
    with torch.no_grad():
        logits = m(input_ids=ids[None]).logits[0].float()  # [40, vocab]
        if torch_dtype == torch.float32:
            logits_mem = model(input_ids=ids[None]).logits[0].float()
            check(torch.equal(logits, logits_mem), name + ": reloaded logits bit-identical")
    info["checks"] = {}
    with torch.no_grad():
        m_eager = load(Gemma3ForCausalLM, folder, attn_implementation="eager")
        le = m_eager(input_ids=ids[None]).logits[0].float()
    info["checks"]["attn_implementation"] = m.config._attn_implementation
    info["checks"]["max_abs_diff_vs_eager_attention"] = (le - logits).abs().max().item()

    check(seq.shape[0] == N_GREEDY, "%s: %d greedy tokens" % (name, seq.shape[0]))
    degeneracy(name, info, prompt, logits, seq)

    save_npy(os.path.join(ref, "prompt_ids.npy"), prompt, np.int32)
    save_npy(os.path.join(ref, "logits.npy"), logits.numpy(), np.float32)
    save_npy(os.path.join(ref, "greedy.npy"), seq.numpy(), np.int32)
    save_npy(os.path.join(ref, "greedy_logits.npy"), step_logits.numpy(), np.float32)

    # independent float64 reference
    w = strip(sd1, prefix_of(sd1.keys(), "embed_tokens.weight"))
    rc = ref_cfg(spec)
    full = np.concatenate([prompt, seq.numpy()])
    emb = R.embed_tokens(w, spec["hidden"], full)
    ref_full = R.text_forward(w, rc, emb)  # [72, vocab]
    ok, d = compare(name + " HF logits vs float64 reference", logits, ref_full[:PROMPT_LEN])
    info["checks"]["max_abs_diff_vs_float64_reference"] = d
    check(ok, name + ": HF logits match the float64 reference")
    if not ok:
        for vname, vcfg, vkw in variants(rc):
            v = R.text_forward(w, vcfg, R.embed_tokens(w, spec["hidden"], prompt), **vkw)
            vok, vd = compare("   variant: " + vname, logits, v)
            if vok:
                ERRORS.append("%s: transformers matches variant '%s'" % (name, vname))
    ok2, d2 = compare(name + " generate() step logits vs reference",
                      step_logits, ref_full[PROMPT_LEN - 1: PROMPT_LEN - 1 + N_GREEDY])
    check(ok2, name + ": generate() step logits match the float64 reference")
    ref_steps = ref_full[PROMPT_LEN - 1: PROMPT_LEN - 1 + N_GREEDY]
    check(np.array_equal(ref_steps.argmax(-1), seq.numpy()),
          name + ": greedy tokens are the reference argmax")
    info["checks"]["max_abs_diff_generate_step_logits_vs_reference"] = d2
    info["checks"]["greedy_min_top1_top2_margin"] = min(margins(ref_steps))
    info["checks"]["logits_abs_max"] = logits.abs().max().item()
    info["checks"]["logits_std"] = logits.std().item()
    if spec["softcap"]:
        nocap = R.text_forward(w, dict(rc, final_logit_softcapping=None),
                               R.embed_tokens(w, spec["hidden"], prompt))
        info["checks"]["softcapping_effect_max_abs"] = float(np.abs(nocap - ref_full[:PROMPT_LEN]).max())
    return m, ids, logits


def google_text_config(spec, dtype):
    """config.json as Google's published Gemma 3 text checkpoints write it."""
    gt, gf = spec["rope_global"]
    return {
        "architectures": ["Gemma3ForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "attn_logit_softcapping": None,
        "bos_token_id": 2,
        "cache_implementation": "hybrid",
        "eos_token_id": [1, 106],
        "final_logit_softcapping": spec["softcap"],
        "head_dim": spec["head_dim"],
        "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": spec["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": spec["inter"],
        "max_position_embeddings": 2048,
        "model_type": "gemma3_text",
        "num_attention_heads": spec["heads"],
        "num_hidden_layers": spec["layers"],
        "num_key_value_heads": spec["kv_heads"],
        "pad_token_id": 0,
        "query_pre_attn_scalar": spec["qpas"],
        "rms_norm_eps": EPS,
        "rope_local_base_freq": spec["rope_local"][0],
        "rope_scaling": None if gf == 1.0 else {"factor": gf, "rope_type": "linear"},
        "rope_theta": gt,
        "sliding_window": spec["window"],
        "sliding_window_pattern": 6,
        "torch_dtype": dtype,
        "transformers_version": "4.50.0.dev0",
        "use_cache": True,
        "vocab_size": spec["vocab"],
    }


def check_google_text(name, spec, folder, ids, logits, info):
    gcfg = google_text_config(spec, spec["dtype"])
    with open(os.path.join(folder, "config-google-dialect.json"), "w") as f:
        json.dump(gcfg, f, indent=2)
        f.write("\n")
    with tempfile.TemporaryDirectory() as tmp:
        for fn in os.listdir(folder):
            if fn.endswith((".safetensors", ".safetensors.index.json")) or fn == "generation_config.json":
                os.symlink(os.path.join(folder, fn), os.path.join(tmp, fn))
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(gcfg, f)
        mg = load(Gemma3ForCausalLM, tmp)
        with torch.no_grad():
            lg = mg(input_ids=ids[None]).logits[0].float()
        info["checks"]["google_dialect_config_logits_bit_identical"] = bool(torch.equal(lg, logits))
        info["checks"]["google_dialect_config_parsed"] = {
            "layer_types": list(mg.config.layer_types),
            "rope_parameters": getattr(mg.config, "rope_parameters", None),
        }
        check(torch.equal(lg, logits), name + ": Google-dialect config.json gives identical logits")


# ---- vision model ------------------------------------------------------------------
def make_image(path):
    from PIL import Image
    yy, xx = np.mgrid[0:80, 0:100].astype(np.float64)
    r = 128 + 100 * np.sin(xx / 13.0) * np.cos(yy / 17.0)
    g = 255 * xx / 99.0
    b = 255 * yy / 79.0
    img = np.stack([r, g, b], -1)
    img[(xx - 62) ** 2 + (yy - 33) ** 2 < 17 ** 2] = (245, 35, 30)  # disc
    img[50:70, 10:32] = (25, 20, 190)  # block
    img[8:10, :] = 0  # a dark line
    img[:, 85:87] = 255  # a light line
    Image.fromarray(np.clip(np.round(img), 0, 255).astype(np.uint8), "RGB").save(path)


def image_processors(spec, img):
    """pixel_values from Gemma3ImageProcessor (and its other backends, if any)."""
    from PIL import Image
    kw = dict(do_resize=True, size={"height": 64, "width": 64}, resample=Image.BILINEAR,
              do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
              image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], do_convert_rgb=True,
              do_pan_and_scan=False)
    outs = {}
    try:
        main = transformers.Gemma3ImageProcessor(**kw)
        pv = main(images=img, return_tensors="pt")["pixel_values"]
    except Exception as e:  # noqa: BLE001
        print("   Gemma3ImageProcessor with resample=Image.BILINEAR failed (%s); using 2" % e)
        kw["resample"] = 2
        main = transformers.Gemma3ImageProcessor(**kw)
        pv = main(images=img, return_tensors="pt")["pixel_values"]
    outs["Gemma3ImageProcessor"] = (main, pv)
    for cname in ("Gemma3ImageProcessorFast", "Gemma3ImageProcessorPil", "Gemma3ImageProcessorSlow"):
        cls = getattr(transformers, cname, None)
        if cls is None:
            continue
        try:
            ipx = cls(**kw)
            outs[cname] = (ipx, ipx(images=img, return_tensors="pt")["pixel_values"])
        except Exception as e:  # noqa: BLE001
            print("   %s failed: %s" % (cname, e))
    return outs


def google_name(n):
    """A Gemma 3 multimodal tensor name in Google's published dialect.

    Accepts transformers' in-memory names (model.language_model.*,
    model.vision_tower.*, model.multi_modal_projector.*), what
    transformers 5.17 writes (language_model.model.*, vision_tower.* without
    the vision_model level, multi_modal_projector.*) and Google's own.
    """
    for a, b in (("model.language_model.", "language_model.model."),
                 ("model.vision_tower.", "vision_tower."),
                 ("model.multi_modal_projector.", "multi_modal_projector."),
                 ("lm_head.", "language_model.lm_head.")):
        if n.startswith(a):
            n = b + n[len(a):]
    if n.startswith("vision_tower.") and not n.startswith("vision_tower.vision_model."):
        n = "vision_tower.vision_model." + n[len("vision_tower."):]
    return n


def make_vision(name, spec, out_dir, tok_dirs, info):
    folder = os.path.join(out_dir, name)
    ref = os.path.join(folder, "ref")
    os.makedirs(ref, exist_ok=True)
    cfg = model_config(spec)
    seed = SEED + sum(map(ord, name))
    torch.manual_seed(seed)
    model = Gemma3ForConditionalGeneration(cfg).eval()
    randomize(model, seed, spec["embed_std"], spec["final_norm_w"])
    sd0 = {k: v.clone() for k, v in model.state_dict().items()}
    emb_key = [k for k in sd0 if k.endswith("embed_tokens.weight")][0]
    if "lm_head.weight" in sd0:
        check(torch.equal(sd0["lm_head.weight"], sd0[emb_key]), name + ": lm_head tied")
    model.save_pretrained(folder)
    for fn in os.listdir(tok_dirs[spec["tokenizer"]]):
        shutil.copy(os.path.join(tok_dirs[spec["tokenizer"]], fn), folder)

    # image + processor
    from PIL import Image
    make_image(os.path.join(ref, "image.png"))
    img = Image.open(os.path.join(ref, "image.png"))
    img.load()
    procs = image_processors(spec, img)
    ip, pv = procs["Gemma3ImageProcessor"]
    info["image_processor_class"] = type(ip).__module__ + "." + type(ip).__name__
    # a plain PIL bilinear resize of the uint8 image, to tell which resize each backend does
    arr = np.asarray(img.convert("RGB").resize((64, 64), Image.BILINEAR), dtype=np.float64)
    pil_pv = ((arr / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)  # [3, 64, 64]
    info["image_processor_variants"] = {}
    for cname, (ipx, pvx) in procs.items():
        d = (pvx.float() - pv.float()).abs().max().item()
        info["image_processor_variants"][cname] = {
            "class": type(ipx).__module__ + "." + type(ipx).__name__,
            "max_abs_diff_vs_main": d,
            "max_abs_diff_vs_plain_PIL_bilinear": float(np.abs(pil_pv - pvx[0].double().numpy()).max())}
        if cname != "Gemma3ImageProcessor" and d > 0:
            save_npy(os.path.join(ref, "pixel_values_%s.npy" % cname), pvx[0].numpy(), np.float32)
    save_npy(os.path.join(ref, "pixel_values.npy"), pv[0].numpy(), np.float32)  # [3, 64, 64]
    ip.save_pretrained(folder)
    pp = os.path.join(folder, "preprocessor_config.json")
    if os.path.exists(pp):
        with open(pp) as f:
            pcfg = json.load(f)
    else:
        pcfg = ip.to_dict()
        check(False, "image processor wrote no preprocessor_config.json: %s" % os.listdir(folder))
    pcfg["image_seq_length"] = spec["mm_tokens"]  # as Google's preprocessor_config.json carries it
    with open(pp, "w") as f:
        json.dump(pcfg, f, indent=2)
        f.write("\n")
    # Gemma3Processor reads the number of image tokens from here (default 256)
    with open(os.path.join(folder, "processor_config.json"), "w") as f:
        json.dump({"image_seq_length": spec["mm_tokens"], "processor_class": "Gemma3Processor"},
                  f, indent=2)
        f.write("\n")

    m = load(Gemma3ForConditionalGeneration, folder)
    info["checks"] = {"attn_implementation": m.config._attn_implementation}
    pvb = pv.to(torch.float32)

    # prompt: BOS, text, "\n\n", boi, 16 image tokens, eoi, "\n\n", text
    rng = np.random.RandomState(seed % (2 ** 31))
    cands = []
    for _ in range(N_PROMPT_CANDIDATES):
        pre = rng.randint(4, spec["boi"], 5)
        post = rng.randint(4, spec["boi"], 10)
        cands.append(np.concatenate([[2], pre, [108, spec["boi"]],
                                     [spec["image_token"]] * spec["mm_tokens"],
                                     [spec["eoi"], 108], post]).astype(np.int32))

    def run_greedy(c):
        tok = torch.tensor(c, dtype=torch.long)
        typ = torch.tensor(c == spec["image_token"], dtype=torch.long)
        return greedy(m, tok, pixel_values=pvb, token_type_ids=typ[None])

    pick, (seq_g, step_logits_g) = pick_prompt(info, cands, run_greedy)
    prompt = cands[pick]
    tt = (prompt == spec["image_token"]).astype(np.int32)
    ids = torch.tensor(prompt, dtype=torch.long)
    tti = torch.tensor(tt, dtype=torch.long)
    save_npy(os.path.join(ref, "prompt_ids.npy"), prompt, np.int32)
    save_npy(os.path.join(ref, "token_type_ids.npy"), tt, np.int32)
    sd1 = m.state_dict()
    for k, v in sd0.items():
        if not torch.equal(sd1[k], v):
            check(False, "%s: reloaded %s differs" % (name, k))
            break
    with torch.no_grad():
        out_plain = m(input_ids=ids[None], pixel_values=pvb)
        logits_plain = out_plain.logits[0].float()
        tt_kw, logits_tt, out_tt, tried = None, None, None, {}
        for key in ("token_type_ids", "mm_token_type_ids"):
            try:
                o = m(input_ids=ids[None], pixel_values=pvb, **{key: tti[None]})
            except Exception as e:  # noqa: BLE001
                tried[key] = "refused: %s: %s" % (type(e).__name__, e)
                continue
            lg = o.logits[0].float()
            tried[key] = "max_abs_diff_vs_no_type_ids=%.4g" % (lg - logits_plain).abs().max().item()
            if tt_kw is None or (not torch.equal(lg, logits_plain) and torch.equal(logits_tt, logits_plain)):
                tt_kw, logits_tt, out_tt = key, lg, o
        info["token_type_ids_tried"] = tried
        if logits_tt is None:
            logits_tt, out_tt = logits_plain, out_plain
        ihs = getattr(out_tt, "image_hidden_states", None)
        image_embeds = ihs.reshape(-1, spec["hidden"]).float() if ihs is not None else None
        try:
            feats = m.get_image_features(pixel_values=pvb)
            if hasattr(feats, "pooler_output") and feats.pooler_output is not None:
                feats = feats.pooler_output
            elif isinstance(feats, (tuple, list)):
                feats = feats[0]
            feats = feats.reshape(-1, spec["hidden"]).float()
            if image_embeds is None:
                image_embeds = feats
            check(torch.equal(feats, image_embeds),
                  name + ": get_image_features == forward's image_hidden_states")
        except Exception as e:  # noqa: BLE001
            OPTIONAL_FAILURES.append("get_image_features: %s" % e)
    info["token_type_ids_argument"] = tt_kw
    info["checks"]["max_abs_diff_logits_with_vs_without_token_type_ids"] = (
        logits_tt - logits_plain).abs().max().item()
    save_npy(os.path.join(ref, "image_embeds.npy"), image_embeds.numpy(), np.float32)
    save_npy(os.path.join(ref, "logits.npy"), logits_tt.numpy(), np.float32)
    save_npy(os.path.join(ref, "logits_without_token_type_ids.npy"), logits_plain.numpy(), np.float32)

    # float64 reference: vision tower + projector + text with the image block mask
    keys = list(sd1.keys())
    vpre = prefix_of(keys, "embeddings.patch_embedding.weight")
    ppre = prefix_of(keys, "mm_input_projection_weight")
    tpre = prefix_of(keys, "embed_tokens.weight")
    vw, pw, w = strip(sd1, vpre), strip(sd1, ppre), strip(sd1, tpre)
    v = spec["vision"]
    vcfg = dict(patch_size=v["patch_size"], image_size=v["image_size"], n_layers=v["layers"],
                n_heads=v["heads"], eps=v["eps"])
    ref_img = R.vision_forward(vw, pw, vcfg, pv[0].double().numpy(), spec["mm_tokens"])
    ok, d = compare(name + " image_embeds vs float64 reference", image_embeds, ref_img)
    info["checks"]["image_embeds_max_abs_diff_vs_float64_reference"] = d
    check(ok, name + ": image embeddings match the float64 reference")
    rc = ref_cfg(spec)
    emb = R.embed_tokens(w, spec["hidden"], prompt)
    emb[tt.astype(bool)] = ref_img
    bidir = R.image_block_mask(tt)
    ref_bi = R.text_forward(w, rc, emb, extra_allowed=bidir)
    ref_causal = R.text_forward(w, rc, emb)
    res = {}
    for lname, lg in (("with_token_type_ids", logits_tt), ("without_token_type_ids", logits_plain)):
        okb, db = compare("%s logits (%s) vs ref bidirectional image" % (name, lname), lg, ref_bi)
        okc, dc = compare("%s logits (%s) vs ref causal-only" % (name, lname), lg, ref_causal)
        res[lname] = {"matches_bidirectional_image_block": okb, "max_abs_diff_bidirectional": db,
                      "matches_causal_only": okc, "max_abs_diff_causal": dc}
    info["checks"]["mask_semantics"] = res
    info["checks"]["ref_bidirectional_vs_causal_max_abs_diff"] = float(np.abs(ref_bi - ref_causal).max())
    check(res["with_token_type_ids"]["matches_bidirectional_image_block"],
          name + ": logits with token_type_ids follow the bidirectional image block")

    # greedy continuation, as generate() is called with the processor's outputs
    with step(name + ": greedy"):
        check(tt_kw == "token_type_ids", "the greedy run passed token_type_ids")
        seq, step_logits = seq_g, step_logits_g
        check(seq.shape[0] == N_GREEDY, "%s: %d greedy tokens" % (name, seq.shape[0]))
        degeneracy(name, info, prompt, logits_tt, seq)
        save_npy(os.path.join(ref, "greedy.npy"), seq.numpy(), np.int32)
        save_npy(os.path.join(ref, "greedy_logits.npy"), step_logits.numpy(), np.float32)
        full = np.concatenate([prompt, seq.numpy()])
        tt_f = np.concatenate([tt, np.zeros(N_GREEDY, tt.dtype)])
        emb_f = R.embed_tokens(w, spec["hidden"], full)
        emb_f[tt_f.astype(bool)] = ref_img
        ref_f = R.text_forward(w, rc, emb_f, extra_allowed=R.image_block_mask(tt_f))
        n = len(prompt)
        sl = ref_f[n - 1: n - 1 + N_GREEDY]
        ok2, d2 = compare(name + " generate() step logits vs reference", step_logits, sl)
        check(ok2, name + ": generate() step logits match the reference")
        check(np.array_equal(sl.argmax(-1), seq.numpy()),
              name + ": greedy tokens are the reference argmax")
        info["checks"]["greedy_min_top1_top2_margin"] = min(margins(sl))
        info["checks"]["max_abs_diff_generate_step_logits_vs_reference"] = d2

    # the processor path a user would take, for the record
    with step(name + ": Gemma3Processor", optional=True):
        proc = transformers.AutoProcessor.from_pretrained(folder)
        enc = proc(text="<start_of_image>", images=img, return_tensors="pt")
        info["processor_check"] = {
            "class": type(proc).__name__, "keys": sorted(enc.keys()),
            "input_ids": enc["input_ids"][0].tolist(),
            "token_type_ids": (enc["token_type_ids"][0].tolist() if "token_type_ids" in enc else None),
            "pixel_values_equal_ref": bool(torch.equal(enc["pixel_values"].float(), pv.float())),
        }
        want = [2, 108, spec["boi"]] + [spec["image_token"]] * spec["mm_tokens"] + [spec["eoi"], 108]
        info["processor_check"]["input_ids_as_expected"] = enc["input_ids"][0].tolist() == want
    info["checks"]["logits_abs_max"] = logits_tt.abs().max().item()
    return m, ids, logits_tt, pvb, tti, tt_kw


def write_google_vision(spec, folder, gfolder, m_state, m_ids, logits, pvb, tti, tt_kw, info):
    """vision-small in Google's published dialect: renamed tensors + config.json."""
    from safetensors.torch import load_file, save_file
    rows = tensor_listing(folder)
    names = [r[0] for r in rows]
    mapping = {n: google_name(n) for n in names}
    info["transformers_wrote_google_dialect"] = all(mapping[n] == n for n in names)
    with open(os.path.join(folder, "tensor_names.txt"), "w") as f:
        f.write("# tensors as transformers %s save_pretrained wrote them: name dtype shape file\n"
                % transformers.__version__)
        for n, dt, shape, fn in rows:
            f.write("%s %s %s %s\n" % (n, dt, "x".join(map(str, shape)), fn))
    with open(os.path.join(folder, "tensor_names-google-dialect.txt"), "w") as f:
        f.write("# the same tensors under the names Google's published Gemma 3 checkpoints use\n")
        for n, dt, shape, fn in sorted(rows, key=lambda r: mapping[r[0]]):
            f.write("%s %s %s\n" % (mapping[n], dt, "x".join(map(str, shape))))
    with open(os.path.join(folder, "tensor_names-in-memory.txt"), "w") as f:
        f.write("# model.state_dict() names of Gemma3ForConditionalGeneration in transformers %s "
                "(lm_head.weight is tied to the embedding and not saved)\n" % transformers.__version__)
        for n, t in sorted(m_state.items()):
            f.write("%s %s %s\n" % (n, str(t.dtype).replace("torch.", ""),
                                    "x".join(map(str, t.shape))))
    os.makedirs(gfolder, exist_ok=True)
    tensors = {}
    for fn in sorted(os.listdir(folder)):
        if fn.endswith(".safetensors"):
            tensors.update(load_file(os.path.join(folder, fn)))
    save_file({mapping[k]: v.contiguous() for k, v in tensors.items()},
              os.path.join(gfolder, "model.safetensors"), metadata={"format": "pt"})
    v = spec["vision"]
    gcfg = {
        "architectures": ["Gemma3ForConditionalGeneration"],
        "boi_token_index": spec["boi"],
        "eoi_token_index": spec["eoi"],
        "eos_token_id": [1, 106],
        "image_token_index": spec["image_token"],
        "initializer_range": 0.02,
        "mm_tokens_per_image": spec["mm_tokens"],
        "model_type": "gemma3",
        "text_config": {k: val for k, val in google_text_config(spec, "float32").items()
                        if k not in ("architectures", "torch_dtype", "transformers_version")},
        "torch_dtype": "float32",
        "transformers_version": "4.50.0.dev0",
        "vision_config": {
            "hidden_size": v["hidden"], "image_size": v["image_size"],
            "intermediate_size": v["inter"], "model_type": "siglip_vision_model",
            "num_attention_heads": v["heads"], "num_hidden_layers": v["layers"],
            "patch_size": v["patch_size"], "vision_use_head": False,
        },
    }
    for path in (os.path.join(gfolder, "config.json"),
                 os.path.join(folder, "config-google-dialect.json")):
        with open(path, "w") as f:
            json.dump(gcfg, f, indent=2)
            f.write("\n")
    for fn in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json",
               "preprocessor_config.json", "processor_config.json"):
        shutil.copy(os.path.join(folder, fn), gfolder)
    mg = load(Gemma3ForConditionalGeneration, gfolder)
    with torch.no_grad():
        kw = {tt_kw: tti[None]} if tt_kw else {}
        lg = mg(input_ids=m_ids[None], pixel_values=pvb, **kw).logits[0].float()
    same = bool(torch.equal(lg, logits))
    info["checks"]["google_dialect_folder_logits_bit_identical"] = same
    check(same, "vision-small-google loads to identical logits")


# ---- tokenizer checks ---------------------------------------------------------------
TOK_TEXTS = ["The cat sat on the mat.", "hello world", "Zebra 123 quiz!", "naïve café ☃",
             "line one\nline two", "<start_of_turn>user\nhi there<end_of_turn>\n",
             "the the the", "At 9:30, she said: \"It's fine\" (really)."]


def tokenizer_check(folder, out_path):
    res = {"texts": TOK_TEXTS}
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(folder, "tokenizer.model"))
    res["sentencepiece"] = [sp.encode(t) for t in TOK_TEXTS]
    res["sentencepiece_vocab_size"] = sp.vocab_size()
    from tokenizers import Tokenizer
    tk = Tokenizer.from_file(os.path.join(folder, "tokenizer.json"))
    res["tokenizers"] = [tk.encode(t, add_special_tokens=False).ids for t in TOK_TEXTS]
    res["tokenizers_with_bos"] = [tk.encode(t).ids for t in TOK_TEXTS]
    res["decode_roundtrip"] = [tk.decode(ids, skip_special_tokens=False) for ids in res["tokenizers"]]
    res["sentencepiece_equals_tokenizers"] = [a == b for a, b in
                                              zip(res["sentencepiece"], res["tokenizers"])]
    try:
        from sentencepiece import sentencepiece_model_pb2 as pb
        mp = pb.ModelProto()
        with open(os.path.join(folder, "tokenizer.model"), "rb") as f:
            mp.ParseFromString(f.read())
        res["model_proto"] = {
            "pieces": len(mp.pieces),
            "model_type": int(mp.trainer_spec.model_type),
            "byte_fallback": mp.trainer_spec.byte_fallback,
            "ids unk/bos/eos/pad": [mp.trainer_spec.unk_id, mp.trainer_spec.bos_id,
                                    mp.trainer_spec.eos_id, mp.trainer_spec.pad_id],
            "normalizer": [mp.normalizer_spec.name, mp.normalizer_spec.add_dummy_prefix,
                           mp.normalizer_spec.remove_extra_whitespaces,
                           mp.normalizer_spec.escape_whitespaces],
        }
    except Exception as e:  # noqa: BLE001
        res["model_proto"] = "not checked: %s" % e
    try:
        at = transformers.AutoTokenizer.from_pretrained(folder)
        res["transformers_AutoTokenizer_class"] = type(at).__name__
        res["transformers_AutoTokenizer"] = [at.encode(t) for t in TOK_TEXTS]
    except Exception as e:  # noqa: BLE001
        res["transformers_AutoTokenizer"] = "failed: %s" % e
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1, ensure_ascii=False)
        f.write("\n")
    check(all(res["sentencepiece_equals_tokenizers"]),
          "tokenizer.model and tokenizer.json agree on the sample texts (%s)" % folder)


# ---- ref.json ------------------------------------------------------------------------
FILES_TEXT = {
    "prompt_ids.npy": "int32 [40]: the prompt; BOS=2 then 39 seeded random ids in [4, vocab); "
                      "of 16 seeded candidates, among those whose greedy run has >= 8 distinct "
                      "tokens, the one with the largest smallest top-1/top-2 logit gap "
                      "(greedy_margins in ref.json)",
    "logits.npy": "float32 [40, vocab]: model(input_ids=prompt).logits, float32 on CPU",
    "greedy.npy": "int32 [32]: model.generate(do_sample=False, max_new_tokens=32) after the "
                  "prompt, EOS disabled (eos_token_id=None) so all 32 are produced",
    "greedy_logits.npy": "float32 [32, vocab]: the raw logits generate() picked each greedy "
                         "token from (output_logits=True; KV-cache decode path)",
}


def write_ref_json(name, spec, folder, info):
    files = dict(FILES_TEXT)
    if spec["arch"] == "Gemma3ForConditionalGeneration":
        files.update({
            "prompt_ids.npy": "int32 [%d]: BOS, 5 text ids, 108 ('\\n\\n'), boi=%d, %d x "
                              "image_token=%d, eoi=%d, 108, 10 text ids (text ids seeded, in [4, boi); chosen "
                              "among 16 candidates as for the text models)" % (
                                  36, spec["boi"], spec["mm_tokens"], spec["image_token"],
                                  spec["eoi"]),
            "token_type_ids.npy": "int32 [36]: 1 at the image soft tokens, else 0 (what "
                                  "Gemma3Processor returns)",
            "image.png": "100x80 RGB test image (generated: gradients, a disc, a block, lines)",
            "pixel_values.npy": "float32 [3, 64, 64]: Gemma3ImageProcessor(size 64x64, "
                                "do_pan_and_scan=False, resample=BILINEAR, rescale 1/255, "
                                "mean=std=0.5)(image.png)",
            "image_embeds.npy": "float32 [16, hidden]: model.get_image_features(pixel_values): "
                                "SigLIP -> 2x2 avg pool (8x8 -> 4x4) -> RMSNorm(1+w) -> "
                                "projection; replaces the 16 image tokens' embeddings "
                                "(not scaled by sqrt(hidden))",
            "logits.npy": "float32 [36, vocab]: model(input_ids, pixel_values, "
                          "token_type_ids).logits: image tokens attend bidirectionally "
                          "within their image block",
            "logits_without_token_type_ids.npy": "float32 [36, vocab]: the same without "
                                                 "token_type_ids (plain causal mask)",
            "greedy.npy": "int32 [32]: model.generate(input_ids, pixel_values, token_type_ids, "
                          "do_sample=False, max_new_tokens=32), EOS disabled",
        })
    for fn in list(files):
        if not os.path.exists(os.path.join(folder, "ref", fn)):
            files[fn] += "  [NOT WRITTEN]"
    doc = {
        "model": name,
        "class": spec["arch"],
        "seed": SEED + sum(map(ord, name)),
        "stored_dtype": spec["dtype"],
        "compute": "float32 on CPU (weights loaded with dtype=float32; bf16 values widened)",
        "spec": {k: v for k, v in spec.items() if k not in ("tokenizer", "shard")},
        "layer_types": layer_types(spec["layers"]),
        "init": {"linear_std": LIN_STD, "bias_std": BIAS_STD, "rmsnorm_w_std": NORM_STD,
                 "embed_std": spec["embed_std"],
                 "final_norm_w": "N(%g, %g)" % (spec["final_norm_w"], NORM_STD),
                 "siglip_layernorm": "w = 1 + N(0, 0.1), b = N(0, 0.1)"},
        "versions": versions(),
        "files": files,
    }
    doc.update(info)
    with open(os.path.join(folder, "ref", "ref.json"), "w") as f:
        json.dump(doc, f, indent=2, default=str)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--tok512", required=True)
    ap.add_argument("--tok640", required=True)
    ap.add_argument("--only", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(min(8, os.cpu_count() or 1))
    print("versions:", json.dumps(versions()))
    print("Gemma3TextConfig signature:", inspect.signature(Gemma3TextConfig.__init__))
    tok_dirs = {"tok512": args.tok512, "tok640": args.tok640}
    os.makedirs(args.out, exist_ok=True)
    for name, spec in MODELS.items():
        if args.only and name not in args.only:
            continue
        info = {}
        folder = os.path.join(args.out, name)
        if spec["arch"] == "Gemma3ForCausalLM":
            with step(name):
                m, ids, logits = make_text(name, spec, args.out, tok_dirs, info)
                if name == "text-small":
                    with step(name + ": Google dialect config"):
                        check_google_text(name, spec, folder, ids, logits, info)
                    with step(name + ": tensor names"):
                        with open(os.path.join(folder, "tensor_names.txt"), "w") as f:
                            f.write("# tensors as transformers %s wrote them: name dtype shape "
                                    "file\n" % transformers.__version__)
                            for n, dt, shape, fn in tensor_listing(folder):
                                f.write("%s %s %s %s\n" % (n, dt, "x".join(map(str, shape)), fn))
        else:
            with step(name):
                m, ids, logits, pvb, tti, tt_kw = make_vision(name, spec, args.out, tok_dirs, info)
                with step(name + ": Google dialect folder"):
                    write_google_vision(spec, folder, os.path.join(args.out, name + "-google"),
                                        m.state_dict(), ids, logits, pvb, tti, tt_kw, info)
        if spec["tokenizer"] and os.path.isdir(os.path.join(folder, "ref")):
            with step(name + ": tokenizer check"):
                tokenizer_check(folder, os.path.join(folder, "ref", "tokenizer_check.json"))
        with step(name + ": ref.json"):
            write_ref_json(name, spec, folder, info)
        print(json.dumps(info.get("checks", {}), indent=1, default=str))
    print("\n%d optional step(s) failed" % len(OPTIONAL_FAILURES))
    for e in OPTIONAL_FAILURES:
        print(" - " + e)
    print("\n%d problem(s)" % len(ERRORS))
    for e in ERRORS:
        print(" - " + e)
    sys.exit(1 if ERRORS else 0)


if __name__ == "__main__":
    main()
