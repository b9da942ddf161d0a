// Products of Q4_0 / Q8_0 weights with int8 activations for 2..16 tokens on
// the tensor cores (VK_NV_cooperative_matrix): y = W x per token, x given as
// quantize_q8.comp's blocks (q8_activations.glsl). The int8 kernels' dot
// products bound a 16-row decode step (gpu_worker/BENCHMARKS.md); here the
// tensor cores take them, in 16 x 16 x 16 F16 fragments with F32 sums.
//   W: [rows, k] (GEGLU: [2m, k], gate rows then up rows)   y: [n, y_stride]
//   xq: n tokens of k as q8_activations.glsl lays them out   bias: [m]
// A workgroup owns 16 * FM output rows (of each matrix with GEGLU) and all
// 16 tokens (n <= 16; tokens past n read token n - 1 and are never stored).
// Its subgroups split k: subgroup s takes the steps s, s + NSG, ... of KB
// blocks of 32. Each step dequantizes the rows' weights (d * q) and the 16
// tokens' activations (d * q) to F16 in the subgroup's own shared slices,
// so the loop has no workgroup barrier. The subgroups' sums are added in
// subgroup order at the end, then go through the product epilogue.
// Rounding: each weight and each activation is rounded once to F16 (2^-11
// relative); the sums are F32.
// Dispatch: ceil(m / (16 * FM)) workgroups, flattened over x and y.
// Shared memory: NSG * (MATS * 16 * FM + 16) * (32 * KB + 8) * 2 + MATS * FM * 2048 bytes.
// Built with UNICORN_MM_QUANT_OUT (matmul_int8_coop_q8; m % 32 == 0): y is
// also written as int8 blocks (int8_quant_out.glsl).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint DTYPE = 4;  // UNICORN_DT_Q4_0 or _Q8_0
layout(constant_id = 4) const uint FM = 1;     // 16-row fragments per matrix
layout(constant_id = 5) const uint FLAGS = 0;
layout(constant_id = 6) const uint COLS = 16;  // tokens per workgroup (always 16)
layout(constant_id = 7) const uint KB = 1;     // blocks of 32 per subgroup step

#include "push_constants.h"
#include "common.glsl"
#include "dequant.glsl"
#include "q8_activations.glsl"

layout(push_constant) uniform Push { MatMulPush p; };
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
const uint NSG = WG / 32;               // subgroups (of 32: C++ checks)
const uint FR = MATS * FM;              // fragments (of 16 rows) per subgroup
const uint ROWS = 16 * FR;              // W rows of the workgroup
const uint SK = 32 * KB;                // k per step
const uint PITCH = SK + 8;              // shared row pitch: 16-byte rows, banks shifted
const uint W_SLICE = ROWS * PITCH;      // one subgroup's weights: [local row][k]
const uint X_SLICE = 16 * PITCH;        // one subgroup's activations: [token][k]
const uint W_UNITS = ROWS * KB * 4 / 32;  // 8-weight chunks per lane per step
const uint X_UNITS = 16 * KB * 2 / 32;    // 16-value halves of x blocks per lane per step

shared float16_t Ws[NSG * W_SLICE];
shared float16_t Xs[NSG * X_SLICE];
shared float sums[FR * 256];  // the workgroup's sums, column-major 16 x 16 per fragment
shared float part[FR * 256];  // one subgroup's sums on their way into `sums`
// Where the emulated fragments come from (coop_ops.glsl).
#define COOP_EMU_SRC_Ws 0
#define COOP_EMU_SRC_Xs 1
#define COOP_EMU_READ(src, i) ((src) == 0 ? Ws[i] : Xs[i])
#include "coop_ops.glsl"

