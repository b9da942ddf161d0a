// Products on the tensor cores (VK_NV_cooperative_matrix): y = W x for 2+
// tokens, in 16 x 16 x 16 fragments, F16 inputs and F32 sums. A workgroup
// computes a BM x BN tile (BM output rows x BN tokens). Each k step
// dequantizes a BM x BK slice of W to F16 and converts the BN x BK slice of
// x to F16 (by default as a high and a low part, so x keeps ~22 bits) in
// shared memory; its subgroups (WM along m x WN along n) each multiply
// their FM x FN fragments. The sums go through a per-subgroup scratch to the
// product epilogue (matmul_epilogue.glsl).
//   W: [m, k] in its GGUF block layout (with GEGLU [2m, k]: gate rows, then
//      up rows; a tile's first BM / 2 local rows are gate rows, the rest the
//      matching up rows)
//   x: [n, x_stride] F32 (clamped to +-65504 on conversion; W too)
//   y: [n, y_stride] F32   bias: [m]
// Dispatch: (ceil(m / BM) (ceil(2m / BM) rows of W with GEGLU), ceil(n / BN), 1).
// Shared memory: (BM + 2 BN) * (BK + 8) * 2 + subgroups * 2 KiB bytes (BN once with X_F16).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint DTYPE = 0;
layout(constant_id = 5) const uint FLAGS = 0;

#include "push_constants.h"
#include "common.glsl"
#include "dequant.glsl"

