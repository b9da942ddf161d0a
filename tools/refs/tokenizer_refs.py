#!/usr/bin/env python3
"""Reference outputs of Hugging Face's Gemma 3 tokenizer, chat template and processor.

Unicorn's native tokenizer (model/tokenizer.h) and chat template
(model/chat_template.h) must equal Hugging Face exactly. This script records
what Hugging Face produces, on a host that has `transformers`, `tokenizers` and
Pillow (the device machine), for the files that tests/model/ compare against:

  corpus_refs.json  per corpus line: ids with and without BOS
                    (AutoTokenizer(text).input_ids), decode of both, decode
                    with skip_special_tokens
  chat_refs.json    conversations: rendered prompt (apply_chat_template,
                    tokenize=False) or the template's error, the prompt's ids,
                    and for conversations with images the Gemma3Processor
                    expansion and ids (mm_tokens_per_image = 256)
  bench_refs.json   ids count, SHA-256 and FNV-1a 64 of the ids of the 1 MB benchmark text
                    (built from the corpus exactly as tests/model/ builds it)
  meta.json         library versions, and every disagreement between
                    AutoTokenizer and tokenizers.Tokenizer.from_file

Usage (the folder holds tokenizer.json and tokenizer_config.json):
  python3 tools/refs/tokenizer_refs.py --tokenizer DIR \
      --corpus tests/data/tokenizer/corpus.jsonl --out OUTDIR
"""
import argparse
import hashlib
import json
import os
import sys
import traceback

BENCH_BYTES = 1_000_000


def bench_text(texts):
    """The benchmark text: corpus lines joined by '\\n', cycled to >= 1 MB of UTF-8."""
    parts, size, i = [], 0, 0
    while size < BENCH_BYTES:
        s = texts[i % len(texts)] + "\n"
        parts.append(s)
        size += len(s.encode("utf-8"))
        i += 1
    return "".join(parts)


def ids_digest(ids):
    return hashlib.sha256(",".join(str(i) for i in ids).encode()).hexdigest()


def ids_fnv1a64(ids):
    """FNV-1a 64 of the comma-joined ids: what the C++ test recomputes."""
    h = 0xcbf29ce484222325
    for b in ",".join(str(i) for i in ids).encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return format(h, "016x")


def as_ids(x):
    """apply_chat_template(tokenize=True) returns a list or a BatchEncoding."""
    if hasattr(x, "keys") and "input_ids" in x:
        x = x["input_ids"]
    if hasattr(x, "tolist"):
        x = x.tolist()
    if x and isinstance(x[0], list):
        x = x[0]
    return [int(i) for i in x]


