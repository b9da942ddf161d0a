// Matrix-matrix products for prefill: y = W x for many tokens, tiled in
// shared memory. A workgroup of 256 computes a BM x BN tile (BM output rows
// x BN tokens, 64 or 128 each); each step dequantizes a BM x 32 slice of W
// (one quant block per row) and loads the 32 x BN slice of x, both into
// shared memory (transposed, 16-byte rows), then each invocation
// accumulates a TM x TN sub-tile in F32 registers from vec4 shared loads.
//   W: [m, k] in its GGUF block layout    x: [n, x_stride] F32
//   y: [n, y_stride] F32    bias: [m]      (GEGLU is not supported here)
// Dispatch: (ceil(m / BM), ceil(n / BN), 1).
// Shared memory: 32 * (BM + BN + 8) * 4 bytes (17 KiB at 64 x 64, 33 KiB at 128 x 128).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 3) const uint DTYPE = 0;
layout(constant_id = 5) const uint FLAGS = 0;

#include "push_constants.h"
#include "common.glsl"
#include "dequant.glsl"

layout(constant_id = 6) const uint BM = 64;  // output rows per workgroup: 64 or 128
layout(constant_id = 7) const uint BN = 64;  // tokens per workgroup: 64 or 128
const uint BK = 32;
const uint TX = 16;  // invocations along m (and along n): WG == TX * TX
const uint TM = BM / TX;  // rows per invocation, in groups of 4 (vec4 shared loads)
const uint TN = BN / TX;
const uint PAD = 4;  // keeps rows 16-byte aligned, shifts banks between k

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer X1 { float x1[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#include "matmul_epilogue.glsl"

shared vec4 As[BK][(BM + PAD) / 4];  // W slice, transposed: [k][row]
shared vec4 Bs[BK][(BN + PAD) / 4];  // x slice, transposed: [k][token]

// Invocation (tx, ty) owns rows g*64 + tx*4 + {0..3} and tokens
// g*64 + ty*4 + {0..3} for the groups g of its TM x TN tile.
uint RowOf(uint tx, uint i) { return (i / 4) * 64 + tx * 4 + i % 4; }

void SetA(uint k, uint row, float v) { As[k][row / 4][row % 4] = v; }
void SetB(uint k, uint tok, float v) { Bs[k][tok / 4][tok % 4] = v; }

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % TX, ty = tid / TX;
  const uint m0 = gl_WorkGroupID.x * BM;
  const uint n0 = gl_WorkGroupID.y * BN;
  vec4 acc[TM / 4][TN];
  [[unroll]] for (uint i = 0; i < TM / 4; ++i)
    [[unroll]] for (uint j = 0; j < TN; ++j) acc[i][j] = vec4(0.0);

  const bool w_chunked = DTYPE >= UNICORN_DT_Q8_0 || p.k % 8 == 0;
  const bool x_vec = p.k % 8 == 0 && p.x_stride % 4 == 0;

  for (uint k0 = 0; k0 < p.k; k0 += BK) {
    const bool full = k0 + BK <= p.k;
    // W slice: BM rows x 4 chunks of 8 weights; x slice: BN tokens x 4 runs
    // of 8 floats. Rows past m are clamped (never written), tokens past n zero.
    [[unroll]] for (uint u = 0; u < BM / 64; ++u) {
      const uint cid = tid + 256 * u;
      const uint lrow = cid / 4, lpart = cid % 4;
      const uint wrow = min(m0 + lrow, p.m - 1);
      if (w_chunked && full) {
        const uint c = k0 / 8 + lpart;
        vec4 lo, hi;
        LoadChunk(wrow, p.k, c, lo, hi);
        const uint il = XLo(c) - k0, ih = XHi(c) - k0;
        [[unroll]] for (uint e = 0; e < 4; ++e) {
          SetA(il + e, lrow, lo[e]);
          SetA(ih + e, lrow, hi[e]);
        }
      } else {
        [[unroll]] for (uint e = 0; e < 8; ++e) {
          const uint kk = lpart * 8 + e;
          SetA(kk, lrow, k0 + kk < p.k ? LoadOne(wrow, p.k, k0 + kk) : 0.0);
        }
      }
    }
    [[unroll]] for (uint u = 0; u < BN / 64; ++u) {
      const uint cid = tid + 256 * u;
      const uint ltok = cid / 4, lpart = cid % 4;
      const uint tok = n0 + ltok;
      const bool tok_ok = tok < p.n;
      const uint xoff = min(tok, p.n - 1) * p.x_stride + k0 + lpart * 8;
      if (x_vec && full) {
        const vec4 a = tok_ok ? x4[xoff / 4] : vec4(0.0);
        const vec4 b = tok_ok ? x4[xoff / 4 + 1] : vec4(0.0);
        [[unroll]] for (uint e = 0; e < 4; ++e) {
          SetB(lpart * 8 + e, ltok, a[e]);
          SetB(lpart * 8 + 4 + e, ltok, b[e]);
        }
      } else {
        [[unroll]] for (uint e = 0; e < 8; ++e) {
          const uint kk = lpart * 8 + e;
          SetB(kk, ltok, (tok_ok && k0 + kk < p.k) ? x1[xoff + e] : 0.0);
        }
      }
    }
    barrier();
    [[unroll]] for (uint kk = 0; kk < BK; ++kk) {
      vec4 a[TM / 4];
      float b[TN];
      [[unroll]] for (uint i = 0; i < TM / 4; ++i) a[i] = As[kk][i * 16 + tx];
      [[unroll]] for (uint j = 0; j < TN / 4; ++j) {
        const vec4 bv = Bs[kk][j * 16 + ty];
        b[4 * j] = bv.x;
        b[4 * j + 1] = bv.y;
        b[4 * j + 2] = bv.z;
        b[4 * j + 3] = bv.w;
      }
      [[unroll]] for (uint i = 0; i < TM / 4; ++i)
        [[unroll]] for (uint j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    barrier();
  }

  [[unroll]] for (uint i = 0; i < TM / 4; ++i) {
    [[unroll]] for (uint j = 0; j < TN; ++j) {
      const uint t = n0 + (j / 4) * 64 + ty * 4 + j % 4;
      if (t >= p.n) continue;
      [[unroll]] for (uint e = 0; e < 4; ++e) {
        const uint row = m0 + i * 64 + tx * 4 + e;
        if (row >= p.m) continue;
        StoreOutput(acc[i][j][e], 0.0, row, t * p.y_stride + row);
      }
    }
  }
}
