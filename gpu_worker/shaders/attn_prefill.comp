// Attention for many query tokens (prefill, vision), flash style: a
// workgroup takes BR query tokens of one head and walks the union of their
// key ranges in tiles of BC keys (K, then V, staged in shared memory), with an
// online softmax in F32. Masks come from each token's key range (causal,
// sliding window, bidirectional image blocks; see AttnPush).
//   q: [n, q_stride] F32 (head h at h * D)   k, v: the K/V store   spans: [n] ivec2
//   out: [n, o_stride] F32 (head h at h * D)
// Workgroup (query tile, head); WG == BR * 16 invocations, D <= 256.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const bool KV_F16 = true;

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { AttnPush p; };
#include "attn_common.glsl"
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 4) writeonly buffer Out { float out_[]; };

const uint BR = 8;    // query tokens per workgroup
const uint BC = 16;   // keys per tile; also invocations per query row
const uint MAXD = UNICORN_MAX_HEAD_DIM;
const uint DPT = MAXD / BC;  // output dims per invocation
shared float Qs[BR][MAXD];
shared float KVs[BC][MAXD + 1];  // +1: rows start in different banks
shared float Ss[BR][BC];

void main() {
  const uint t0 = gl_WorkGroupID.x * BR;
  const uint h = gl_WorkGroupID.y;
  const uint g = h / (p.n_heads / p.n_kv_heads);
  const uint tid = gl_LocalInvocationID.x;
  const uint r = tid / BC, c = tid % BC;
  const uint D = p.head_dim;
  const uint t = min(t0 + r, p.n_tokens - 1);
  const bool row_ok = t0 + r < p.n_tokens;

  for (uint i = tid; i < BR * D; i += WG) {
    const uint rr = i / D, d = i % D;
    const uint tt = min(t0 + rr, p.n_tokens - 1);
    Qs[rr][d] = q[tt * p.q_stride + h * D + d] * p.scale;
  }
  uint lo_all = 0xFFFFFFFFu, hi_all = 0;
  for (uint rr = 0; rr < BR && t0 + rr < p.n_tokens; ++rr) {
    const uvec2 kr = KeyRange(t0 + rr);
    lo_all = min(lo_all, kr.x);
    hi_all = max(hi_all, kr.y);
  }
  const uvec2 mine = KeyRange(t);

  float m = kNegBig, l = 0.0;
  float o[DPT];
  [[unroll]] for (uint e = 0; e < DPT; ++e) o[e] = 0.0;
  barrier();

  for (uint k0 = lo_all; k0 < hi_all; k0 += BC) {
    for (uint i = tid; i < BC * D; i += WG) {
      const uint j = i / D, d = i % D;
      KVs[j][d] = k0 + j < hi_all ? KAt(KvIndex(g, k0 + j, d)) : 0.0;
    }
    barrier();
    const uint key = k0 + c;
    const bool visible = row_ok && key >= mine.x && key < mine.y;
    float s = 0.0;
    for (uint d = 0; d < D; ++d) s += Qs[r][d] * KVs[c][d];
    Ss[r][c] = visible ? ScoreCap(s) : kNegBig;
    barrier();
    for (uint i = tid; i < BC * D; i += WG) {
      const uint j = i / D, d = i % D;
      KVs[j][d] = k0 + j < hi_all ? VAt(KvIndex(g, k0 + j, d)) : 0.0;
    }
    // Row statistics (the BC invocations of a row compute the same values).
    float mt = m;
    [[unroll]] for (uint j = 0; j < BC; ++j) mt = max(mt, Ss[r][j]);
    float pr[BC];
    float psum = 0.0;
    [[unroll]] for (uint j = 0; j < BC; ++j) {
      pr[j] = Ss[r][j] > 0.5 * kNegBig ? exp(Ss[r][j] - mt) : 0.0;
      psum += pr[j];
    }
    const float alpha = exp(m - mt);
    m = mt;
    l = l * alpha + psum;
    barrier();
    [[unroll]] for (uint e = 0; e < DPT; ++e) {
      const uint d = c + e * BC;
      float acc = o[e] * alpha;
      if (d < D) {
        [[unroll]] for (uint j = 0; j < BC; ++j) acc += pr[j] * KVs[j][d];
      }
      o[e] = acc;
    }
    barrier();
  }

  if (!row_ok) return;
  const float inv = l > 0.0 ? 1.0 / l : 0.0;
  [[unroll]] for (uint e = 0; e < DPT; ++e) {
    const uint d = c + e * BC;
    if (d < D) out_[t * p.o_stride + h * D + d] = o[e] * inv;
  }
}
