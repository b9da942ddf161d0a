// Products for a batch of decoding sequences (2-16 tokens): y = W x. The
// matvec kernel loads each token's activations once per 8 weights and is
// bound by those loads at many tokens; the tiled kernel's 64-token tiles
// would waste most of their work. Here a workgroup of 128 owns 16 weight rows
// (GEGLU: 8 gate rows and the same 8 up rows) for all TN tokens. Per slice
// of BK weights along k:
//   - the 16 x BK weights are read once, coalesced, and dequantized into
//     shared memory as As[k][row group] (a vec4 holds 4 rows);
//   - the TN x BK activations are staged transposed, Bs[k][token group];
//   - invocation (tr = tid % 4, kg = tid / 4) adds rows 4tr..4tr+3 times all
//     TN tokens over the k's kk = kg (mod 32) of the slice: one vec4 A load
//     and TN / 4 vec4 B loads (the same for the 8 kg of a 32-wide subgroup)
//     per 4 * TN FMAs, in 4 x TN F32 registers.
// The 32 k groups' partial sums are added through shared memory at the end,
// 4 tokens at a time. With PF the next slice's loads are issued before this
// slice's FMAs. On an NVIDIA H100 at 16 tokens it beat the matvec only on
// the LM head's 262144 rows (gpu_worker/BENCHMARKS.md): it is an autotuning
// candidate only.
//   W: [rows, k] in its GGUF block layout (GEGLU: [2m, k], gate then up)
//   x: [n, x_stride] F32, k % 8 == 0, x_stride % 4 == 0, n <= TN
//   y: [n, y_stride] F32, outputs 0..m-1    bias: [m]
// Dispatch: ceil(m / RM) workgroups (RM = 16, GEGLU 8), flattened.
// Shared memory: BK * (20 + 4 * (TN / 4 + 1)) * 4 + 8192 bytes
// (BK = 128, TN = 16: 28 KiB; BK = 256: 48 KiB).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;  // must be 128
layout(constant_id = 3) const uint DTYPE = 0;
layout(constant_id = 5) const uint FLAGS = 0;
layout(constant_id = 6) const uint TN = 16;  // tokens per workgroup: 4, 8 or 16
layout(constant_id = 7) const uint BK = 128;  // k per slice: 128 or 256
// Benchmarking only (unicorn-vk-kernel-bench): parts of the work left out,
// 1 weight loads, 2 x loads, 4 the FMAs, 8 the cross-group sums.
layout(constant_id = 8) const uint ABL = 0;
layout(constant_id = 9) const uint PF = 0;   // 1: load slice s + 1 while slice s is summed

#include "push_constants.h"
#include "common.glsl"
#include "dequant.glsl"

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 1) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Bias { float bias[]; };
#include "matmul_epilogue.glsl"

const bool GEGLU = (FLAGS & UNICORN_MM_GEGLU) != 0;
const uint RM = GEGLU ? 8 : 16;  // output rows per workgroup
const uint KG = 32;              // k groups (invocations along k)
shared vec4 As[BK][5];           // [k][row group], one vec4 of padding
shared vec4 Bs[BK][TN / 4 + 1];  // [k][token group], one vec4 of padding
shared float red[64 * 32];       // [token of 4][row][k group]

// Weight row of local row lr (0..15); rows past m are clamped (never written).
uint WeightRow(uint row0, uint lr) {
  if (GEGLU) return (lr / 8) * p.m + min(row0 + lr % 8, p.m - 1);
  return min(row0 + lr, p.m - 1);
}

// Slot of (row of the round, k group) in red: rotated by the row group so
// that the 32 invocations of a subgroup (8 k groups x 4 row groups) file
// their partials into 32 different banks.
uint RedSlot(uint row, uint g) { return row * KG + ((g + 8 * ((row / 4) % 4)) % KG); }

// Sum over the k groups of local row lr, token tl of the round, starting at
// a different k group per row (fewer bank conflicts between invocations).
float SumGroups(uint tl, uint lr) {
  float s = 0.0;
  for (uint i = 0; i < KG; ++i) s += red[RedSlot(tl * 16 + lr, (i + lr) % KG)];
  return s;
}

// Per-invocation work of a slice. Load tasks: (row group g, chunk cl of the
// slice), the 4 row groups of a chunk in neighbouring invocations: their
// vec4 stores then spread over the banks (chunks of one Q4_0 block are 4 k
// apart, which alone would put them into 2 bank groups). x tasks: (run of 4
// along k, token), tokens neighbouring, likewise.
const uint CHUNKS = BK / 8;                    // weight chunks per row and slice
const uint XT = (TN * BK / 4 + WG - 1) / WG;  // x runs of 4 per invocation and slice

