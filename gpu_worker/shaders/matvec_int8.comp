// Products of Q4_0 / Q8_0 weights with int8 activations for a few tokens
// (the 2..16 sequences of a batched decode step, and single tokens): y = W x
// per token, x given as quantize_q8.comp's blocks, by packed int8 dot
// products (int8_dot.glsl). That is 4x fewer activation bytes and about 3x
// fewer instructions per weight than matvec.comp's F32 FMAs, which bound it
// at these token counts (gpu_worker/BENCHMARKS.md). Each invocation walks
// every WG-th block of its rows; the partial sums meet in subgroup adds.
//   W: [rows, k] (GEGLU: [2m, k], gate rows then up rows)   y: [n, y_stride]
//   xq: n tokens of k as q8_activations.glsl lays them out   bias: [m]
// Dispatch: ceil(m / ROWS) * ceil(n / COLS) workgroups, flattened over x and
// y; the column groups of one row group are neighbours.
// W_REGS (a tuning candidate): per block, the ROWS rows' weights are loaded
// into registers once and the COLS tokens' activations stream past them,
// instead of the COLS activation blocks held while the rows stream past.
// It holds 9 registers per row instead of per token, so a workgroup can take
// all 16 tokens (every weight read once) and reuses each activation load
// over ROWS rows.
// Built with UNICORN_MM_QUANT_OUT (the matvec_int8_q8 variant; m % 32 == 0,
// ROWS divides 32): y is also written as int8 blocks (int8_quant_out.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#extension GL_EXT_spirv_intrinsics : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 32;
layout(constant_id = 3) const uint DTYPE = 4;  // UNICORN_DT_Q4_0 or _Q8_0
layout(constant_id = 4) const uint ROWS = 4;   // output rows per workgroup
layout(constant_id = 5) const uint FLAGS = 0;
layout(constant_id = 6) const uint COLS = 8;  // tokens per workgroup
layout(constant_id = 7) const uint W_REGS = 0;  // 1: weights held, activations streamed

#include "push_constants.h"
#include "common.glsl"
#include "q8_activations.glsl"
#include "int8_dot.glsl"

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 0) readonly buffer WeightU16 { uint16_t w_u16[]; };
layout(std430, binding = 1) readonly buffer XQ { uvec4 xq4[]; };
layout(std430, binding = 1) readonly buffer XMeta { uvec2 xmeta[]; };
#ifdef UNICORN_MM_QUANT_OUT
#include "int8_quant_out.glsl"
#else
layout(std430, binding = 2) buffer Y { float y[]; };
#endif
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#include "matmul_epilogue.glsl"

const uint MATS = (FLAGS & UNICORN_MM_GEGLU) != 0 ? 2 : 1;
const uint NV = MATS * ROWS * COLS;  // partial sums per invocation
const uint BLOCK_U16 = DTYPE == UNICORN_DT_Q4_0 ? 9 : 17;
shared float red[NV * WG];

float SumPartials(uint base) {
  float t = 0.0;
  for (uint s = 0; s < gl_NumSubgroups; ++s) t += red[base + s];
  return t;
}

uint Word(uint i) { return uint(w_u16[i]) | (uint(w_u16[i + 1]) << 16); }

