#!/usr/bin/env python3
"""Picks the best trained run, writes the Hugging Face model folder, and
computes the reference data that the engine's tests compare against.

Model folder (--model-out): config.json, model.safetensors (bf16),
generation_config.json (written by transformers' save_pretrained), and the
tokenizer.json / tokenizer_config.json from train_tokenizer.py.

References (--ref-out), all computed by transformers on the CPU in float32
(weights: the saved bf16 values, upcast exactly), eager attention:
  heldout.txt          the held-out documents (copied from the data folder)
  ref.json             perplexity, per-window NLLs, greedy samples, tokenizer cases
  logits_prompt.npy    float32 [n_prompt_tokens, vocab]: logits of every position
                       of the short logits prompt (see ref.json "logits")
  logits_window0_last.npy  float32 [vocab]: logits at the last position of
                       perplexity window 0 (256 tokens, crosses the sliding window)
Perplexity procedure: ids = tokenizer(heldout.txt, add_special_tokens=False);
cut into consecutive chunks of 255 ids (the remainder is dropped); each window
is <bos> + chunk (256 tokens); NLL of tokens 1..255 of each window given the
ones before it; ppl = exp(sum of all NLLs / number of predicted tokens).
"""
import argparse
import glob
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import demo_arch  # noqa: E402

BOS, EOS_IDS = 2, (1, 106)
WIN = 256

SAMPLES = [
    {"name": "plain_jury", "prompt": "The jury said"},
    {"name": "plain_morning", "prompt": "It was a cold morning in"},
    {"name": "chat_hello", "messages": [{"role": "user", "content": "Hello! Who are you?"}]},
    {"name": "chat_city", "messages": [{"role": "user", "content": "Tell me about the city."}]},
    {"name": "chat_continue", "messages": [{"role": "user", "content": "Continue: The old man walked slowly"}]},
    {"name": "chat_music", "messages": [{"role": "user", "content": "What do you know about music?"}]},
    {"name": "chat_war", "messages": [{"role": "user", "content": "Tell me about the war."}]},
    {"name": "chat_church", "messages": [{"role": "user", "content": "Write a sentence about the church."}]},
    {"name": "plain_long", "heldout_prefix": 200},
]
LOGITS_PROMPT = "The jury said that the city"
TOKENIZER_CASES = [
    "Hello world", "The jury said 1961.", "  two leading spaces", "trailing space ",
    "tab\there\t\ttwo", "new\nline\n\nand\n\n\nmore", "caf\u00e9 na\u00efve \u00fcber",
    "emoji \U0001F600 and \u4e2d\u6587", "<start_of_turn>user\nHi<end_of_turn>\n",
    "<b>bold</b> <table>", "a\u2581b", "", "Mr. O'Brien's $1,000,000 (in 1960) -- \"quoted\"",
]


def pick_best(ckpt_dir, log_dir):
    """The run with the lowest validation loss: (log, checkpoint path), all logs."""
    best = None
    runs = []
    for lp in sorted(glob.glob(os.path.join(log_dir, "log_*.json"))):
        with open(lp) as f:
            log = json.load(f)
        runs.append(log)
        ck = os.path.join(ckpt_dir, "ckpt_%s.pt" % log["name"])
        if log.get("best") and os.path.exists(ck):
            if best is None or log["best"]["val_loss"] < best[0]["best"]["val_loss"]:
                best = (log, ck)
    return best, runs


def greedy(model, ids, steps):
    """Greedy decoding by full recomputation (no cache): ids, top1-top2 margins."""
    ids = list(ids)
    out, margins = [], []
    with torch.no_grad():
        for _ in range(steps):
            lg = model(input_ids=torch.tensor([ids]), use_cache=False).logits[0, -1].float()
            top = torch.topk(lg, 2)
            nxt = int(top.indices[0])
            margins.append(float(top.values[0] - top.values[1]))
            out.append(nxt)
            ids.append(nxt)
    return out, margins