// The slice at k0 into registers, branch-free: indices clamped, values past
// n or k zeroed (a slice past k loads harmless clamped data).
void LoadSlice(uint k0, uint tid, uint wrow[4], out vec4 xv[XT], out vec4 lo[4], out vec4 hi[4]) {
  [[unroll]] for (uint u = 0; u < XT; ++u) {
    const uint task = tid + u * WG;
    const uint tok = task % TN, kx = k0 + 4 * (task / TN);
    const vec4 v = x4[(min(tok, p.n - 1) * p.x_stride + min(kx, p.k - 4)) / 4];
    xv[u] = mix(vec4(0.0), v, bvec4(tok < p.n && kx < p.k && (ABL & 2) == 0));
  }
  const uint kchunks = p.k / 8, c = k0 / 8 + tid / 4;
  [[unroll]] for (uint e = 0; e < 4; ++e) {
    vec4 l, h;
    LoadChunk(wrow[e], p.k, min(c, kchunks - 1), l, h);
    if ((ABL & 1) != 0) l = h = vec4(float(wrow[e]));
    lo[e] = mix(vec4(0.0), l, bvec4(c < kchunks));
    hi[e] = mix(vec4(0.0), h, bvec4(c < kchunks));
  }
}

// Registers of the slice at k0 into As and Bs. Past k the slice's chunks are
// zero; XLo/XHi of such a chunk stay inside the slice (k is a multiple of
// the block).
void StoreSlice(uint k0, uint tid, vec4 xv[XT], vec4 lo[4], vec4 hi[4]) {
  const uint g = tid % 4, cl = tid / 4;
  if (cl < CHUNKS) {
    const uint c = k0 / 8 + cl;
    const uint il = XLo(c) - k0, ih = XHi(c) - k0;
    [[unroll]] for (uint i = 0; i < 4; ++i) {
      As[il + i][g] = vec4(lo[0][i], lo[1][i], lo[2][i], lo[3][i]);
      As[ih + i][g] = vec4(hi[0][i], hi[1][i], hi[2][i], hi[3][i]);
    }
  }
  [[unroll]] for (uint u = 0; u < XT; ++u) {
    const uint task = tid + u * WG;
    const uint tok = task % TN, q = task / TN;
    [[unroll]] for (uint e = 0; e < 4; ++e) Bs[4 * q + e][tok / 4][tok % 4] = xv[u][e];
  }
}

// acc += rows 4tr..4tr+3 x all tokens over the slice's kk = kg (mod 32).
void SumSlice(uint tr, uint kg, inout vec4 acc[TN]) {
  if ((ABL & 4) != 0) {
    acc[0] += As[kg][tr] + Bs[kg][0];
    return;
  }
  [[unroll]] for (uint i = 0; i < BK / KG; ++i) {
    const uint kk = i * KG + kg;
    const vec4 a = As[kk][tr];
    [[unroll]] for (uint j = 0; j < TN / 4; ++j) {
      const vec4 b = Bs[kk][j];
      acc[4 * j] += a * b.x;
      acc[4 * j + 1] += a * b.y;
      acc[4 * j + 2] += a * b.z;
      acc[4 * j + 3] += a * b.w;
    }
  }
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint row0 = FlatGroup() * RM;
  const uint tr = tid % 4, kg = tid / 4;
  vec4 acc[TN];  // acc[t][e]: row 4tr+e, token t
  [[unroll]] for (uint t = 0; t < TN; ++t) acc[t] = vec4(0.0);
  uint wrow[4];
  [[unroll]] for (uint e = 0; e < 4; ++e) wrow[e] = WeightRow(row0, (tid % 4) * 4 + e);

  vec4 xv[XT], lo[4], hi[4];
  if (PF != 0) LoadSlice(0, tid, wrow, xv, lo, hi);
  for (uint k0 = 0; k0 < p.k; k0 += BK) {
    if (PF == 0) LoadSlice(k0, tid, wrow, xv, lo, hi);
    StoreSlice(k0, tid, xv, lo, hi);
    barrier();
    // Prefetching: the next slice's loads are in flight during the FMAs
    // (one basic block: LoadSlice has no branches).
    if (PF != 0) LoadSlice(k0 + BK, tid, wrow, xv, lo, hi);
    SumSlice(tr, kg, acc);
    barrier();
  }
  if ((ABL & 8) != 0) {  // ablation: no cross-group sums
    vec4 t = vec4(0.0);
    [[unroll]] for (uint j = 0; j < TN; ++j) t += acc[j];
    y[row0 + tid % 16] = dot(t, vec4(1.0));
    return;
  }

  // Rounds of 4 tokens: every invocation files its partials, 64 invocations
  // (16 rows x 4 tokens) add one output's 32 partials each.
  [[unroll]] for (uint r = 0; r < TN / 4; ++r) {
    [[unroll]] for (uint tl = 0; tl < 4; ++tl) {
      [[unroll]] for (uint e = 0; e < 4; ++e) red[RedSlot(tl * 16 + tr * 4 + e, kg)] = acc[r * 4 + tl][e];
    }
    barrier();
    const uint tl = tid / 16, lr = tid % 16;
    const uint tok = r * 4 + tl, row = row0 + lr;
    if (tid < 64 && lr < RM && row < p.m && tok < p.n) {
      const float up = GEGLU ? SumGroups(tl, lr + 8) : 0.0;
      StoreOutput(SumGroups(tl, lr), up, row, tok * p.y_stride + row);
    }
    barrier();
  }
}
