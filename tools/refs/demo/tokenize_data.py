#!/usr/bin/env python3
"""Tokenizes the prepared text and chat pairs for training (numpy arrays).

  train_ids.npy, val_ids.npy   uint16 token streams of train.txt / val.txt
                               (no <bos>; training windows prepend it)
  chat_train_ids.npy/_mask.npy [n, seq] uint16 / uint8: conversations in Gemma's
  chat_val_ids.npy/_mask.npy   chat format, right-padded with <pad>; mask marks
                               the tokens that are trained on (the model's
                               answers and the <end_of_turn> after each)
A conversation is the chat template's rendering, token by token:
  <bos> { <start_of_turn> "user" \\n Q <end_of_turn> \\n
          <start_of_turn> "model" \\n A <end_of_turn> \\n }*
Training conversations hold 1-4 turns (mostly 1); validation ones 1.
The piecewise ids are checked against AutoTokenizer.apply_chat_template.
"""
import argparse
import json
import os
import random

import numpy as np

BOS, SOT, EOT, NL, PAD = 2, 105, 106, 107, 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--tok", required=True, help="folder with tokenizer.json + tokenizer_config.json")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(args.tok, "tokenizer.json"))
    assert tok.token_to_id("\n") == NL and tok.token_to_id("<start_of_turn>") == SOT

    for part in ("train", "val"):
        with open(os.path.join(args.data, part + ".txt"), encoding="utf-8") as f:
            text = f.read()
        ids = tok.encode(text, add_special_tokens=False).ids
        arr = np.asarray(ids, dtype=np.uint16)
        np.save(os.path.join(args.out, part + "_ids.npy"), arr)
        print("%s: %d chars -> %d tokens" % (part, len(text), len(arr)))

    user = tok.encode("user", add_special_tokens=False).ids
    model = tok.encode("model", add_special_tokens=False).ids
    rng = random.Random(args.seed)
    checks = []
    for part in ("train", "val"):
        with open(os.path.join(args.data, "chat_%s.jsonl" % part), encoding="utf-8") as f:
            pairs = [json.loads(l) for l in f]
        qs = tok.encode_batch([p["q"].strip() for p in pairs], add_special_tokens=False)
        as_ = tok.encode_batch([p["a"].strip() for p in pairs], add_special_tokens=False)
        turns = []
        for p, q, a in zip(pairs, qs, as_):
            ids = [SOT] + user + [NL] + q.ids + [EOT, NL, SOT] + model + [NL]
            mask = [0] * len(ids)
            ids += a.ids + [EOT, NL]
            mask += [1] * (len(a.ids) + 1) + [0]
            if len(ids) + 1 <= args.seq:
                turns.append((ids, mask, p))
        convs, masks = [], []
        i = 0
        while i < len(turns):
            want = 1 if part == "val" else rng.choice([1, 1, 1, 1, 2, 2, 3, 4])
            ids, mask, msgs = [BOS], [0], []
            while i < len(turns) and want > 0 and len(ids) + len(turns[i][0]) <= args.seq:
                ids += turns[i][0]
                mask += turns[i][1]
                msgs += [{"role": "user", "content": turns[i][2]["q"]},
                         {"role": "assistant", "content": turns[i][2]["a"]}]
                i += 1
                want -= 1
            if len(checks) < 300 and rng.random() < 0.05:
                checks.append((list(ids), msgs))
            pad = args.seq - len(ids)
            convs.append(ids + [PAD] * pad)
            masks.append(mask + [0] * pad)
        c = np.asarray(convs, dtype=np.uint16)
        m = np.asarray(masks, dtype=np.uint8)
        np.save(os.path.join(args.out, "chat_%s_ids.npy" % part), c)
        np.save(os.path.join(args.out, "chat_%s_mask.npy" % part), m)
        print("chat %s: %d pairs -> %d conversations, %d trained tokens, %d used tokens"
              % (part, len(turns), len(c), int(m.sum()), int((c != PAD).sum())))

    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(args.tok)
    bad = 0
    for ids, msgs in checks:
        got = hf.apply_chat_template(msgs, tokenize=True, add_generation_prompt=False)
        if hasattr(got, "keys"):
            got = got["input_ids"]
        if list(got) != ids:
            bad += 1
            if bad <= 2:
                print("CHAT MISMATCH\n", ids[:40], "\n", list(got)[:40])
    print("chat template check: %d/%d conversations differ" % (bad, len(checks)))
    with open(os.path.join(args.out, "chat_check.json"), "w") as f:
        json.dump({"checked": len(checks), "differing": bad}, f)


if __name__ == "__main__":
    main()
