#!/usr/bin/env python3
"""Builds a tiny Gemma-3-shaped tokenizer whose vocabulary has exactly N pieces.

The tiny test models have vocab_size 512 / 640 while Gemma 3's real tokenizer
has 262,144 pieces, so neither the real tokenizer nor llama.cpp's converter
would fit them. This writes, for one vocab size, the three files a Gemma 3
checkpoint folder carries:

  tokenizer.model        SentencePiece ModelProto (BPE, byte_fallback), encoded
                         here by hand (no protobuf package needed); <pad> <eos>
                         <bos> are CONTROL, <unk> UNKNOWN, the other added
                         tokens USER_DEFINED, the bytes BYTE, the rest NORMAL
                         with score -rank
  tokenizer.json         the same vocabulary as a Hugging Face `tokenizers` BPE
                         (byte_fallback, ' ' -> U+2581 normalizer, BOS template)
  tokenizer_config.json  special tokens, add_bos_token, Gemma's chat template

Layout of ids (same ids as the real Gemma 3 tokenizer where they exist):
  0..237     copied from the real tokenizer: <pad> <eos> <bos> <unk> <mask>
             [multimodal] <unused0..98> <start_of_turn> <end_of_turn>,
             newline runs, U+2581 runs, HTML tags (all "added tokens")
  238..493   the 256 byte-fallback pieces <0x00>..<0xFF>
  494..N-1   a small hand-written BPE vocabulary (PIECES below), in priority
             order; ids given with --special (e.g. 600:<start_of_image>) are
             reserved for extra special tokens and skipped by the fill.

Needs only the Python standard library. The real tokenizer files are read
from --gemma-dir (default ../shared/gemma3-tokenizer beside the repository).

Usage:
  make_tokenizer.py --vocab 512 --out DIR
  make_tokenizer.py --vocab 640 --special '600:<start_of_image>' \
      --special '601:<end_of_image>' --special '602:<image_soft_token>' --out DIR
"""

import argparse
import json
import os
import struct
import sys

N_REAL_ADDED = 238  # ids 0..237 are added tokens in the real tokenizer
BYTE_BASE = 238  # <0x00> is id 238
FIRST_NORMAL = BYTE_BASE + 256  # 494

# The normal pieces in priority order. A str is a single character (an initial
# BPE symbol); a (left, right) pair is a merge whose result is left + right.
PIECES = [
    # 18 pieces: all a 512-vocab tokenizer has room for
    "\u2581", "e", "t", "a", "o", "n", "i", "s", "r", "h",
    ("\u2581", "t"), ("h", "e"), ("\u2581t", "he"), ("i", "n"), ("e", "r"),
    ("\u2581", "a"), ("o", "n"), ("a", "t"),
    # further single characters
    "l", "d", "c", "u", "m", "f", "p", "g", "w", "y", "b", "v", "k", "x", "j",
    "q", "z",
    "T", "A", "I", "S", "H", "W", "O", "B", "C", "M",
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9",
    ".", ",", "!", "?", "'", "-", ":", ";", "(", ")", '"',
    # merges
    ("\u2581", "s"), ("\u2581", "w"), ("\u2581", "c"), ("\u2581", "o"),
    ("\u2581", "b"), ("\u2581", "f"), ("\u2581", "m"), ("\u2581", "p"),
    ("\u2581", "i"), ("\u2581", "d"), ("\u2581", "h"), ("\u2581", "l"),
    ("\u2581", "T"), ("\u2581", "I"), ("\u2581", "A"), ("\u2581", "S"),
    ("r", "e"), ("e", "n"), ("e", "s"), ("a", "n"), ("i", "t"), ("i", "s"),
    ("o", "r"), ("a", "r"), ("a", "l"), ("l", "e"), ("e", "d"), ("o", "u"),
    ("n", "d"), ("n", "g"), ("s", "t"),
    ("in", "g"), ("i", "on"), ("en", "t"), ("an", "d"), ("\u2581a", "nd"),
    ("\u2581o", "f"), ("\u2581t", "o"), ("\u2581i", "n"), ("\u2581i", "s"),
    ("\u2581i", "t"), ("\u2581b", "e"), ("\u2581w", "e"), ("\u2581h", "e"),
    ("\u2581o", "n"), ("\u2581t", "h"), ("\u2581w", "h"),
    ("v", "e"), ("t", "h"), ("h", "a"), ("h", "i"), ("l", "l"), ("m", "e"),
    ("s", "e"), ("c", "e"), ("d", "e"), ("t", "e"), ("t", "i"), ("r", "o"),
    ("r", "i"), ("l", "i"), ("l", "a"), ("m", "a"),
    ("a", "s"), ("\u2581th", "at"), ("\u2581th", "is"), ("\u2581f", "or"),
    ("\u2581a", "re"), ("\u2581w", "as"), ("\u2581T", "he"), ("\u2581a", "n"),
    ("\u2581a", "t"), ("\u2581s", "t"), ("\u2581c", "o"), ("\u2581m", "a"),
    ("\u2581p", "ro"), ("\u2581d", "e"),
]

