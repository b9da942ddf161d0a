#!/usr/bin/env python3
"""A plain-Python reading of a Gemma-style tokenizer.json (BPE, byte fallback,
added tokens), written from the tokenizers semantics, to check the reference
ids independently and to spell out what the engine's tokenizer must do.
Python stdlib only.

Encoding a text:
  1. split it on added tokens: at each position the longest added-token
     content that starts there wins, scanning left to right (all of Gemma's
     added tokens have normalized=false, so they match the raw text);
  2. every other segment: normalize (each " " becomes "\u2581"); the
     pre-tokenizer (Split on " ") finds no spaces left, so the segment is
     one word;
  3. the word starts as its characters, each its own piece if the vocabulary
     has it, else the UTF-8 bytes as <0xNN> pieces; then repeatedly the
     adjacent pair with the lowest merge rank (leftmost among equals) is
     merged, until no adjacent pair has a merge;
  4. <bos> (id 2) is prepended when special tokens are added.

  python3 tools/refs/demo/tokenizer_ref.py --check
checks the tokenizer cases and sample prompt ids of tests/data/demo/ref.json
(made by transformers) and that heldout.txt still encodes to
tests/data/demo/heldout_ids.json. --write-heldout-ids wrote that file; its
agreement with transformers rests on the token count in ref.json, the first
200 ids (sample plain_long) and the per-window NLLs that numpy_forward.py
reproduces from these ids.
"""
import argparse
import heapq
import json
import os

SPACE = "\u2581"


class Tokenizer:
    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            tj = json.load(f)
        m = tj["model"]
        assert m["type"] == "BPE" and m["byte_fallback"]
        self.vocab = m["vocab"]
        self.inv = {i: s for s, i in self.vocab.items()}
        self.ranks = {}
        for r, mg in enumerate(m["merges"]):
            a, b = mg if isinstance(mg, list) else mg.split(" ", 1)
            self.ranks.setdefault((a, b), r)
        self.added = {a["content"]: a["id"] for a in tj["added_tokens"]}
        for a in tj["added_tokens"]:
            self.inv[a["id"]] = a["content"]
        self.max_added = max(len(c) for c in self.added)
        self.unk = self.vocab[m["unk_token"]]

    def split_added(self, text):
        """[(is_added, str)] in order."""
        out, start, i = [], 0, 0
        while i < len(text):
            hit = None
            for n in range(min(self.max_added, len(text) - i), 0, -1):
                if text[i:i + n] in self.added:
                    hit = text[i:i + n]
                    break
            if hit is None:
                i += 1
                continue
            if start < i:
                out.append((False, text[start:i]))
            out.append((True, hit))
            i += len(hit)
            start = i
        if start < len(text):
            out.append((False, text[start:]))
        return out

    def bpe(self, word):
        pieces = []
        for ch in word:
            if ch in self.vocab:
                pieces.append(ch)
            else:
                pieces.extend("<0x%02X>" % b for b in ch.encode("utf-8"))
        n = len(pieces)
        nxt = list(range(1, n + 1))
        prv = list(range(-1, n - 1))
        alive = [True] * n
        heap = []

        def push(i):
            j = nxt[i]
            if j < n:
                r = self.ranks.get((pieces[i], pieces[j]))
                if r is not None:
                    heapq.heappush(heap, (r, i, pieces[i], pieces[j]))

        for i in range(n - 1):
            push(i)
        while heap:
            r, i, a, b = heapq.heappop(heap)
            j = nxt[i] if i < n else n
            if not alive[i] or j >= n or pieces[i] != a or pieces[j] != b:
                continue  # stale entry
            pieces[i] = a + b
            alive[j] = False
            nxt[i] = nxt[j]
            if nxt[j] < n:
                prv[nxt[j]] = i
            if prv[i] >= 0:
                push(prv[i])
            push(i)
        return [self.vocab.get(pieces[i], self.unk) for i in range(n) if alive[i]]

    def encode(self, text, add_bos=True):
        ids = [2] if add_bos else []
        for is_added, seg in self.split_added(text):
            if is_added:
                ids.append(self.added[seg])
            else:
                ids.extend(self.bpe(seg.replace(" ", SPACE)))
        return ids


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/demo")
    ap.add_argument("--ref", default="tests/data/demo")
    ap.add_argument("--check", action="store_true")
    ap.add_argument("--write-heldout-ids", action="store_true",
                    help="write heldout_ids.json (the ids of heldout.txt, no <bos>)")
    args = ap.parse_args()
    tok = Tokenizer(os.path.join(args.model, "tokenizer.json"))
    with open(os.path.join(args.ref, "ref.json"), encoding="utf-8") as f:
        ref = json.load(f)
    bad = 0
    if args.check:
        for c in ref["tokenizer_cases"]:
            got = tok.encode(c["text"])
            if got != c["ids"]:
                bad += 1
                print("DIFF", repr(c["text"]), got, c["ids"])
        for s in ref["samples"]:
            if s["name"] == "plain_long":  # ids cut from heldout.txt, checked below
                continue
            text = s["prompt"]
            got = tok.encode(text, add_bos="messages" not in s)
            if got != s["prompt_ids"]:
                bad += 1
                print("DIFF", s["name"], got, s["prompt_ids"])
        held_ids = os.path.join(args.ref, "heldout_ids.json")
        if os.path.exists(held_ids) and not args.write_heldout_ids:
            with open(os.path.join(args.ref, "heldout.txt"), encoding="utf-8") as f:
                got = tok.encode(f.read(), add_bos=False)
            with open(held_ids) as f:
                if got != json.load(f):
                    bad += 1
                    print("DIFF heldout.txt ids")
        print("tokenizer check: %d differences" % bad)
    if args.write_heldout_ids:
        with open(os.path.join(args.ref, "heldout.txt"), encoding="utf-8") as f:
            ids = tok.encode(f.read(), add_bos=False)
        assert len(ids) == ref["perplexity"]["tokens"], (len(ids), ref["perplexity"]["tokens"])
        with open(os.path.join(args.ref, "heldout_ids.json"), "w") as f:
            json.dump(ids, f, separators=(",", ":"))
        print("heldout ids: %d" % len(ids))
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
