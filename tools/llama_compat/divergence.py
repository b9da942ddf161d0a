#!/usr/bin/env python3
"""Where two greedy continuations of one prompt part, and how close a call it
was for Unicorn: the margin, in Unicorn's own logits, between the token it
chose and the token the other engine chose, relative to the logit standard
deviation at that position. A margin near zero means a near-tie that any
change of summation order or activation rounding may flip.

  divergence.py UNICORN_BIN MODEL_DIR GGUF PROMPT OURS THEIRS [--backend B]
Prints one line: "diverge at token K: margin M of the logit std (ours 'a', theirs 'b')".
Needs Debian's python3-numpy.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np


def ids(unicorn, model_dir, text):
    out = subprocess.run([unicorn, "tokenize", "--model", model_dir, "--text", text],
                         check=True, capture_output=True, text=True).stdout
    return [int(x) for x in out.replace(",", " ").split()]


def main():
    unicorn, model_dir, gguf, prompt, ours, theirs = sys.argv[1:7]
    backend = sys.argv[8] if len(sys.argv) > 8 and sys.argv[7] == "--backend" else "cpu"
    a, b = ids(unicorn, model_dir, prompt + ours), ids(unicorn, model_dir, prompt + theirs)
    k = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
    if k >= len(a) or k >= len(b) or k == 0:
        print(f"no token divergence (texts differ only after re-tokenizing, at token {k})")
        return
    with tempfile.TemporaryDirectory() as tmp:
        npy = os.path.join(tmp, "logits.npy")
        subprocess.run([unicorn, "logits", "-m", gguf, "--backend", backend, "--tokens",
                        ",".join(map(str, a[:k])), "-o", npy], check=True, capture_output=True)
        row = np.load(npy)[k - 1].astype(np.float64)
    margin = (row[a[k]] - row[b[k]]) / row.std()
    print(f"diverge at token {k}: margin {margin:.4f} of the logit std "
          f"(ours id {a[k]}, theirs id {b[k]})")


if __name__ == "__main__":
    main()
