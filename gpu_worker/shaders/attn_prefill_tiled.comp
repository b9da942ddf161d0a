// Attention for many query tokens (prefill, vision), flash style with
// register tiles: the masks and results of attn_prefill.comp, with more work
// per shared-memory read. A workgroup of 128 invocations takes BR = 16 query
// tokens of one head and walks the union of their key ranges in tiles of BC
// keys (K, then V, staged in shared memory as stored: F16 or F32 bits).
// Per tile:
//   1. scores S = (q scale) K^T: invocation i takes key i % BC of RS rows
//      (the Q rows are the same across a subgroup's lanes: broadcast reads);
//   2. row maxima and P = exp(S - max), the online softmax in F32;
//   3. O = O alpha + P V: invocation i takes 4 rows (i / 32) and the dims
//      of quads i % 32, i % 32 + 32, ... (4 dims each).
// Sums in F32. Masks come from each token's key range (see AttnPush).
//   q: [n, q_stride] F32 (head h at h * D)   k, v: the K/V store   spans: [n] ivec2
//   out: [n, o_stride] F32 (head h at h * D)
// Workgroup (query tile, head); D <= 4 QD.
// Shared memory (Kernels::TiledAttentionKeys): 16 QD * 16 + BC * KP * 8 + 2 * 16 * (BC + 1) * 4
// bytes.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;  // C++ passes 128: the mappings below need it
layout(constant_id = 3) const bool KV_F16 = true;
layout(constant_id = 4) const uint QD = 64;  // quads (4 dims) per head: ceil(head_dim / 4)
layout(constant_id = 5) const uint BC = 32;  // keys per tile: 16 or 32

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { AttnPush p; };
#include "attn_common.glsl"
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 0) readonly buffer Q4 { vec4 q4[]; };
layout(std430, binding = 1) readonly buffer K2 { uvec2 k2[]; };  // F16 store: 4 values each
layout(std430, binding = 1) readonly buffer K4 { uvec4 k4[]; };  // F32 store: 4 values each
layout(std430, binding = 2) readonly buffer V2 { uvec2 v2[]; };
layout(std430, binding = 2) readonly buffer V4 { uvec4 v4[]; };
layout(std430, binding = 4) writeonly buffer Out { float out_[]; };

const uint BR = 16;              // query tokens per workgroup
const uint RS = BR * BC / 128;   // score rows per invocation (4 or 2)
const uint NQ = (QD + 31) / 32;  // output quads per invocation and row
const uint SP = BC + 1;          // Ss / Ps row pitch
// A staged row's pitch in uvec2 (F16: one per quad; F32: two), odd so
// that neighbouring rows start in other banks.
const uint KP = KV_F16 ? (QD | 1u) : 2 * QD + 1;
shared vec4 Qs[BR * QD];     // q * scale: [row][quad]
shared uvec2 KVs[BC * KP];   // the key or value tile: [key][quad]
shared float Ss[BR * SP];    // scores (kNegBig where masked)
shared float Ps[BR * SP];    // exp(S - row max)

// Stages keys (or values) k0 .. k0 + BC - 1 of kv head g, zeros past hi
// and past the head's dims.
void StageTile(bool values, uint g, uint k0, uint hi, bool vec) {
  for (uint i = gl_LocalInvocationID.x; i < BC * QD; i += WG) {
    const uint j = i / QD, qd = i % QD;
    uvec4 w = uvec4(0);  // F16: w.xy
    if (k0 + j < hi) {
      const uint at = KvIndex(g, k0 + j, 4 * qd);
      if (vec && KV_F16) {
        w.xy = values ? v2[at / 4] : k2[at / 4];
      } else if (vec) {
        w = values ? v4[at / 4] : k4[at / 4];
      } else {
        vec4 e = vec4(0.0);
        [[unroll]] for (uint c = 0; c < 4; ++c) {
          if (4 * qd + c < p.head_dim) e[c] = values ? VAt(at + c) : KAt(at + c);
        }
        w = KV_F16 ? uvec4(packHalf2x16(e.xy), packHalf2x16(e.zw), 0, 0) : floatBitsToUint(e);
      }
    }
    if (KV_F16) {
      KVs[j * KP + qd] = w.xy;
    } else {
      KVs[j * KP + 2 * qd] = w.xy;
      KVs[j * KP + 2 * qd + 1] = w.zw;
    }
  }
}

