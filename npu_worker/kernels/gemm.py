# An IRON (mlir-aie) design for the NPU worker's GEMM kernel contract
# (npu_worker/xrt/npu_gemm.h):
#
#   C [M, N] = A [M, K] x Bt [N, K]^T
#   bf16: A, Bt bf16, C f32      int8: A, Bt int8, C i32
#   runtime sequence arguments, in order: A, Bt, C
#
# Bt is the weight exactly as model files store it ([out, in], row-major), so
# the host never transposes weights. Layout on the array: one compute core per
# column (row 2), `cols` columns; core c owns output columns
# [c * N/cols, (c+1) * N/cols). Every core sees all of A (m x k tiles through
# its column's memory tile), its own slice of Bt (n x k tiles, i.e. k x n
# column-major, which the core kernel reads as B column-major) and writes its
# own slice of C (m x n tiles). The memory tiles re-stream tiles into the
# r x s / s x t / r x t blocks the vectorized core kernels expect.
#
# Status: written against mlir-aie's IRON API (aie.iron); NOT built or run
# here (no toolchain, no NPU in this project's CI). See npu_worker/README.md.
#
# Usage: python3 gemm.py --dev npu1|npu2 --dtype bf16|int8 -M 256 -K 1152 -N 1024
#        [--cols 4] [-m 64 -k 64 -n 64] > design.mlir
import argparse
import sys

# Intrinsic block shapes (r x s times s x t) of the AIE-ML (npu1) and AIE-MLv2
# (npu2) vector MACs for each input type.
MAC_DIMS = {
    "npu1": {"bf16": (4, 8, 4), "int8": (4, 8, 8)},
    "npu2": {"bf16": (8, 8, 8), "int8": (8, 8, 8)},
}


def check(cond, what):
    if not cond:
        sys.exit(f"gemm.py: {what}")


