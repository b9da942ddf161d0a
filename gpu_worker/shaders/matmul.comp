// Matrix-matrix products for prefill: y = W x for many tokens, tiled in
// shared memory. A workgroup computes a BM x BN tile (BM output rows x BN
// tokens); each step dequantizes a BM x BK slice of W (one 32-weight block
// per row) and loads the BK x BN slice of x, both into shared memory, then
// each invocation accumulates a TM x TN sub-tile in F32 registers.
//   W: [m, k] in its GGUF block layout    x: [n, x_stride] F32
//   y: [n, y_stride] F32    bias: [m]      (GEGLU is not supported here)
// Dispatch: (ceil(m / BM), ceil(n / BN), 1).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 3) const uint DTYPE = 0;
layout(constant_id = 5) const uint FLAGS = 0;

#include "push_constants.h"
#include "common.glsl"
#include "dequant.glsl"

const uint BM = 64;
const uint BN = 64;
const uint BK = 32;
const uint TX = 16;  // invocations along m (and along n): WG == TX * TX
const uint TM = BM / TX;
const uint TN = BN / TX;
const uint PAD = 4;

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer X1 { float x1[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };

shared float As[BK][BM + PAD];  // W slice, transposed: [k][row]
shared float Bs[BK][BN + PAD];  // x slice, transposed: [k][token]

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % TX, ty = tid / TX;
  const uint m0 = gl_WorkGroupID.x * BM;
  const uint n0 = gl_WorkGroupID.y * BN;
  float acc[TM][TN];
  [[unroll]] for (uint i = 0; i < TM; ++i)
    [[unroll]] for (uint j = 0; j < TN; ++j) acc[i][j] = 0.0;

  // This invocation loads chunk (tid % 4) of W row (tid / 4) and 8 x values
  // of token (tid / 4) per step; rows and tokens past the end are clamped
  // (W) or zero (x).
  const uint lrow = tid / 4, lpart = tid % 4;
  const uint wrow = min(m0 + lrow, p.m - 1);
  const uint tok = n0 + lrow;
  const bool tok_ok = tok < p.n;
  const uint xoff = min(tok, p.n - 1) * p.x_stride;
  const bool w_chunked = DTYPE >= UNICORN_DT_Q8_0 || p.k % 8 == 0;
  const bool x_vec = p.k % 8 == 0 && p.x_stride % 4 == 0;

  for (uint k0 = 0; k0 < p.k; k0 += BK) {
    // W slice.
    if (w_chunked && k0 + BK <= p.k) {
      const uint c = k0 / 8 + lpart;
      vec4 lo, hi;
      LoadChunk(wrow, p.k, c, lo, hi);
      const uint il = XLo(c) - k0, ih = XHi(c) - k0;
      [[unroll]] for (uint e = 0; e < 4; ++e) {
        As[il + e][lrow] = lo[e];
        As[ih + e][lrow] = hi[e];
      }
    } else {
      [[unroll]] for (uint e = 0; e < 8; ++e) {
        const uint kk = lpart * 8 + e;
        As[kk][lrow] = k0 + kk < p.k ? LoadOne(wrow, p.k, k0 + kk) : 0.0;
      }
    }
    // x slice.
    if (x_vec && k0 + BK <= p.k) {
      const vec4 a = tok_ok ? x4[(xoff + k0 + lpart * 8) / 4] : vec4(0.0);
      const vec4 b = tok_ok ? x4[(xoff + k0 + lpart * 8) / 4 + 1] : vec4(0.0);
      [[unroll]] for (uint e = 0; e < 4; ++e) {
        Bs[lpart * 8 + e][lrow] = a[e];
        Bs[lpart * 8 + 4 + e][lrow] = b[e];
      }
    } else {
      [[unroll]] for (uint e = 0; e < 8; ++e) {
        const uint kk = lpart * 8 + e;
        Bs[kk][lrow] = (tok_ok && k0 + kk < p.k) ? x1[xoff + k0 + kk] : 0.0;
      }
    }
    barrier();
    [[unroll]] for (uint kk = 0; kk < BK; ++kk) {
      float a[TM], b[TN];
      [[unroll]] for (uint i = 0; i < TM; ++i) a[i] = As[kk][tx + TX * i];
      [[unroll]] for (uint j = 0; j < TN; ++j) b[j] = Bs[kk][ty + TX * j];
      [[unroll]] for (uint i = 0; i < TM; ++i)
        [[unroll]] for (uint j = 0; j < TN; ++j) acc[i][j] += a[i] * b[j];
    }
    barrier();
  }

  [[unroll]] for (uint i = 0; i < TM; ++i) {
    const uint row = m0 + tx + TX * i;
    if (row >= p.m) continue;
    [[unroll]] for (uint j = 0; j < TN; ++j) {
      const uint t = n0 + ty + TX * j;
      if (t >= p.n) continue;
      float v = acc[i][j];
      if ((FLAGS & UNICORN_MM_BIAS) != 0) v += bias[row];
      if ((FLAGS & UNICORN_MM_GELU) != 0) v = GeluTanh(v);
      if ((FLAGS & UNICORN_MM_SOFTCAP) != 0) v = p.softcap * SafeTanh(v / p.softcap);
      const uint o = t * p.y_stride + row;
      if ((FLAGS & UNICORN_MM_ACC) != 0) v += y[o];
      y[o] = v;
    }
  }
}