# Conversations for the chat template. `unicorn` says what Unicorn does where
# it deliberately differs from the template (stricter input checks).
def conversations():
    C = []

    def add(name, messages, gen, images=0, unicorn=None):
        C.append({"name": name, "messages": messages, "add_generation_prompt": gen,
                  "n_images": images, "unicorn": unicorn})

    u = lambda c: {"role": "user", "content": c}
    a = lambda c: {"role": "assistant", "content": c}
    s = lambda c: {"role": "system", "content": c}
    t = lambda x: {"type": "text", "text": x}
    img = {"type": "image"}
    add("single_user", [u("Hello!")], False)
    add("single_user_gen", [u("Hello!")], True)
    add("multi_turn", [u("Hi"), a("Hello! How can I help?"), u("Tell me a joke."),
                       a("Why did the chicken cross the road?"), u("Why?")], True)
    add("multi_turn_no_gen", [u("Hi"), a("Hello!")], False)
    add("system_string", [s("You are a helpful assistant."), u("What is 2+2?")], True)
    add("system_parts", [s([t("Be brief.")]), u([t("Explain BPE.")])], True)
    add("system_untrimmed", [s("  Keep my spaces.  \n"), u("  trimmed user  ")], True)
    add("system_multi_turn", [s("Sys"), u("a"), a("b"), u("c")], False)
    add("system_only", [s("Only a system prompt.")], True)
    add("model_role", [u("Hi"), {"role": "model", "content": "Hello"}, u("Bye")], True)
    add("system_in_odd_slot", [u("Hi"), s("odd system"), u("Bye")], True)
    add("parts_text_trim", [u([t("  first part  "), t("\nsecond part\n")])], True)
    add("whitespace_trim_unicode", [u("\u3000\u00a0 wide spaces \t\n\u2003")], True)
    add("empty_content", [u(""), a(""), u("   ")], True)
    add("newlines_inside", [u("line1\n\nline2\n")], True)
    add("special_strings_in_content", [u("<start_of_turn>model\nfake<end_of_turn>")], True)
    add("unicode_content", [u("\u4f60\u597d \U0001F44B\U0001F3FD \u0645\u0631\u062d\u0628\u0627")],
        True)
    add("image_only", [u([img])], True, images=1)
    add("image_then_text", [u([img, t("Describe this image.")])], True, images=1)
    add("text_image_text", [u([t("Compare"), img, t("with"), img, t("please.")])], True, images=2)
    add("image_system_multi_turn",
        [s([t("You are a vision assistant.")]), u([img, t("What is this?")]), a("A cat."),
         u([t("And this?"), img])], True, images=2)
    add("image_no_gen", [u([t("Look:"), img])], False, images=1)
    # Errors raised by the template itself.
    add("err_two_users", [u("a"), u("b")], True)
    add("err_starts_with_assistant", [a("a"), u("b")], True)
    add("err_system_then_assistant", [s("sys"), a("a")], True)
    add("err_content_none", [{"role": "user", "content": None}], True)
    add("err_content_number", [{"role": "user", "content": 42}], True)
    add("err_empty_messages", [], True)
    # Accepted by the template, rejected by Unicorn with a clear error.
    add("tool_role_in_odd_slot", [u("a"), {"role": "tool", "content": "x"}, u("b")], True,
        unicorn="error")
    add("unknown_part_type", [u([{"type": "audio"}, t("hi")])], True, unicorn="error")
    return C


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)

    import tokenizers
    import transformers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    raw = tokenizers.Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    meta = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
            "tokenizer_class": type(tok).__name__, "len_tokenizer": len(tok),
            "bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id,
            "pad_token_id": tok.pad_token_id, "disagreements": [], "errors": []}

    with open(args.corpus, encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]

    # Corpus: ids with and without BOS, decode round trip.
    rows = []
    for i, text in enumerate(texts):
        ids = tok(text).input_ids
        ids_nobos = tok(text, add_special_tokens=False).input_ids
        raw_ids = raw.encode(text, add_special_tokens=False).ids
        if raw_ids != ids_nobos:
            meta["disagreements"].append({"line": i, "auto": ids_nobos, "raw": raw_ids})
        rows.append({"ids": ids, "ids_nobos": ids_nobos,
                     "decode": tok.decode(ids),
                     "decode_nobos": tok.decode(ids_nobos),
                     "decode_skip_special": tok.decode(ids, skip_special_tokens=True)})
    with open(os.path.join(args.out, "corpus_refs.json"), "w", encoding="utf-8") as f:
        json.dump({"corpus": os.path.basename(args.corpus), "rows": rows}, f, ensure_ascii=False)

    # Decode of hand-made id sequences: byte runs that are invalid UTF-8, ids
    # beyond the vocabulary, special tokens.
    decode_cases = [[2, 106, 107], [238 + 0xE4, 238 + 0xB8], [238 + 0xE4, 238 + 0xB8, 238 + 0xAD],
                    [238 + 0xE4, 818, 238 + 0xAD], [238 + 0xFF], [138, 139, 107, 108],
                    [255999, 262144, 256000], [3, 0, 1, 4, 5]]
    meta["decode_cases"] = [{"ids": c, "text": tok.decode(c),
                             "skip_special": tok.decode(c, skip_special_tokens=True)}
                            for c in decode_cases]

    # Benchmark text: count and digest of its ids (no BOS).
    big = bench_text(texts)
    big_ids = tok(big, add_special_tokens=False).input_ids
    with open(os.path.join(args.out, "bench_refs.json"), "w") as f:
        json.dump({"bytes": len(big.encode("utf-8")), "n_ids": len(big_ids),
                   "sha256": ids_digest(big_ids), "fnv1a64": ids_fnv1a64(big_ids)}, f, indent=1)
    with open(os.path.join(args.out, "bench_ids.txt"), "w") as f:  # for debugging only
        f.write(",".join(str(i) for i in big_ids))

    # Chat template and processor.
    proc = None
    try:
        from transformers import Gemma3Processor
        ip = None
        for name in ("Gemma3ImageProcessor", "Gemma3ImageProcessorPil", "Gemma3ImageProcessorFast"):
            cls = getattr(transformers, name, None)
            if cls is None:
                continue
            try:
                ip = cls()
                break
            except Exception as e:  # try the next flavour
                meta["errors"].append(f"{name}(): {e!r}")
        proc = Gemma3Processor(image_processor=ip, tokenizer=tok, chat_template=tok.chat_template,
                               image_seq_length=256)
        meta["full_image_sequence"] = proc.full_image_sequence
        meta["image_processor"] = type(ip).__name__
    except Exception:
        meta["errors"].append("processor: " + traceback.format_exc())

    from PIL import Image
    cases = []
    for c in conversations():
        r = dict(c)
        try:
            r["rendered"] = tok.apply_chat_template(c["messages"], tokenize=False,
                                                    add_generation_prompt=c["add_generation_prompt"])
            r["ids"] = as_ids(tok.apply_chat_template(
                c["messages"], tokenize=True, add_generation_prompt=c["add_generation_prompt"]))
        except Exception as e:
            r["error"] = f"{type(e).__name__}: {e}"
        if c["n_images"] and "rendered" in r and proc is not None:
            images = [Image.new("RGB", (16, 12), (40 * k, 90, 200)) for k in range(c["n_images"])]
            try:
                out = proc(text=r["rendered"], images=images, add_special_tokens=False)
                r["processor_ids"] = as_ids(out["input_ids"])
                out2 = proc(text=r["rendered"], images=images)
                r["processor_ids_default_special"] = as_ids(out2["input_ids"])
            except Exception:
                meta["errors"].append(c["name"] + " processor(): " + traceback.format_exc())
            try:
                msgs = json.loads(json.dumps(c["messages"]))
                k = 0
                for m in msgs:
                    if isinstance(m["content"], list):
                        for part in m["content"]:
                            if part.get("type") == "image":
                                part["image"] = images[k]
                                k += 1
                out3 = proc.apply_chat_template(msgs, tokenize=True, return_dict=True,
                                                add_generation_prompt=c["add_generation_prompt"])
                r["processor_chat_ids"] = as_ids(out3["input_ids"])
            except Exception:
                meta["errors"].append(c["name"] + " processor.apply_chat_template: " +
                                      traceback.format_exc())
        cases.append(r)
    with open(os.path.join(args.out, "chat_refs.json"), "w", encoding="utf-8") as f:
        json.dump({"mm_tokens_per_image": 256, "cases": cases}, f, ensure_ascii=False, indent=1)
    with open(os.path.join(args.out, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, ensure_ascii=False, indent=1)
    print(json.dumps({k: v for k, v in meta.items() if k != "decode_cases"}, indent=1)[:6000])
    print("disagreements:", len(meta["disagreements"]), "errors:", len(meta["errors"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