// The 32 weights of the block at `base` as int8 lanes (Q4_0 nibbles as 0..15)
// and its scale.
float LoadBlock(uint base, out uvec4 wa, out uvec4 wb) {
  if (DTYPE == UNICORN_DT_Q4_0) {
    UnpackQ4(uvec4(Word(base + 1), Word(base + 3), Word(base + 5), Word(base + 7)), wa, wb);
  } else {
    wa = uvec4(Word(base + 1), Word(base + 3), Word(base + 5), Word(base + 7));
    wb = uvec4(Word(base + 9), Word(base + 11), Word(base + 13), Word(base + 15));
  }
  return F16ToF32(uint(w_u16[base]));
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint col_groups = (p.n + COLS - 1) / COLS;
  const uint row0 = (FlatGroup() / col_groups) * ROWS;
  const uint col0 = (FlatGroup() % col_groups) * COLS;
  const uint nb = p.k / 32;
  float acc[NV];
  [[unroll]] for (uint v = 0; v < NV; ++v) acc[v] = 0.0;

  // Rows past m and tokens past n are clamped (valid reads, never written).
  uint wrow[MATS * ROWS];
  [[unroll]] for (uint i = 0; i < MATS * ROWS; ++i) {
    wrow[i] = ((i / ROWS) * p.m + min(row0 + i % ROWS, p.m - 1)) * nb * BLOCK_U16;
  }
  uint tok[COLS];
  [[unroll]] for (uint j = 0; j < COLS; ++j) tok[j] = min(col0 + j, p.n - 1);

  for (uint b = tid; b < nb && W_REGS != 0; b += WG) {
    uvec4 wa[MATS * ROWS], wb[MATS * ROWS];
    float dw[MATS * ROWS];
    [[unroll]] for (uint i = 0; i < MATS * ROWS; ++i) {
      dw[i] = LoadBlock(wrow[i] + b * BLOCK_U16, wa[i], wb[i]);
    }
    [[unroll]] for (uint j = 0; j < COLS; ++j) {
      const uint q = Q8QuadIndex(tok[j], b, p.k);
      const uvec4 xa = xq4[q], xb = xq4[q + 1];
      const uvec2 m = xmeta[Q8MetaIndex(tok[j], b, p.n, p.k)];
      const float dx = uintBitsToFloat(m.x);
      const int xbias = DTYPE == UNICORN_DT_Q4_0 ? int(m.y) : Q8_FLOAT_BIAS;
      [[unroll]] for (uint i = 0; i < MATS * ROWS; ++i) {
        acc[j * MATS * ROWS + i] += BlockDot(wa[i], wb[i], xa, xb, xbias, dw[i] * dx);
      }
    }
  }
  for (uint b = tid; b < nb && W_REGS == 0; b += WG) {
    uvec4 xa[COLS], xb[COLS];
    float dx[COLS];
    int xbias[COLS];  // Q8_FLOAT_BIAS, less 8 * sum(q_x) for Q4_0
    [[unroll]] for (uint j = 0; j < COLS; ++j) {
      const uint q = Q8QuadIndex(tok[j], b, p.k);
      xa[j] = xq4[q];
      xb[j] = xq4[q + 1];
      const uvec2 m = xmeta[Q8MetaIndex(tok[j], b, p.n, p.k)];
      dx[j] = uintBitsToFloat(m.x);
      xbias[j] = DTYPE == UNICORN_DT_Q4_0 ? int(m.y) : Q8_FLOAT_BIAS;
    }
    [[unroll]] for (uint i = 0; i < MATS * ROWS; ++i) {
      uvec4 wa, wb;
      const float dw = LoadBlock(wrow[i] + b * BLOCK_U16, wa, wb);
      [[unroll]] for (uint j = 0; j < COLS; ++j) {
        acc[j * MATS * ROWS + i] += BlockDot(wa, wb, xa[j], xb[j], xbias[j], dw * dx[j]);
      }
    }
  }

  // Reduce: subgroup adds, then one partial per subgroup through shared memory.
  [[unroll]] for (uint v = 0; v < NV; ++v) {
    const float t = subgroupAdd(acc[v]);
    if (subgroupElect()) red[v * WG + gl_SubgroupID] = t;
  }
  barrier();
  for (uint o = tid; o < ROWS * COLS; o += WG) {
    const uint r = o % ROWS, j = o / ROWS;
    const uint row = row0 + r, col = col0 + j;
    if (row >= p.m || col >= p.n) continue;
    const float up = MATS == 2 ? SumPartials((j * MATS * ROWS + ROWS + r) * WG) : 0.0;
    StoreOutput(SumPartials((j * MATS * ROWS + r) * WG), up, row, col * p.y_stride + row);
  }
#ifdef UNICORN_MM_QUANT_OUT
  QuantizeFinishedBlocks(row0, ROWS, col_groups);
#endif
}