def cut_at_eos(ids):
    for i, t in enumerate(ids):
        if t in EOS_IDS:
            return ids[: i + 1]
    return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt-dir", required=True, help="ckpt_<name>.pt from train_model.py")
    ap.add_argument("--log-dir", required=True, help="log_<name>.json from train_model.py")
    ap.add_argument("--tok", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--model-out", required=True)
    ap.add_argument("--ref-out", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--threads", type=int, default=8)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import tokenizers
    import transformers
    from transformers import (AutoModelForCausalLM, AutoTokenizer, Gemma3ForCausalLM,
                              GenerationConfig)

    report = {"versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                           "tokenizers": tokenizers.__version__}}
    (log, ck), runs = pick_best(args.ckpt_dir, args.log_dir)
    report["runs"] = [{"name": r["name"], "best": r.get("best"), "planned_steps": r["planned_steps"],
                       "final_step": r.get("final_step"), "step_time_s": r.get("step_time_s"),
                       "dropout": r["args"]["dropout"], "epochs_arg": r["args"]["epochs"]}
                      for r in runs]
    report["chosen"] = log["name"]
    print("chosen run:", log["name"], log["best"])

    # 1. The Hugging Face folder.
    os.makedirs(args.model_out, exist_ok=True)
    model = Gemma3ForCausalLM(demo_arch.build_config())
    sd = torch.load(ck, map_location="cpu")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    print("load: missing", missing, "unexpected", unexpected)
    assert not [k for k in missing if "lm_head" not in k], missing
    model = model.to(torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=BOS, eos_token_id=list(EOS_IDS),
                                               pad_token_id=0, do_sample=True, top_k=64, top_p=0.95)
    model.save_pretrained(args.model_out)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tok, name), os.path.join(args.model_out, name))
    with open(os.path.join(args.model_out, "config.json")) as f:
        cfg_json = json.load(f)
    try:
        demo_arch.check_config_json(cfg_json)
        report["config_check"] = "ok"
    except AssertionError as e:
        report["config_check"] = "FAILED: %r" % (e,)
    print("config check:", report["config_check"])
    report["files"] = {n: os.path.getsize(os.path.join(args.model_out, n))
                       for n in sorted(os.listdir(args.model_out))}
    try:
        from safetensors import safe_open

        with safe_open(os.path.join(args.model_out, "model.safetensors"), "pt") as f:
            report["tensors"] = {k: [str(f.get_tensor(k).dtype), list(f.get_tensor(k).shape)]
                                 for k in f.keys()}
    except Exception as e:  # informative only
        report["tensors"] = "unreadable: %r" % (e,)

    # 2. Reload exactly as a user would, in float32 on the CPU.
    tok = AutoTokenizer.from_pretrained(args.model_out)
    try:
        m = AutoModelForCausalLM.from_pretrained(args.model_out, dtype=torch.float32,
                                                 attn_implementation="eager")
    except TypeError:
        m = AutoModelForCausalLM.from_pretrained(args.model_out, torch_dtype=torch.float32,
                                                 attn_implementation="eager")
    m.eval()
    report["loaded_class"] = type(m).__name__
    report["tokenizer_class"] = type(tok).__name__
    n_params = sum(p.numel() for p in m.parameters())
    report["params"] = n_params
    print("loaded", type(m).__name__, n_params, "params;", type(tok).__name__)

    os.makedirs(args.ref_out, exist_ok=True)
    held_path = os.path.join(args.ref_out, "heldout.txt")
    shutil.copy(os.path.join(args.data, "heldout.txt"), held_path)
    with open(held_path, encoding="utf-8") as f:
        text = f.read()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    raw = tokenizers.Tokenizer.from_file(os.path.join(args.model_out, "tokenizer.json"))
    raw_ids = raw.encode(text, add_special_tokens=False).ids
    report["heldout_tokenizer_agree"] = raw_ids == list(ids)
    n_win = len(ids) // (WIN - 1)
    wins = torch.tensor([[BOS] + ids[i * (WIN - 1):(i + 1) * (WIN - 1)] for i in range(n_win)])
    sums = []
    last_logits0 = None
    with torch.no_grad():
        for i in range(0, n_win, 8):
            x = wins[i:i + 8]
            lg = m(input_ids=x, use_cache=False).logits.float()
            if i == 0:
                last_logits0 = lg[0, -1].numpy().astype(np.float32)
            nll = F.cross_entropy(lg[:, :-1].reshape(-1, lg.size(-1)), x[:, 1:].reshape(-1),
                                  reduction="none").view(x.size(0), -1).double()
            sums.extend(nll.sum(1).tolist())
    n_pred = n_win * (WIN - 1)
    mean_nll = sum(sums) / n_pred
    ppl = math.exp(mean_nll)
    print("held-out: %d tokens, %d windows, mean NLL %.5f, ppl %.3f" % (len(ids), n_win, mean_nll, ppl))

    ref = {
        "model": "models/demo",
        "weights_dtype": "bfloat16",
        "reference_compute": "transformers %s / torch %s, CPU, float32 (bf16 weights upcast), "
                             "eager attention" % (transformers.__version__, torch.__version__),
        "special_ids": {"pad": 0, "eos": 1, "bos": 2, "unk": 3, "start_of_turn": 105,
                        "end_of_turn": 106, "newline": 107, "generation_stops_at": list(EOS_IDS)},
        "perplexity": {
            "file": "tests/data/demo/heldout.txt",
            "procedure": "ids = tokenizer(file text, add_special_tokens=False); consecutive chunks "
                         "of 255 ids, remainder dropped; window = [<bos>=2] + chunk (256 tokens); "
                         "NLL (natural log) of window tokens 1..255 given the tokens before; "
                         "ppl = exp(sum of NLL over all windows / predicted tokens)",
            "tokens": len(ids), "window": WIN, "windows": n_win, "predicted_tokens": n_pred,
            "mean_nll": mean_nll, "ppl": ppl,
            "window_nll_sum": sums,
        },
        "logits": {"prompt": LOGITS_PROMPT, "file": "tests/data/demo/logits_prompt.npy"},
        "window0_last_logits": {"file": "tests/data/demo/logits_window0_last.npy",
                                "window": 0, "position": WIN - 1},
        "samples": [],
        "tokenizer_cases": [],
    }
    np.save(os.path.join(args.ref_out, "logits_window0_last.npy"), last_logits0)
    lp_ids = tok(LOGITS_PROMPT)["input_ids"]
    with torch.no_grad():
        lg = m(input_ids=torch.tensor([lp_ids]), use_cache=False).logits[0].float().numpy()
    np.save(os.path.join(args.ref_out, "logits_prompt.npy"), lg.astype(np.float32))
    ref["logits"].update({"prompt_ids": list(lp_ids), "shape": list(lg.shape)})

    # 3. Greedy samples.
    for s in SAMPLES:
        entry = {"name": s["name"]}
        if "messages" in s:
            prompt = tok.apply_chat_template(s["messages"], tokenize=False, add_generation_prompt=True)
            p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
            via = tok.apply_chat_template(s["messages"], tokenize=True, add_generation_prompt=True)
            if hasattr(via, "keys"):
                via = via["input_ids"]
            entry["template_ids_agree"] = list(via) == list(p_ids)
            entry["messages"] = s["messages"]
        elif "heldout_prefix" in s:
            p_ids = [BOS] + ids[: s["heldout_prefix"]]
            prompt = tok.decode(p_ids)
        else:
            prompt = s["prompt"]
            p_ids = tok(prompt)["input_ids"]
        g_ids, margins = greedy(m, p_ids, 32)
        entry.update({"prompt": prompt, "prompt_ids": list(p_ids), "greedy_ids": g_ids,
                      "margins": margins, "text": tok.decode(cut_at_eos(g_ids))})
        # The same with transformers' generate (KV cache path), for agreement.
        try:
            with torch.no_grad():
                gen = m.generate(torch.tensor([p_ids]), max_new_tokens=32, do_sample=False,
                                 pad_token_id=0)
            gen_ids = gen[0, len(p_ids):].tolist()  # may stop early at <eos>/<end_of_turn>
            entry["generate_agrees"] = len(gen_ids) > 0 and g_ids[:len(gen_ids)] == gen_ids
        except Exception as e:  # informative only
            entry["generate_agrees"] = "generate failed: %r" % (e,)
        if "messages" in s:
            long_ids, _ = greedy(m, p_ids, 64)
            entry["reply_64"] = tok.decode(cut_at_eos(long_ids), skip_special_tokens=True)
        ref["samples"].append(entry)
        print("SAMPLE %s: %r -> %r (generate agrees: %s, min margin %.4f)"
              % (s["name"], prompt[-80:], entry["text"], entry["generate_agrees"], min(margins)))
        if "reply_64" in entry:
            print("   reply: %r" % entry["reply_64"])

    # 4. Tokenizer cases.
    for t in TOKENIZER_CASES:
        enc = tok(t)["input_ids"]
        r = raw.encode(t).ids
        ref["tokenizer_cases"].append({"text": t, "ids": list(enc), "pieces": tok.convert_ids_to_tokens(enc),
                                       "decoded": tok.decode(enc, skip_special_tokens=True)})
        if list(enc) != r:
            print("TOKENIZER DISAGREE", repr(t), enc, r)
    with open(os.path.join(args.ref_out, "ref.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
    report.update({"ppl": ppl, "mean_nll": mean_nll, "heldout_tokens": len(ids), "windows": n_win,
                   "samples": [{k: e[k] for k in e if k not in ("margins",)} for e in ref["samples"]]})
    with open(args.report, "w", encoding="utf-8") as f:
        json.dump(report, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