# SentencePiece piece types (sentencepiece_model.proto).
SP_NORMAL, SP_UNKNOWN, SP_CONTROL, SP_USER_DEFINED, SP_UNUSED, SP_BYTE = 1, 2, 3, 4, 5, 6


# ---- minimal protobuf encoder ------------------------------------------------
def _varint(n):
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field, wire):
    return _varint((field << 3) | wire)


def pb_int(field, v):
    return _key(field, 0) + _varint(int(v))


def pb_bool(field, v):
    return pb_int(field, 1 if v else 0)


def pb_float(field, v):
    return _key(field, 5) + struct.pack("<f", v)


def pb_bytes(field, b):
    if isinstance(b, str):
        b = b.encode("utf-8")
    return _key(field, 2) + _varint(len(b)) + b


def sp_model_proto(pieces, vocab_size):
    """pieces: list of (piece, score, type). Returns serialized ModelProto."""
    out = bytearray()
    for piece, score, typ in pieces:  # field 1: repeated SentencePiece
        sp = pb_bytes(1, piece) + pb_float(2, score) + pb_int(3, typ)
        out += pb_bytes(1, sp)
    trainer = b"".join([  # field 2: TrainerSpec
            pb_int(3, 2),  # model_type = BPE
            pb_int(4, vocab_size),
            pb_bool(25, True),  # split_digits (as Gemma's)
            pb_bool(26, True),  # allow_whitespace_only_pieces
            pb_bool(35, True),  # byte_fallback
            pb_int(40, 3),  # unk_id
            pb_int(41, 2),  # bos_id
            pb_int(42, 1),  # eos_id
            pb_int(43, 0),  # pad_id
            pb_bytes(45, "<unk>"),
            pb_bytes(46, "<bos>"),
            pb_bytes(47, "<eos>"),
            pb_bytes(48, "<pad>"),
    ])
    out += pb_bytes(2, trainer)
    normalizer = b"".join([  # field 3: NormalizerSpec
            pb_bytes(1, "identity"),
            pb_bool(3, False),  # add_dummy_prefix
            pb_bool(4, False),  # remove_extra_whitespaces
            pb_bool(5, True),  # escape_whitespaces
    ])
    out += pb_bytes(3, normalizer)
    return bytes(out)


