"""Reads safetensors files with numpy alone (no torch, no safetensors package)."""

import json
import os
import struct

import numpy as np


def read_safetensors(folder):
    """name -> float32 numpy array for every *.safetensors file in folder."""
    out = {}
    for fn in sorted(os.listdir(folder)):
        if not fn.endswith(".safetensors"):
            continue
        with open(os.path.join(folder, fn), "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            header = json.loads(f.read(n))
            data = f.read()
        for name, meta in header.items():
            if name == "__metadata__":
                continue
            a, b = meta["data_offsets"]
            raw = data[a:b]
            dt = meta["dtype"]
            if dt == "F32":
                arr = np.frombuffer(raw, np.float32)
            elif dt == "F16":
                arr = np.frombuffer(raw, np.float16).astype(np.float32)
            elif dt == "BF16":
                arr = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                raise ValueError("%s: dtype %s" % (name, dt))
            out[name] = arr.reshape(meta["shape"]).astype(np.float32)
    return out
