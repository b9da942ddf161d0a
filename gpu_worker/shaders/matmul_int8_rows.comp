// Products of Q4_0 / Q8_0 weights with int8 activations for 2..16 tokens,
// lanes over rows: y = W x per token, x given as quantize_q8.comp's blocks,
// by packed int8 dot products (int8_dot.glsl).
//   W: [rows, k] (GEGLU: [2m, k], gate rows then up rows)   y: [n, y_stride]
//   xq: n tokens of k as q8_activations.glsl lays them out   bias: [m]
// Invocation i is row lane i % RL and k phase i / RL of KS = WG / RL. Row
// lane l owns rows row0 + l + RL * r (r < R) of each matrix and the COLS
// tokens of its column group; k phase h takes blocks h, h + KS, ... So the
// RL lanes of a k phase read the same activation block at the same time
// (one broadcast load), where matvec_int8.comp's lanes read one block each:
// at 16 tokens that activation traffic, not the dot products, bounds it.
// The weights of the workgroup's rows come through shared memory, KS blocks
// of each row per step, loaded as whole 32-bit words in row order.
// The k phases' partial sums meet in shared memory, added in phase order.
// Needs k % 64 == 0 (rows of whole words) and even KS.
// Dispatch: ceil(m / (RL * R)) * ceil(n / COLS) workgroups, flattened over x
// and y; the column groups of one row group are neighbours.
// Built with UNICORN_MM_QUANT_OUT (matmul_int8_rows_q8; m % 32 == 0, RL * R
// divides 32 or is a multiple of it): y is also written as int8 blocks
// (int8_quant_out.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_spirv_intrinsics : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint DTYPE = 4;  // UNICORN_DT_Q4_0 or _Q8_0
layout(constant_id = 4) const uint R = 1;      // rows per row lane, per matrix
layout(constant_id = 5) const uint FLAGS = 0;
layout(constant_id = 6) const uint COLS = 16;  // tokens per workgroup
layout(constant_id = 7) const uint RL = 32;    // row lanes

#include "push_constants.h"
#include "common.glsl"
#include "q8_activations.glsl"
#include "int8_dot.glsl"

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 0) readonly buffer WeightWords { uint w32[]; };
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
const uint KS = WG / RL;          // k phases
const uint RW = RL * R;           // rows per workgroup, per matrix
const uint LR = MATS * R;         // rows per invocation
const uint NV = COLS * LR;        // partial sums per invocation
const uint BLOCK_U16 = DTYPE == UNICORN_DT_Q4_0 ? 9 : 17;
const uint QS_WORDS = DTYPE == UNICORN_DT_Q4_0 ? 4 : 8;
const uint STEP_WORDS = KS * BLOCK_U16 / 2;  // one row's KS blocks
const uint STRIDE = (STEP_WORDS + 1) | 1;    // odd: the row lanes hit distinct banks
shared uint wsh[MATS * RW * STRIDE];         // [local row][STEP_WORDS]
shared float red[KS * NV * RL];              // [k phase][partial][row lane]

// Sixteen bits at u16 index u of a staged row.
uint Half(uint row_base, uint u) { return (wsh[row_base + u / 2] >> (16 * (u & 1))) & 0xFFFFu; }

// The 32-bit word of a staged row that starts at u16 index u (u may be odd).
uint WordAt(uint row_base, uint u) {
  const uint lo = wsh[row_base + u / 2], hi = wsh[row_base + u / 2 + 1];
  return (u & 1) != 0 ? (lo >> 16) | (hi << 16) : lo;
}

// Block `blk` of the step from staged local row `lr`: int8 lanes and scale.
float StagedBlock(uint lr, uint blk, out uvec4 wa, out uvec4 wb) {
  const uint base = lr * STRIDE, u = blk * BLOCK_U16;
  const uvec4 v = uvec4(WordAt(base, u + 1), WordAt(base, u + 3), WordAt(base, u + 5),
                        WordAt(base, u + 7));
  if (DTYPE == UNICORN_DT_Q4_0) {
    UnpackQ4(v, wa, wb);
  } else {
    wa = v;
    wb = uvec4(WordAt(base, u + 9), WordAt(base, u + 11), WordAt(base, u + 13),
               WordAt(base, u + 15));
  }
  return F16ToF32(Half(base, u));
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint lane = tid % RL, phase = tid / RL;
  const uint col_groups = (p.n + COLS - 1) / COLS;
  const uint row0 = (FlatGroup() / col_groups) * RW;
  const uint col0 = (FlatGroup() % col_groups) * COLS;
  const uint nb = p.k / 32;
  const uint row_words = nb * BLOCK_U16 / 2;
  float acc[NV];
  [[unroll]] for (uint v = 0; v < NV; ++v) acc[v] = 0.0;
  // Tokens past n are clamped (valid reads, never written).
  uint tok[COLS];
  [[unroll]] for (uint j = 0; j < COLS; ++j) tok[j] = min(col0 + j, p.n - 1);

  for (uint b0 = 0; b0 < nb; b0 += KS) {
    // Stage KS blocks of each local row (gate rows, then up rows); rows past
    // m and words past a row's end are clamped.
    barrier();
    for (uint i = tid; i < MATS * RW * STEP_WORDS; i += WG) {
      const uint lr = i / STEP_WORDS, w = i % STEP_WORDS;
      const uint row = (lr / RW) * p.m + min(row0 + lr % RW, p.m - 1);
      wsh[lr * STRIDE + w] = w32[row * row_words + min(b0 * BLOCK_U16 / 2 + w, row_words - 1)];
    }
    barrier();
    const uint b = b0 + phase;
    if (b < nb) {
      uvec4 wa[LR], wb[LR];
      float dw[LR];
      [[unroll]] for (uint i = 0; i < LR; ++i) {
        dw[i] = StagedBlock((i / R) * RW + lane + RL * (i % R), phase, wa[i], wb[i]);
      }
      [[unroll]] for (uint j = 0; j < COLS; ++j) {
        const uint q = Q8QuadIndex(tok[j], b, p.k);
        const uvec4 xa = xq4[q], xb = xq4[q + 1];
        const uvec2 m = xmeta[Q8MetaIndex(tok[j], b, p.n, p.k)];
        const float dx = uintBitsToFloat(m.x);
        const int xbias = DTYPE == UNICORN_DT_Q4_0 ? int(m.y) : Q8_FLOAT_BIAS;
        [[unroll]] for (uint i = 0; i < LR; ++i) {
          acc[j * LR + i] += BlockDot(wa[i], wb[i], xa, xb, xbias, dw[i] * dx);
        }
      }
    }
  }

  // The k phases' partials, added in phase order.
  [[unroll]] for (uint v = 0; v < NV; ++v) red[(phase * NV + v) * RL + lane] = acc[v];
  barrier();
  for (uint o = tid; o < RW * COLS; o += WG) {
    const uint l = o % RL, r = (o / RL) % R, j = o / RW;
    const uint row = row0 + l + RL * r, col = col0 + j;
    if (row >= p.m || col >= p.n) continue;
    float gate = 0.0, up = 0.0;
    for (uint h = 0; h < KS; ++h) {
      gate += red[(h * NV + j * LR + r) * RL + l];
      if (MATS == 2) up += red[(h * NV + j * LR + R + r) * RL + l];
    }
    StoreOutput(gate, up, row, col * p.y_stride + row);
  }
#ifdef UNICORN_MM_QUANT_OUT
  QuantizeFinishedBlocks(row0, RW, col_groups);
#endif
}