# ---- vocabulary ----------------------------------------------------------------
def build(vocab_size, specials, gemma_dir):
    with open(os.path.join(gemma_dir, "tokenizer.json"), encoding="utf-8") as f:
        real = json.load(f)
    with open(os.path.join(gemma_dir, "tokenizer_config.json"), encoding="utf-8") as f:
        real_cfg = json.load(f)
    real_added = {a["id"]: a for a in real["added_tokens"]}
    real_vocab_inv = {i: s for s, i in real["model"]["vocab"].items()}
    by_content = {a["content"]: a for a in real["added_tokens"]}

    vocab = [None] * vocab_size  # id -> piece
    kind = [None] * vocab_size  # "added" | "byte" | "normal"
    added = {}  # id -> added-token record (tokenizer.json schema)
    for i in range(N_REAL_ADDED):
        a = dict(real_added[i])
        assert real_vocab_inv[i] == a["content"], i
        vocab[i], kind[i], added[i] = a["content"], "added", a
    for b in range(256):
        piece = "<0x%02X>" % b
        assert real_vocab_inv[BYTE_BASE + b] == piece
        vocab[BYTE_BASE + b], kind[BYTE_BASE + b] = piece, "byte"
    for sid, content in specials.items():
        assert FIRST_NORMAL <= sid < vocab_size, sid
        a = dict(by_content.get(content, {
                "content": content, "single_word": False, "lstrip": False,
                "rstrip": False, "normalized": False, "special": True}))
        a["id"] = sid
        vocab[sid], kind[sid], added[sid] = content, "added", a

    free = [i for i in range(FIRST_NORMAL, vocab_size) if vocab[i] is None]
    if len(PIECES) < len(free):
        sys.exit("make_tokenizer: only %d pieces for %d free ids" % (len(PIECES), len(free)))
    normal_rank = {}  # piece -> priority (0 = merged first)
    for rank, (sid, p) in enumerate(zip(free, PIECES)):
        if isinstance(p, tuple):
            left, right = p
            assert left in normal_rank and right in normal_rank, p
            p = left + right
        assert p not in normal_rank, p
        vocab[sid], kind[sid] = p, "normal"
        normal_rank[p] = rank

    # Merges: every split of a multi-character piece into two normal pieces,
    # ordered by the priority of the result (what SentencePiece's BPE does:
    # it merges the adjacent pair whose concatenation has the best score).
    merges = []
    for p, _ in sorted(normal_rank.items(), key=lambda kv: kv[1]):
        for cut in range(1, len(p)):
            if p[:cut] in normal_rank and p[cut:] in normal_rank:
                merges.append([p[:cut], p[cut:]])

    # ---- tokenizer.model
    sp_pieces = []
    for i in range(vocab_size):
        if kind[i] == "byte":
            sp_pieces.append((vocab[i], 0.0, SP_BYTE))
        elif kind[i] == "normal":
            sp_pieces.append((vocab[i], float(-normal_rank[vocab[i]]), SP_NORMAL))
        elif i == 3:
            sp_pieces.append((vocab[i], 0.0, SP_UNKNOWN))
        elif i in (0, 1, 2):  # <pad> <eos> <bos>: never produced from text
            sp_pieces.append((vocab[i], 0.0, SP_CONTROL))
        else:
            # Every other added token, special ones (<start_of_turn>, image
            # tokens) included, is matched as a whole in the input text, as
            # tokenizer.json's added tokens are; tokenizer_config.json still
            # marks which are special.
            sp_pieces.append((vocab[i], 0.0, SP_USER_DEFINED))
    model_bytes = sp_model_proto(sp_pieces, vocab_size)

    # ---- tokenizer.json (pipeline copied from the real Gemma 3 tokenizer.json)
    tok = {
            "version": real["version"],
            "truncation": None,
            "padding": None,
            "added_tokens": [added[i] for i in sorted(added)],
            "normalizer": real["normalizer"],
            "pre_tokenizer": real["pre_tokenizer"],
            "post_processor": real["post_processor"],
            "decoder": real["decoder"],
            "model": {
                    "type": "BPE",
                    "dropout": None,
                    "unk_token": "<unk>",
                    "continuing_subword_prefix": None,
                    "end_of_word_suffix": None,
                    "fuse_unk": True,
                    "byte_fallback": True,
                    "ignore_merges": False,
                    "vocab": {vocab[i]: i for i in range(vocab_size)},
                    "merges": merges,
            },
    }
    assert len(tok["model"]["vocab"]) == vocab_size, "duplicate pieces"

    # ---- tokenizer_config.json
    cfg = {k: v for k, v in real_cfg.items() if k != "added_tokens_decoder"}
    cfg["added_tokens_decoder"] = {
            str(i): {k: added[i][k] for k in
                              ("content", "lstrip", "normalized", "rstrip", "single_word", "special")}
            for i in sorted(added)}
    names = {"<start_of_image>": "boi_token", "<end_of_image>": "eoi_token",
                      "<image_soft_token>": "image_token"}
    present = {names[c] for c in specials.values() if c in names}
    for key in ("boi_token", "eoi_token", "image_token"):
        if key not in present:
            cfg.pop(key, None)
    cfg["extra_special_tokens"] = {
            k: v for k, v in cfg.get("extra_special_tokens", {}).items() if k in present}
    if not present:
        cfg.pop("extra_special_tokens", None)
        cfg.pop("processor_class", None)
    cfg["model_max_length"] = 2048
    return model_bytes, tok, cfg


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--special", action="append", default=[],
                                    help="ID:CONTENT, an extra special token at a fixed id")
    ap.add_argument("--gemma-dir",
                                    default=os.path.join(os.path.dirname(repo), "shared", "gemma3-tokenizer"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    specials = {}
    for s in args.special:
        sid, content = s.split(":", 1)
        specials[int(sid)] = content
    model_bytes, tok, cfg = build(args.vocab, specials, args.gemma_dir)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "tokenizer.model"), "wb") as f:
        f.write(model_bytes)
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
        f.write("\n")
    with open(os.path.join(args.out, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print("make_tokenizer: %d pieces, %d merges -> %s" %
                (args.vocab, len(tok["model"]["merges"]), args.out))


if __name__ == "__main__":
    main()
