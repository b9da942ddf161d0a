#!/usr/bin/env python3
"""Trains the demo model's tokenizer and writes it in Gemma 3's exact form.

Layout of the 4096 ids (Gemma's ids wherever Gemma has the piece below 494):
  0..237      Gemma's added tokens with Gemma's ids and flags: <pad>=0 <eos>=1
              <bos>=2 <unk>=3 <mask>=4 [multimodal]=5 <unused0..98>=6..104
              <start_of_turn>=105 <end_of_turn>=106, "\\n" runs 107..137,
              "▁▁".. runs 138..167, HTML tags 168..237
  238..493    byte-fallback pieces <0x00>..<0xFF> (as in Gemma)
  494..4062   3569 pieces learned here by BPE on the training split
  4063..4095  Gemma's tab runs ("\\t" x1..31), <start_of_image>, <end_of_image>
  4096        <image_soft_token>, an added token outside the embedding (Gemma 3
              1B likewise has it at 262144 = its vocab_size)
tokenizer.json copies Gemma's normalizer (Replace " " -> "▁"), pre_tokenizer,
post_processor (prepend <bos>) and decoder verbatim; the BPE model has Gemma's
flags (byte_fallback, fuse_unk, unk <unk>). Training splits words before "▁"
and isolates digits (as Gemma's vocabulary never merges digits); no merge
crosses those boundaries, so encoding the whole text without a pre-tokenizer
gives the same pieces (checked below on the validation split).
tokenizer_config.json is Gemma's (chat template, special token names) with the
added_tokens_decoder of this vocabulary and model_max_length 2048.

Needs the `tokenizers` library (and `transformers` for the final checks).
"""
import argparse
import json
import os

SPACE = "\u2581"


def train_bpe(lines, n_pieces):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.Replace(" ", SPACE)
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(SPACE, behavior="merged_with_next"),
        pre_tokenizers.Digits(individual_digits=True),
    ])
    trainer = trainers.BpeTrainer(vocab_size=n_pieces, min_frequency=2, show_progress=False,
                                  special_tokens=[], max_token_length=16)
    tok.train_from_iterator(lines, trainer=trainer)
    return tok


def parse_merges(merges):
    out = []
    for m in merges:
        if isinstance(m, str):
            a, b = m.split(" ", 1)
        else:
            a, b = m
        out.append([a, b])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skeleton", required=True, help="gemma_skeleton.json")
    ap.add_argument("--train", required=True, help="train.txt (one paragraph a line)")
    ap.add_argument("--val", required=True, help="val.txt, for the equivalence check")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with open(args.skeleton, encoding="utf-8") as f:
        sk = json.load(f)

    head = [a for a in sk["added_tokens"] if a["id"] <= 237]
    tail = [a for a in sk["added_tokens"] if a["id"] > 237]
    assert [a["id"] for a in head] == list(range(238))
    assert tail[-1]["content"] == "<image_soft_token>"
    tail_in_vocab, image_soft = tail[:-1], tail[-1]
    first_learned = sk["byte_piece_first_id"] + 256
    n_learned = args.vocab_size - first_learned - len(tail_in_vocab)

    with open(args.train, encoding="utf-8") as f:
        lines = [l for l in f.read().split("\n") if l]
    trained = train_bpe(lines, n_learned)
    tj = json.loads(trained.to_str())
    tvocab = tj["model"]["vocab"]
    merges = parse_merges(tj["model"]["merges"])
    print("trained pieces %d (wanted %d), merges %d" % (len(tvocab), n_learned, len(merges)))

    vocab = {}
    for a in head:
        vocab[a["content"]] = a["id"]
    for b in range(256):
        vocab["<0x%02X>" % b] = sk["byte_piece_first_id"] + b
    next_id = first_learned
    for piece, _ in sorted(tvocab.items(), key=lambda kv: kv[1]):
        assert piece not in vocab, "learned piece collides with a reserved one: %r" % piece
        vocab[piece] = next_id
        next_id += 1
    added = [dict(a) for a in head]
    # Fewer pieces than asked (small corpus): fill with Gemma-style reserved tokens.
    k = 99
    while next_id < args.vocab_size - len(tail_in_vocab):
        a = dict(head[6], content="<unused%d>" % k, id=next_id)
        added.append(a)
        vocab[a["content"]] = next_id
        next_id += 1
        k += 1
    for a in tail_in_vocab:
        a = dict(a, id=next_id)
        added.append(a)
        vocab[a["content"]] = next_id
        next_id += 1
    assert next_id == args.vocab_size == len(vocab)
    added.append(dict(image_soft, id=args.vocab_size))
    for a, b in merges:
        assert a in vocab and b in vocab and a + b in vocab, (a, b)

    skj = sk["tokenizer_json"]
    out = {
        "version": skj["version"],
        "truncation": skj["truncation"],
        "padding": skj["padding"],
        "added_tokens": added,
        "normalizer": skj["normalizer"],
        "pre_tokenizer": skj["pre_tokenizer"],
        "post_processor": skj["post_processor"],
        "decoder": skj["decoder"],
        "model": dict(sk["model"], vocab=vocab, merges=merges),
    }
    tok_path = os.path.join(args.out, "tokenizer.json")
    with open(tok_path, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=2)

    cfg_src = sk["tokenizer_config"]
    cfg = {}
    for key in ("add_bos_token", "add_eos_token"):
        cfg[key] = cfg_src[key]
    cfg["added_tokens_decoder"] = {
        str(a["id"]): {"content": a["content"], "lstrip": a["lstrip"], "normalized": a["normalized"],
                       "rstrip": a["rstrip"], "single_word": a["single_word"], "special": a["special"]}
        for a in added}
    for key, v in cfg_src.items():
        if key in cfg or key == "processor_class":  # no image processor here
            continue
        cfg[key] = v
    cfg["model_max_length"] = 2048
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)

    # Check 1: the final tokenizer (no pre-tokenizer) gives the trained one's pieces.
    from tokenizers import Tokenizer

    final = Tokenizer.from_file(tok_path)
    with open(args.val, encoding="utf-8") as f:
        val_lines = [l for l in f.read().split("\n") if l]
    bad = 0
    for line in val_lines:
        want = trained.encode(line).tokens
        got = final.encode(line, add_special_tokens=False).tokens
        if want != got:
            bad += 1
            if bad <= 3:
                print("MISMATCH", line[:80], want[:20], got[:20])
    n_tok = sum(len(final.encode(l, add_special_tokens=False).ids) for l in val_lines)
    n_chars = sum(len(l) for l in val_lines)
    print("equivalence: %d/%d val lines differ; val %d chars -> %d tokens (%.2f chars/token)"
          % (bad, len(val_lines), n_chars, n_tok, n_chars / n_tok))
    report = {"pieces_learned": len(tvocab), "merges": len(merges), "val_lines_differing": bad,
              "val_chars_per_token": n_chars / n_tok}
    with open(os.path.join(args.out, "tokenizer_report.json"), "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