def design(dev, dtype, M, K, N, cols, m, k, n):
    import numpy as np
    from aie.iron import Kernel, ObjectFifo, Program, Runtime, Worker
    from aie.iron.controlflow import range_
    from aie.iron.device import NPU1Col4, NPU2
    from aie.iron.placers import SequentialPlacer
    from aie.helpers.taplib import TensorAccessPattern

    try:
        from ml_dtypes import bfloat16
    except ImportError:
        bfloat16 = None
    check(dtype == "int8" or bfloat16 is not None, "bf16 needs the ml_dtypes package")
    in_ty = bfloat16 if dtype == "bf16" else np.int8
    out_ty = np.float32 if dtype == "bf16" else np.int32
    out_name = "f32" if dtype == "bf16" else "i32"
    in_name = "bf16" if dtype == "bf16" else "i8"

    r, s, t = MAC_DIMS[dev][dtype]
    Nc = N // cols  # output columns per core
    check(M % m == 0 and K % k == 0 and N % cols == 0 and Nc % n == 0,
          f"M {M} % m {m}, K {K} % k {k}, N/cols {N}/{cols} % n {n} must all divide")
    check(m % r == 0 and k % s == 0 and n % t == 0,
          f"tile m {m}, k {k}, n {n} must be multiples of the MAC block {r}x{s}x{t}")
    tiles_per_core = (M // m) * (Nc // n)
    k_steps = K // k

    A_ty = np.ndarray[(M * K,), np.dtype[in_ty]]
    B_ty = np.ndarray[(N * K,), np.dtype[in_ty]]
    C_ty = np.ndarray[(M * N,), np.dtype[out_ty]]
    a_ty = np.ndarray[(m, k), np.dtype[in_ty]]
    b_ty = np.ndarray[(n, k), np.dtype[in_ty]]  # a Bt tile = a k x n B tile, column-major
    c_ty = np.ndarray[(m, n), np.dtype[out_ty]]

    # Core kernels from mlir-aie's aie_kernels (mm.cc), compiled by build.sh
    # with DIM_M/K/N = m/k/n into mm_<m>x<k>x<n>.o.
    obj = f"mm_{m}x{k}x{n}.o"
    zero = Kernel(f"zero_{out_name}", obj, [c_ty])
    matmul = Kernel(f"matmul_{in_name}_{out_name}_b_col_maj", obj, [a_ty, b_ty, c_ty])

    # Memory-tile re-streaming into MAC blocks:
    #   A tile [m, k] -> (m/r) x (k/s) blocks of r x s, row-major blocks;
    #   Bt tile [n, k] -> (n/t) x (k/s) blocks of t x s;
    #   C tile: r x t blocks back to row-major [m, n].
    a_dims = [(m // r, r * k), (k // s, s), (r, k), (s, 1)]
    b_dims = [(n // t, t * k), (k // s, s), (t, k), (s, 1)]
    c_dims = [(m // r, r * n), (r, t), (n // t, r * t), (t, 1)]

    workers, a_in, b_in, c_out = [], [], [], []

    def core_fn(of_a, of_b, of_c, zero_fn, matmul_fn):
        for _ in range_(tiles_per_core):
            c = of_c.acquire(1)
            zero_fn(c)
            for _ in range_(k_steps):
                a = of_a.acquire(1)
                b = of_b.acquire(1)
                matmul_fn(a, b, c)
                of_a.release(1)
                of_b.release(1)
            of_c.release(1)

    for col in range(cols):
        fa = ObjectFifo(a_ty, name=f"a{col}")
        fb = ObjectFifo(b_ty, name=f"b{col}")
        fc = ObjectFifo(c_ty, name=f"c{col}")
        a_mem = fa.cons().forward(name=f"a{col}_mem", dims_to_stream=a_dims)
        b_mem = fb.cons().forward(name=f"b{col}_mem", dims_to_stream=b_dims)
        c_out_fifo = fc.cons().forward(name=f"c{col}_mem", dims_to_stream=c_dims)
        workers.append(Worker(core_fn, [a_mem.cons(), b_mem.cons(), fc.prod(), zero, matmul]))
        a_in.append(fa)
        b_in.append(fb)
        c_out.append(c_out_fifo)

    rt = Runtime()
    with rt.sequence(A_ty, B_ty, C_ty) as (A, Bt, C):
        rt.start(*workers)
        for row in range(M // m):
            tg = rt.task_group()
            for col in range(cols):
                # A row block [m, K], once per n-tile of this core's slice
                # (outermost size with stride 0 repeats it).
                a_tap = TensorAccessPattern((M, K), row * m * K,
                                            [Nc // n, k_steps, m, k], [0, k, K, 1])
                # This core's Bt slice [Nc, K] as n x k tiles, k fastest.
                b_tap = TensorAccessPattern((N, K), col * Nc * K,
                                            [Nc // n, k_steps, n, k], [n * K, k, K, 1])
                # This core's C slice of the row block: m x n tiles.
                c_tap = TensorAccessPattern((M, N), row * m * N + col * Nc,
                                            [1, Nc // n, m, n], [0, n, N, 1])
                rt.fill(a_in[col].prod(), A, tap=a_tap, task_group=tg)
                rt.fill(b_in[col].prod(), Bt, tap=b_tap, task_group=tg)
                rt.drain(c_out[col].cons(), C, tap=c_tap, task_group=tg, wait=True)
            rt.finish_task_group(tg)

    device = NPU1Col4() if dev == "npu1" else NPU2()
    return Program(device, rt).resolve_program(SequentialPlacer())


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--dev", choices=["npu1", "npu2"], required=True)
    p.add_argument("--dtype", choices=["bf16", "int8"], required=True)
    p.add_argument("-M", type=int, required=True)
    p.add_argument("-K", type=int, required=True)
    p.add_argument("-N", type=int, required=True)
    p.add_argument("--cols", type=int, default=0, help="columns used (default: 4 npu1, 8 npu2)")
    p.add_argument("-m", type=int, default=64)
    p.add_argument("-k", type=int, default=64)
    p.add_argument("-n", type=int, default=0, help="default: the largest of 64/32/16 that fits")
    a = p.parse_args()
    cols = a.cols or (4 if a.dev == "npu1" else 8)
    n = a.n
    if n == 0:
        n = next((c for c in (64, 32, 16) if (a.N // cols) % c == 0 and a.N % cols == 0), 0)
        check(n > 0, f"N {a.N} does not split into {cols} columns of 16-wide tiles")
    try:
        module = design(a.dev, a.dtype, a.M, a.K, a.N, cols, a.m, a.k, n)
    except ImportError as e:
        sys.exit(f"gemm.py: needs the mlir-aie toolchain's Python packages ({e}); "
                 "see npu_worker/README.md")
    print(module)


if __name__ == "__main__":
    main()
