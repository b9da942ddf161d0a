// Matrix-vector products for decode (a few tokens): y = W x per token, W in
// its GGUF block layout. Bandwidth-bound: every weight byte is read once per
// dispatch and dequantized in registers; each invocation takes 8-weight
// chunks of ROWS rows (x loaded once for all of them), then the workgroup
// reduces each row's partial sums (subgroup adds, then shared memory).
//   W: [rows, k] (GEGLU: [2m, k], gate rows then up rows)
//   x: [n, x_stride] F32    y: [n, y_stride] F32, outputs 0..m-1    bias: [m]
// Dispatch: ceil(m / ROWS) * ceil(n / COLS) workgroups, flattened over x and
// y; the column groups of one row group are neighbours (shared weight reads
// hit the cache).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 3) const uint DTYPE = 0;
layout(constant_id = 4) const uint ROWS = 2;  // output rows per workgroup
layout(constant_id = 5) const uint FLAGS = 0;
layout(constant_id = 6) const uint COLS = 1;  // tokens per workgroup

#include "push_constants.h"
#include "common.glsl"
#include "dequant.glsl"

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer X1 { float x1[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#include "matmul_epilogue.glsl"

const uint MATS = (FLAGS & UNICORN_MM_GEGLU) != 0 ? 2 : 1;
const uint NV = MATS * ROWS * COLS;  // partial sums per invocation
shared float red[NV * WG];

float SumPartials(uint base) {
  float t = 0.0;
  for (uint s = 0; s < gl_NumSubgroups; ++s) t += red[base + s];
  return t;
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint col_groups = (p.n + COLS - 1) / COLS;
  const uint row0 = (FlatGroup() / col_groups) * ROWS;
  const uint col0 = (FlatGroup() % col_groups) * COLS;
  float acc[NV];
  [[unroll]] for (uint v = 0; v < NV; ++v) acc[v] = 0.0;

  // Rows past m and tokens past n are clamped (valid reads, never written).
  uint wrow[MATS * ROWS];
  [[unroll]] for (uint i = 0; i < MATS * ROWS; ++i) {
    wrow[i] = (i / ROWS) * p.m + min(row0 + i % ROWS, p.m - 1);
  }
  uint xoff[COLS];
  [[unroll]] for (uint j = 0; j < COLS; ++j) xoff[j] = min(col0 + j, p.n - 1) * p.x_stride;

  const bool chunked = DTYPE >= UNICORN_DT_Q8_0 || (p.k % 8 == 0 && p.x_stride % 4 == 0);
  if (chunked) {
    const uint nchunks = p.k / 8;
    for (uint c = tid; c < nchunks; c += WG) {
      const uint il = XLo(c), ih = XHi(c);
      vec4 xl[COLS], xh[COLS];
      [[unroll]] for (uint j = 0; j < COLS; ++j) {
        xl[j] = x4[(xoff[j] + il) / 4];
        xh[j] = x4[(xoff[j] + ih) / 4];
      }
      [[unroll]] for (uint i = 0; i < MATS * ROWS; ++i) {
        vec4 lo, hi;
        LoadChunk(wrow[i], p.k, c, lo, hi);
        [[unroll]] for (uint j = 0; j < COLS; ++j) {
          acc[j * MATS * ROWS + i] += dot(lo, xl[j]) + dot(hi, xh[j]);
        }
      }
    }
  } else {
    for (uint e = tid; e < p.k; e += WG) {
      [[unroll]] for (uint i = 0; i < MATS * ROWS; ++i) {
        const float w = LoadOne(wrow[i], p.k, e);
        [[unroll]] for (uint j = 0; j < COLS; ++j) acc[j * MATS * ROWS + i] += w * x1[xoff[j] + e];
      }
    }
  }

  // Reduce: subgroup adds, then one partial per subgroup through shared memory.
  [[unroll]] for (uint v = 0; v < NV; ++v) {
    const float t = subgroupAdd(acc[v]);
    if (subgroupElect()) red[v * WG + gl_SubgroupID] = t;
  }
  barrier();
  // One invocation per (row, token) output; a workgroup smaller than
  // ROWS * COLS takes several each.
  for (uint o = tid; o < ROWS * COLS; o += WG) {
    const uint r = o % ROWS, j = o / ROWS;
    const uint row = row0 + r, col = col0 + j;
    if (row >= p.m || col >= p.n) continue;
    const float up = MATS == 2 ? SumPartials((j * MATS * ROWS + ROWS + r) * WG) : 0.0;
    StoreOutput(SumPartials((j * MATS * ROWS + r) * WG), up, row, col * p.y_stride + row);
  }
}
