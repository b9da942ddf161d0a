// Attention for many query tokens on the tensor cores (VK_NV_cooperative_
// matrix; coop_ops.glsl, emulated on devices without it): the prefill
// kernel's masks and results (attn_prefill.comp), with the scores S = Q K^T
// and the sums P V in 16 x 16 x 16 F16 fragments and F32 sums.
//   q: [n, q_stride] F32 (head h at h * HD)   k, v: the K/V store   spans: [n] ivec2
//   out: [n, o_stride] F32 (head h at h * HD)
// A workgroup takes BR = 16 * NSG query tokens of one head; subgroup s owns
// tokens 16 s .. 16 s + 15. It walks the union of their key ranges twice,
// in tiles of BC keys staged as F16 in shared memory:
//   1. the scores of each tile give each row its maximum m and its sum
//      l = sum exp(s - m) (an online softmax without the output);
//   2. the scores again, P = exp(s - m) as F16, and O += P V.
// Two passes cost a second Q K^T but never rescale O, which the fragment
// sums cannot do row by row. The output is O / l.
// Rounding: q * scale, the keys, the values and P to F16 (2^-11 relative);
// scores, softmax and sums in F32. Masks come from each token's key range
// (causal, sliding window, bidirectional image blocks; see AttnPush).
// Workgroup (query tile, head); HD % 16 == 0, HD <= 256.
// Shared memory: (BR + BC) * (HD + 8) * 2 + NSG * 16 * (BC * 4 + (BC + 8) * 2) + BR * 4 bytes
// (Kernels::CoopAttentionWorkgroup picks NSG by it).
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 3) const bool KV_F16 = true;
layout(constant_id = 4) const uint HD = 256;  // head dim (p.head_dim)

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { AttnPush p; };
#include "attn_common.glsl"
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 4) writeonly buffer Out { float out_[]; };

const uint NSG = WG / 32;  // subgroups (of 32: C++ checks)
const uint BR = 16 * NSG;  // query tokens per workgroup
const uint BC = 32;        // keys per tile
const uint FD = HD / 16;   // fragments along the head dim
const uint HP = HD + 8;    // shared row pitch of Q and K/V: 16-byte rows, banks shifted
const uint PP = BC + 8;    // ... of P
shared float16_t Qs[BR * HP];      // [token][d], times scale
shared float16_t KVs[BC * HP];     // [key][d]: the tile's keys, then its values
shared float Ss[NSG * 16 * BC];    // per subgroup: its 16 rows' scores of the tile
shared float16_t Ps[NSG * 16 * PP];  // per subgroup: exp(s - m)
shared float row_l[BR];            // each row's sum, for the output

// The fragment operations (coop_ops.glsl) and where emulated ones read.
#define COOP_EMU_SRC_Qs 0
#define COOP_EMU_SRC_KVs 1
#define COOP_EMU_SRC_Ps 2
#define COOP_EMU_READ(src, i) ((src) == 0 ? Qs[i] : (src) == 1 ? KVs[i] : Ps[i])
#include "coop_ops.glsl"

// Stages the keys (or values) k0 .. k0 + BC - 1 of kv head g as F16; keys
// past `end` are zeros.
void StageTile(uint g, uint k0, uint end, bool values) {
  for (uint i = gl_LocalInvocationID.x; i < BC * HD; i += WG) {
    const uint j = i / HD, d = i % HD;
    float v = 0.0;
    if (k0 + j < end) {
      const uint at = KvIndex(g, k0 + j, d);
      v = values ? VAt(at) : KAt(at);
    }
    KVs[j * HP + d] = ToF16(v);
  }
}

// This subgroup's scores of the staged keys: Ss[16 s + r][j] = q_r . k_j.
void ScoreTile(uint sg) {
  COOP_UNROLL for (uint jb = 0; jb < BC / 16; ++jb) {
    ACC s;
    ACC_ZERO(s);
    COOP_UNROLL for (uint f = 0; f < FD; ++f) {
      FRAG a, b;
      COOP_LOAD(a, Qs, sg * 16 * HP + f * 16, HP, false);
      COOP_LOAD(b, KVs, jb * 16 * HP + f * 16, HP, true);  // K^T: column j is key j
      COOP_MAD(s, a, b);
    }
    COOP_STORE(s, Ss, sg * 16 * BC + jb * 16, BC, false);
  }
  SG_SYNC();
}