// Dequantizes the step's KB blocks from b0 of the workgroup's rows and of
// the 16 tokens into this subgroup's slices; blocks past k are zeros.
void StoreStep(uint b0, uint nb, uint row0, uint col0, uint w_base, uint x_base, uint lane) {
  [[unroll]] for (uint u = 0; u < W_UNITS; ++u) {
    const uint unit = lane + 32 * u;
    const uint lr = unit / (KB * 4), c = unit % (KB * 4);  // local row, chunk of the step
    const uint mat = lr / (16 * FM);
    const uint row = mat * p.m + min(row0 + lr % (16 * FM), p.m - 1);
    const uint chunk = b0 * 4 + c;
    vec4 lo = vec4(0.0), hi = vec4(0.0);
    if (chunk / 4 < nb) LoadChunk(row, p.k, chunk, lo, hi);
    // Chunk c's weights multiply x[XLo(c) ..] and x[XHi(c) ..] (dequant.glsl).
    const uint il = w_base + lr * PITCH + XLo(chunk) - b0 * 32;
    const uint ih = w_base + lr * PITCH + XHi(chunk) - b0 * 32;
    [[unroll]] for (uint e = 0; e < 4; ++e) {
      Ws[il + e] = ToF16(lo[e]);
      Ws[ih + e] = ToF16(hi[e]);
    }
  }
  [[unroll]] for (uint u = 0; u < X_UNITS; ++u) {
    const uint unit = lane + 32 * u;
    const uint t = unit / (KB * 2), j = (unit / 2) % KB, h = unit % 2;
    const uint tok = min(col0 + t, p.n - 1), b = b0 + j;
    uvec4 q = uvec4(0);
    float d = 0.0;
    if (b < nb) {
      q = xq4[Q8QuadIndex(tok, b, p.k) + h];
      d = uintBitsToFloat(xmeta[Q8MetaIndex(tok, b, p.n, p.k)].x);
    }
    const uint ix = x_base + t * PITCH + j * 32 + h * 16;
    [[unroll]] for (uint w = 0; w < 4; ++w) {
      const vec4 v = d * Int8x4(q[w]);
      [[unroll]] for (uint e = 0; e < 4; ++e) Xs[ix + 4 * w + e] = ToF16(v[e]);
    }
  }
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint sg = SG_ID, lane = SG_LANE;
  const uint row0 = FlatGroup() * 16 * FM;  // first output row (of each matrix)
  const uint col0 = 0;
  const uint nb = p.k / 32, steps = (nb + KB - 1) / KB;
  const uint w_base = sg * W_SLICE, x_base = sg * X_SLICE;

  ACC acc[FR];
  COOP_UNROLL for (uint i = 0; i < FR; ++i) {
    ACC_ZERO(acc[i]);
  }
  // Every subgroup runs the same rounds (its step of the last may be past
  // k), so SG_SYNC is reached by the whole workgroup (coop_ops.glsl).
  for (uint st0 = 0; st0 < steps; st0 += NSG) {
    const uint st = st0 + sg;
    if (st < steps) StoreStep(st * KB, nb, row0, col0, w_base, x_base, lane);
    SG_SYNC();
    if (st < steps) {
      COOP_UNROLL for (uint kk = 0; kk < SK; kk += 16) {
        FRAG b;
        COOP_LOAD(b, Xs, x_base + kk, PITCH, true);
        COOP_UNROLL for (uint i = 0; i < FR; ++i) {
          FRAG a;
          COOP_LOAD(a, Ws, w_base + i * 16 * PITCH + kk, PITCH, false);
          COOP_MAD(acc[i], a, b);
        }
      }
    }
    SG_SYNC();  // every lane's loads done before the next round's stores
  }

  // The subgroups' sums, added in subgroup order by their lanes (glslang's
  // optimizer crashes on a sum of two cooperative matrices).
  for (uint s = 0; s < NSG; ++s) {
    if (sg == s) {
      [[unroll]] for (uint i = 0; i < FR; ++i) {
        if (s == 0) {
          COOP_STORE(acc[i], sums, i * 256, 16, true);
        } else {
          COOP_STORE(acc[i], part, i * 256, 16, true);
        }
      }
    }
    memoryBarrierShared();
    barrier();
    if (s > 0) {
      if (sg == s) {
        for (uint e = lane; e < FR * 256; e += 32) sums[e] += part[e];
      }
      memoryBarrierShared();
      barrier();
    }
  }
  // Fragment i holds rows 16 i .. of its matrix's tile: element (r, t) at t * 16 + r.
  for (uint o = tid; o < 16 * FM * COLS; o += WG) {
    const uint lr = o % (16 * FM), t = o / (16 * FM);
    const uint row = row0 + lr, col = col0 + t;
    if (row >= p.m || col >= p.n) continue;
    const uint at = (lr / 16) * 256 + t * 16 + lr % 16;
    StoreOutput(sums[at], MATS == 2 ? sums[FM * 256 + at] : 0.0, row, col * p.y_stride + row);
  }
#ifdef UNICORN_MM_QUANT_OUT
  QuantizeFinishedBlocks(row0, 16 * FM, 1);
#endif
}
