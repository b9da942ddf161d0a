#!/usr/bin/python3
"""Writes tests/data/gguf/gguf_py_sample.gguf with llama.cpp's gguf-py.

A GGUF written by another program than ours, for tests/model/gguf_py_test.cc:
metadata of every value type (scalars and arrays), tensors of types F32, F16,
BF16, Q8_0 and Q4_0 (quantized by gguf-py's own quantizers, which are bit-exact
with ggml's reference ones), and a non-default alignment of 64. Every value is
a closed-form function of its index, so the test recomputes it in C++.

Usage (Debian's python3 with python3-numpy; llama.cpp's source tree from
`npm pack node-llama-cpp`, llama/gitRelease.bundle, cloned outside the repo):
    /usr/bin/python3 tools/refs/write_gguf_py_sample.py /work/llama.cpp-src \
        tests/data/gguf/gguf_py_sample.gguf
"""
import sys
from pathlib import Path

import numpy as np


def values(n: int, scale: float) -> np.ndarray:
    # sin(k * 0.37) * scale, k = 0..n-1, in float32
    return (np.sin(np.arange(n, dtype=np.float64) * 0.37) * scale).astype(np.float32)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    sys.path.insert(0, str(Path(sys.argv[1]) / "gguf-py"))
    import gguf  # noqa: E402
    from gguf import GGMLQuantizationType as Q  # noqa: E402
    from gguf import GGUFValueType as V  # noqa: E402

    w = gguf.GGUFWriter(sys.argv[2], arch="gemma3")
    w.add_custom_alignment(64)
    w.add_uint8("test.u8", 250)
    w.add_int8("test.i8", -120)
    w.add_uint16("test.u16", 65000)
    w.add_int16("test.i16", -32000)
    w.add_uint32("test.u32", 4_000_000_000)
    w.add_int32("test.i32", -2_000_000_000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "Gemma \u2581 \U0001F984")
    w.add_uint64("test.u64", 18_000_000_000_000_000_000)
    w.add_int64("test.i64", -9_000_000_000_000_000_000)
    w.add_float64("test.f64", 2.718281828459045)
    w.add_array("test.arr.str", ["a", "", "\u2581b", "<0x0A>"])
    w.add_array("test.arr.i32", [-1, 0, 1, 2_000_000_000])
    w.add_array("test.arr.f32", [0.5, -1.25, 3e-7])
    w.add_array("test.arr.bool", [True, False, True])
    w.add_key_value("test.arr.u8", [0, 1, 255], V.ARRAY, sub_type=V.UINT8)
    w.add_key_value("test.arr.i16", [-300, 300], V.ARRAY, sub_type=V.INT16)
    w.add_key_value("test.arr.u64", [2**63 + 5], V.ARRAY, sub_type=V.UINT64)
    w.add_key_value("test.arr.f64", [1e300, -0.0], V.ARRAY, sub_type=V.FLOAT64)

    # numpy shapes are PyTorch order; gguf-py reverses them into ne.
    w.add_tensor("t.f32", values(3 * 5, 1.0).reshape(3, 5))
    w.add_tensor("t.f16", values(4 * 8, 2.0).reshape(4, 8).astype(np.float16))
    bf16 = gguf.quants.quantize(values(2 * 32, 3.0).reshape(2, 32), Q.BF16)
    w.add_tensor("t.bf16", bf16, raw_shape=bf16.shape, raw_dtype=Q.BF16)
    q8 = gguf.quants.quantize(values(2 * 64, 0.5).reshape(2, 64), Q.Q8_0)
    w.add_tensor("t.q8_0", q8, raw_shape=q8.shape, raw_dtype=Q.Q8_0)
    q4 = gguf.quants.quantize(values(3 * 32, 0.25).reshape(3, 32), Q.Q4_0)
    w.add_tensor("t.q4_0", q4, raw_shape=q4.shape, raw_dtype=Q.Q4_0)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