void main() {
  const uint t0 = gl_WorkGroupID.x * BR;
  const uint h = gl_WorkGroupID.y;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint tid = gl_LocalInvocationID.x;
  const uint sg = SG_ID, lane = SG_LANE;
  // Lanes 0..15 of a subgroup each keep one row's softmax statistics.
  const uint row = sg * 16 + lane;
  const bool row_ok = lane < 16 && t0 + row < p.n_tokens;
  const uvec2 mine = KeyRange(min(t0 + min(row, BR - 1), p.n_tokens - 1));

  for (uint i = tid; i < BR * HD; i += WG) {
    const uint rr = i / HD, d = i % HD;
    const uint tt = min(t0 + rr, p.n_tokens - 1);
    Qs[rr * HP + d] = ToF16(q[tt * p.q_stride + h * HD + d] * p.scale);
  }
  uint lo_all = 0xFFFFFFFFu, hi_all = 0;
  for (uint rr = 0; rr < BR && t0 + rr < p.n_tokens; ++rr) {
    const uvec2 kr = KeyRange(t0 + rr);
    lo_all = min(lo_all, kr.x);
    hi_all = max(hi_all, kr.y);
  }

  // 1. Each row's maximum and sum.
  float m = kNegBig, l = 0.0;
  for (uint k0 = lo_all; k0 < hi_all; k0 += BC) {
    barrier();  // the previous tile's scores are read
    StageTile(g, k0, hi_all, false);
    barrier();
    ScoreTile(sg);
    if (row_ok) {
      float mt = m;
      for (uint j = 0; j < BC; ++j) {
        const uint key = k0 + j;
        if (key >= mine.x && key < mine.y) mt = max(mt, ScoreCap(Ss[row * BC + j]));
      }
      float sum = 0.0;
      for (uint j = 0; j < BC; ++j) {
        const uint key = k0 + j;
        if (key >= mine.x && key < mine.y) sum += exp(ScoreCap(Ss[row * BC + j]) - mt);
      }
      l = l * exp(m - mt) + sum;
      m = mt;
    }
  }
  if (lane < 16) row_l[row] = l;

  // 2. O = sum exp(s - m) v over the same tiles.
  ACC o[FD];
  COOP_UNROLL for (uint f = 0; f < FD; ++f) {
    ACC_ZERO(o[f]);
  }
  for (uint k0 = lo_all; k0 < hi_all; k0 += BC) {
    barrier();
    StageTile(g, k0, hi_all, false);
    barrier();
    ScoreTile(sg);
    if (lane < 16) {
      for (uint j = 0; j < BC; ++j) {
        const uint key = k0 + j;
        const bool visible = row_ok && key >= mine.x && key < mine.y;
        Ps[row * PP + j] = float16_t(visible ? exp(ScoreCap(Ss[row * BC + j]) - m) : 0.0);
      }
    }
    barrier();  // every subgroup's keys read; P written
    StageTile(g, k0, hi_all, true);
    barrier();
    COOP_UNROLL for (uint jb = 0; jb < BC / 16; ++jb) {
      FRAG a;
      COOP_LOAD(a, Ps, sg * 16 * PP + jb * 16, PP, false);
      COOP_UNROLL for (uint f = 0; f < FD; ++f) {
        FRAG b;
        COOP_LOAD(b, KVs, jb * 16 * HP + f * 16, HP, false);
        COOP_MAD(o[f], a, b);
      }
    }
  }

  // The output, a fragment at a time through this subgroup's score scratch.
  barrier();
  COOP_UNROLL for (uint f = 0; f < FD; ++f) {
    COOP_STORE(o[f], Ss, sg * 16 * BC, 16, false);
    SG_SYNC();
    for (uint e = lane; e < 256; e += 32) {
      const uint r = e / 16, d = f * 16 + e % 16, t = t0 + sg * 16 + r;
      const float lr = row_l[sg * 16 + r];
      if (t < p.n_tokens) out_[t * p.o_stride + h * HD + d] = lr > 0.0 ? Ss[sg * 16 * BC + e] / lr : 0.0;
    }
    SG_SYNC();
  }
}