// Dims 4 qd .. 4 qd + 3 of staged row j.
vec4 Quad(uint j, uint qd) {
  if (KV_F16) {
    const uvec2 w = KVs[j * KP + qd];
    return vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
  }
  return uintBitsToFloat(uvec4(KVs[j * KP + 2 * qd], KVs[j * KP + 2 * qd + 1]));
}

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint t0 = gl_WorkGroupID.x * BR, h = gl_WorkGroupID.y;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint D = p.head_dim;
  const bool q_vec = D % 4 == 0 && p.q_stride % 4 == 0;
  const bool kv_vec = D % 4 == 0 && p.kv_token_stride % 4 == 0 && p.kv_head_stride % 4 == 0;

  for (uint i = tid; i < BR * QD; i += WG) {
    const uint r = i / QD, qd = i % QD;
    const uint at = min(t0 + r, p.n_tokens - 1) * p.q_stride + h * D + 4 * qd;
    vec4 e = vec4(0.0);
    if (q_vec) {
      e = q4[at / 4];
    } else {
      [[unroll]] for (uint c = 0; c < 4; ++c) {
        if (4 * qd + c < D) e[c] = q[at + c];
      }
    }
    Qs[i] = e * p.scale;
  }
  uint lo_all = 0xFFFFFFFFu, hi_all = 0;
  for (uint r = 0; r < BR && t0 + r < p.n_tokens; ++r) {
    const uvec2 kr = KeyRange(t0 + r);
    lo_all = min(lo_all, kr.x);
    hi_all = max(hi_all, kr.y);
  }

  // Scores: key sc of rows sr0 ..; outputs: rows or0 .. or0 + 3, quads lane + 32 e.
  const uint sc = tid % BC, sr0 = (tid / BC) * RS;
  const uint lane = tid % 32, or0 = (tid / 32) * 4;
  uvec2 range[RS];
  [[unroll]] for (uint i = 0; i < RS; ++i) {
    range[i] = t0 + sr0 + i < p.n_tokens ? KeyRange(t0 + sr0 + i) : uvec2(0);
  }
  float m[4], l[4];
  vec4 o[4][NQ];
  [[unroll]] for (uint i = 0; i < 4; ++i) {
    m[i] = kNegBig;
    l[i] = 0.0;
    [[unroll]] for (uint e = 0; e < NQ; ++e) o[i][e] = vec4(0.0);
  }
  barrier();

  for (uint k0 = lo_all; k0 < hi_all; k0 += BC) {
    StageTile(false, g, k0, hi_all, kv_vec);
    barrier();
    float s[RS];
    [[unroll]] for (uint i = 0; i < RS; ++i) s[i] = 0.0;
    for (uint qd = 0; qd < QD; ++qd) {
      const vec4 kq = Quad(sc, qd);
      [[unroll]] for (uint i = 0; i < RS; ++i) s[i] += dot(Qs[(sr0 + i) * QD + qd], kq);
    }
    const uint key = k0 + sc;
    [[unroll]] for (uint i = 0; i < RS; ++i) {
      const bool visible = key >= range[i].x && key < range[i].y;
      Ss[(sr0 + i) * SP + sc] = visible ? ScoreCap(s[i]) : kNegBig;
    }
    barrier();
    StageTile(true, g, k0, hi_all, kv_vec);  // over the keys: all are read
    float alpha[4];
    [[unroll]] for (uint i = 0; i < 4; ++i) {
      const uint r = or0 + i;
      float mt = m[i];
      for (uint j = 0; j < BC; ++j) mt = max(mt, Ss[r * SP + j]);
      alpha[i] = exp(m[i] - mt);
      m[i] = mt;
      if (lane < BC) {
        const float sv = Ss[r * SP + lane];
        Ps[r * SP + lane] = sv > 0.5 * kNegBig ? exp(sv - mt) : 0.0;
      }
    }
    barrier();
    [[unroll]] for (uint i = 0; i < 4; ++i) {
      l[i] *= alpha[i];
      [[unroll]] for (uint e = 0; e < NQ; ++e) o[i][e] *= alpha[i];
    }
    for (uint j = 0; j < BC; ++j) {
      vec4 vq[NQ];
      [[unroll]] for (uint e = 0; e < NQ; ++e) {
        vq[e] = lane + 32 * e < QD ? Quad(j, lane + 32 * e) : vec4(0.0);
      }
      [[unroll]] for (uint i = 0; i < 4; ++i) {
        const float pr = Ps[(or0 + i) * SP + j];
        l[i] += pr;
        [[unroll]] for (uint e = 0; e < NQ; ++e) o[i][e] += pr * vq[e];
      }
    }
    barrier();
  }

  [[unroll]] for (uint i = 0; i < 4; ++i) {
    const uint t = t0 + or0 + i;
    if (t >= p.n_tokens) continue;
    const float inv = l[i] > 0.0 ? 1.0 / l[i] : 0.0;
    [[unroll]] for (uint e = 0; e < NQ; ++e) {
      const uint qd = lane + 32 * e;
      [[unroll]] for (uint c = 0; c < 4; ++c) {
        const uint d = 4 * qd + c;
        if (qd < QD && d < D) out_[t * p.o_stride + h * D + d] = o[i][e][c] * inv;
      }
    }
  }
}