layout(constant_id = 6) const uint BM = 64;  // output rows per workgroup (W rows with GEGLU)
layout(constant_id = 7) const uint BN = 16;  // tokens per workgroup
layout(constant_id = 8) const uint WM = 4;   // subgroups along m
layout(constant_id = 9) const uint BK = 32;  // k per step, a multiple of 32
layout(constant_id = 10) const uint PREFETCH = 0;  // 1: load the next step during this one's products
// 1: x as one F16 value (2^-11 relative rounding); 0: as the sum of two
// (hi = f16(x), lo = f16(x - hi): about 2^-22), at two products per fragment.
layout(constant_id = 11) const uint X_F16 = 0;
const uint NSG = WG / 32;                    // subgroups (of 32: C++ checks)
const uint WN = NSG / WM;                    // subgroups along n
const uint FM = BM / 16 / WM;                // fragments per subgroup along m
const uint FN = BN / 16 / WN;                // ... along n
const uint BKP = BK + 8;                     // shared row pitch: 16-byte rows, banks shifted
const bool GEGLU = (FLAGS & UNICORN_MM_GEGLU) != 0;

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer X1 { float x1[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#include "matmul_epilogue.glsl"

shared float16_t Ws[BM * BKP];   // W slice: [local row][k]
shared float16_t Xs[BN * BKP];   // x slice: [token][k] (B column-major)
shared float16_t Xl[X_F16 != 0 ? 8 : BN * BKP];  // its low parts (X_F16 = 0)
shared float Cs[NSG * 2 * 256];  // per subgroup: one (GEGLU: two) 16 x 16 sums, column-major
// The fragment operations, on the tensor cores or emulated (coop_ops.glsl).
#define COOP_EMU_SRC_Ws 0
#define COOP_EMU_SRC_Xs 1
#define COOP_EMU_SRC_Xl 2
#define COOP_EMU_READ(src, i) ((src) == 0 ? Ws[i] : (src) == 1 ? Xs[i] : Xl[i])
#include "coop_ops.glsl"

// The W row of local row lr of the tile starting at tile row t0.
uint WeightRow(uint lr, uint t0) {
  if (!GEGLU) return min(t0 + lr, p.m - 1);
  const uint half_rows = BM / 2, g0 = t0 / 2;
  return lr < half_rows ? min(g0 + lr, p.m - 1) : p.m + min(g0 + lr - half_rows, p.m - 1);
}

// The local row where fragment f of subgroup row wm starts. With GEGLU a
// subgroup's first FM / 2 fragments are gate rows, the rest their up rows.
uint FragRow(uint wm, uint f) {
  if (!GEGLU) return (wm * FM + f) * 16;
  const uint h = FM / 2;
  return f < h ? (wm * h + f) * 16 : BM / 2 + (wm * h + f - h) * 16;
}

// A k step's slices pass through registers: every load of the step is
// issued before any is written to shared memory (with PREFETCH, before the
// previous step's products).
const uint WCH = (BM * (BK / 8) + WG - 1) / WG;  // W chunks of 8 weights per invocation
const uint XCH = (BN * (BK / 4) + WG - 1) / WG;  // x runs of 4 floats per invocation
vec4 w_lo[WCH], w_hi[WCH], x_run[XCH];

// Chunk i of this invocation: local row and chunk within the step.
void ChunkOf(uint i, uint tid, out uint lr, out uint part) {
  const uint cid = tid + i * WG;
  lr = cid / (BK / 8);
  part = cid % (BK / 8);
}

// Loads the W slice (BM rows x BK) and the x slice (BN tokens x BK) of the
// step at k0 into registers. Chunks and runs past k are zeros (quantized
// rows end on a whole block: a chunk is in or out); tokens past n repeat
// the last (their sums are never stored).
void LoadSlices(uint k0, uint t0, uint n0, uint tid) {
  const bool w_chunked = DTYPE >= UNICORN_DT_Q8_0 || p.k % 8 == 0;
  [[unroll]] for (uint i = 0; i < WCH; ++i) {
    uint lr, part;
    ChunkOf(i, tid, lr, part);
    w_lo[i] = vec4(0.0);
    w_hi[i] = vec4(0.0);
    if (lr >= BM) continue;
    const uint wrow = WeightRow(lr, t0);
    if (w_chunked) {
      if (k0 + part * 8 < p.k) LoadChunk(wrow, p.k, k0 / 8 + part, w_lo[i], w_hi[i]);
    } else {
      [[unroll]] for (uint e = 0; e < 8; ++e) {
        const uint kk = k0 + part * 8 + e;
        const float v = kk < p.k ? LoadOne(wrow, p.k, kk) : 0.0;
        if (e < 4) w_lo[i][e] = v; else w_hi[i][e - 4] = v;
      }
    }
  }
  const bool x_vec = p.k % 4 == 0 && p.x_stride % 4 == 0;
  [[unroll]] for (uint i = 0; i < XCH; ++i) {
    const uint cid = tid + i * WG;
    const uint lt = cid / (BK / 4), part = cid % (BK / 4);
    x_run[i] = vec4(0.0);
    if (lt >= BN) continue;
    const uint kk = k0 + part * 4;
    const uint xoff = min(n0 + lt, p.n - 1) * p.x_stride + kk;
    if (x_vec) {
      if (kk < p.k) x_run[i] = x4[xoff / 4];
    } else {
      [[unroll]] for (uint e = 0; e < 4; ++e) x_run[i][e] = kk + e < p.k ? x1[xoff + e] : 0.0;
    }
  }
}

// Writes the registers of the step at k0 to Ws and Xs as F16.
void StoreSlices(uint k0, uint tid) {
  const bool w_chunked = DTYPE >= UNICORN_DT_Q8_0 || p.k % 8 == 0;
  [[unroll]] for (uint i = 0; i < WCH; ++i) {
    uint lr, part;
    ChunkOf(i, tid, lr, part);
    if (lr >= BM) continue;
    const uint c = k0 / 8 + part;
    // Chunk c's weights multiply x[XLo(c) ..] and x[XHi(c) ..] (dequant.glsl).
    const uint il = lr * BKP + (w_chunked ? XLo(c) - k0 : part * 8);
    const uint ih = lr * BKP + (w_chunked ? XHi(c) - k0 : part * 8 + 4);
    [[unroll]] for (uint e = 0; e < 4; ++e) {
      Ws[il + e] = ToF16(w_lo[i][e]);
      Ws[ih + e] = ToF16(w_hi[i][e]);
    }
  }
  [[unroll]] for (uint i = 0; i < XCH; ++i) {
    const uint cid = tid + i * WG;
    const uint lt = cid / (BK / 4), part = cid % (BK / 4);
    if (lt >= BN) continue;
    [[unroll]] for (uint e = 0; e < 4; ++e) {
      // hi: v with its mantissa cut to F16's 10 bits, by a mask. An F16
      // round trip (float(float16_t(v)), even through packHalf2x16) was
      // folded to v by an NVIDIA H100's compiler, which left lo zero.
      const float v = clamp(x_run[i][e], -65504.0, 65504.0);
      if (X_F16 != 0) {
        Xs[lt * BKP + part * 4 + e] = float16_t(v);
      } else {
        const float hi = uintBitsToFloat(floatBitsToUint(v) & 0xFFFFE000u);
        Xs[lt * BKP + part * 4 + e] = float16_t(hi);
        Xl[lt * BKP + part * 4 + e] = float16_t(v - hi);
      }
    }
  }
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint sg = SG_ID, lane = SG_LANE;
  const uint wm = sg % WM, wn = sg / WM;
  const uint t0 = gl_WorkGroupID.x * BM;  // first W row of the tile (x2 with GEGLU: see WeightRow)
  const uint n0 = gl_WorkGroupID.y * BN;

  ACC acc[FM][FN];
  [[unroll]] for (uint i = 0; i < FM; ++i) {
    [[unroll]] for (uint j = 0; j < FN; ++j) {
      ACC_ZERO(acc[i][j]);
    }
  }

  LoadSlices(0, t0, n0, tid);
  for (uint k0 = 0; k0 < p.k; k0 += BK) {
    if (PREFETCH == 0 && k0 > 0) LoadSlices(k0, t0, n0, tid);
    StoreSlices(k0, tid);
    barrier();
    if (PREFETCH != 0 && k0 + BK < p.k) LoadSlices(k0 + BK, t0, n0, tid);
    COOP_UNROLL for (uint kk = 0; kk < BK; kk += 16) {
      FRAG b[FN], bl[FN];
      [[unroll]] for (uint j = 0; j < FN; ++j) {
        COOP_LOAD(b[j], Xs, ((wn * FN + j) * 16) * BKP + kk, BKP, true);
        if (X_F16 == 0) {
          COOP_LOAD(bl[j], Xl, ((wn * FN + j) * 16) * BKP + kk, BKP, true);
        }
      }
      [[unroll]] for (uint i = 0; i < FM; ++i) {
        FRAG a;
        COOP_LOAD(a, Ws, FragRow(wm, i) * BKP + kk, BKP, false);
        [[unroll]] for (uint j = 0; j < FN; ++j) {
          COOP_MAD(acc[i][j], a, b[j]);
          if (X_F16 == 0) {
            COOP_MAD(acc[i][j], a, bl[j]);
          }
        }
      }
    }
    barrier();
  }

  // Epilogue: each fragment (with GEGLU, each gate fragment with its up
  // fragment) through this subgroup's scratch; lane l takes elements l,
  // l + 32, ... (16 rows of a token, then the next token).
  const uint cs = sg * 512;
  const uint out_frags = GEGLU ? FM / 2 : FM;
  const uint row0 = GEGLU ? t0 / 2 : t0;  // first output row of the tile
  [[unroll]] for (uint i = 0; i < out_frags; ++i) {
    [[unroll]] for (uint j = 0; j < FN; ++j) {
      COOP_STORE(acc[i][j], Cs, cs, 16, true);
      if (GEGLU) {
        COOP_STORE(acc[i + FM / 2][j], Cs, cs + 256, 16, true);
      }
      SG_SYNC();
      const uint frag_row = row0 + FragRow(wm, i);  // gate rows start at local row 0
      const uint tok0 = n0 + (wn * FN + j) * 16;
      [[unroll]] for (uint e = 0; e < 8; ++e) {
        const uint idx = lane + 32 * e;
        const uint row = frag_row + idx % 16, t = tok0 + idx / 16;
        if (row < p.m && t < p.n) {
          StoreOutput(Cs[cs + idx], GEGLU ? Cs[cs + 256 + idx] : 0.0, row, t * p.y_stride + row);
        }
      }
      SG_SYNC();
    }
  }
}
