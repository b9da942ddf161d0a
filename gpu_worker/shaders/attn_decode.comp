// Attention for a few query tokens (decode), split over the key range:
// workgroup (split s, kv head g, token t) handles the G = H / Hkv query
// heads of kv head g (GQA: each key is read once for all of them) over its
// share of the token's keys (attn_keys.glsl: splits of at least
// UNICORN_ATTN_MIN_CHUNK keys, so a short context leaves the last splits
// idle), with an online softmax in F32, and writes the unnormalised output
// with its running max and sum; attn_reduce.comp merges the splits.
//   q: [n, q_stride] F32 (head h at h * D, already rotated)
//   k, v: the K/V store (see AttnPush)   spans: [n] ivec2
//   rings: [n] i32 (RINGS): token t reads ring rings[t] of a batch's store
//   o_part: [n, H, n_splits, D] F32      ml_part: [n, H, n_splits] vec2 (max, sum)
// Per tile of up to WG keys: each invocation scores one key; workgroup
// reductions give the tile's max; then the invocations split into KG key
// groups of D / 8 invocations, each owning 8 output dims, and every key
// group adds P V over every KG-th key. The key groups' partial outputs are
// summed once, at the end.
// Built with UNICORN_ATTN_MERGE (the attn_decode_merge variants): one
// dispatch instead of two. The active splits of (token t, kv head g) count
// themselves on counters[t * Hkv + g] (zero before, zero after); the last
// to finish merges the G heads (attn_merge.glsl) into out (binding 7), and
// with UNICORN_ATTN_QUANT also as int8 blocks (binding 9).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;  // keys per tile; D <= 8 * WG
layout(constant_id = 3) const bool KV_F16 = true;
layout(constant_id = 4) const uint G = 2;  // query heads per kv head
layout(constant_id = 5) const bool RINGS = false;

#include "push_constants.h"
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Push { AttnPush p; };
#include "attn_common.glsl"
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K4 { uvec4 k4[]; };
layout(std430, binding = 1) readonly buffer KF4 { vec4 kf4[]; };
layout(std430, binding = 2) readonly buffer V4 { uvec4 v4[]; };
layout(std430, binding = 2) readonly buffer VF4 { vec4 vf4[]; };
#ifdef UNICORN_ATTN_MERGE
// Read back by the last split of each (token, kv head).
layout(std430, binding = 4) coherent buffer OPart { float o_part[]; };
layout(std430, binding = 5) coherent buffer MLPart { vec2 ml_part[]; };
#else
layout(std430, binding = 4) writeonly buffer OPart { float o_part[]; };
layout(std430, binding = 5) writeonly buffer MLPart { vec2 ml_part[]; };
#endif
layout(std430, binding = 6) readonly buffer Rings { int rings[]; };
#ifdef UNICORN_ATTN_MERGE
#include "q8_activations.glsl"
layout(std430, binding = 7) writeonly buffer Out { float out_[]; };
layout(std430, binding = 8) coherent buffer Counters { uint counters[]; };
#ifdef UNICORN_ATTN_QUANT
layout(std430, binding = 9) writeonly buffer Q4 { uvec4 q4[]; };
layout(std430, binding = 9) writeonly buffer Meta { uvec2 meta[]; };
#endif
#include "attn_merge.glsl"
shared bool last_split;
#endif

const uint MAXD = UNICORN_MAX_HEAD_DIM;
const uint VPT = 8;   // output dims per invocation in P V
const uint UNROLL = 4;  // keys whose values one invocation loads at once
shared float qs[G * MAXD];  // the query heads (scaled); at the end, key groups' outputs
shared float ps[G * WG];    // the tile's probabilities
shared float ls[G];         // a key group's sums, at the end

void main() {
  const uint s = gl_WorkGroupID.x, g = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
  const uint tid = gl_LocalInvocationID.x;
  const uint D = p.head_dim;
  const uvec2 range = KeyRange(t);
  const uint len = range.y - range.x;
  const uint busy = ActiveSplits(len), chunk = SplitChunk(len);
  if (s >= busy) return;  // the whole workgroup: nothing to do
  const uint ks = min(range.y, range.x + s * chunk);
  const uint ke = min(range.y, ks + chunk);
  // The token's ring in a store shared by a batch: its slots start here.
  const uint ring0 = RINGS ? uint(max(rings[t], 0)) * p.cap * p.kv_token_stride : 0u;
  const bool aligned = D % 8 == 0 && p.kv_token_stride % 8 == 0 && p.kv_head_stride % 8 == 0;
  // P V: key group kg, invocation r of it owns dims r * VPT .. + VPT - 1.
  const uint TPR = (D + VPT - 1) / VPT, KG = WG / TPR;
  const uint r = tid % TPR, kg = tid / TPR;

  for (uint i = tid; i < G * D; i += WG) {
    const uint gi = i / D, d = i % D;
    qs[gi * MAXD + d] = q[t * p.q_stride + (g * G + gi) * D + d] * p.scale;
  }
  barrier();

  float m[G], l[G], o[G][VPT];
  [[unroll]] for (uint gi = 0; gi < G; ++gi) {
    m[gi] = kNegBig;
    l[gi] = 0.0;
    [[unroll]] for (uint e = 0; e < VPT; ++e) o[gi][e] = 0.0;
  }

  for (uint k0 = ks; k0 < ke; k0 += WG) {
    const uint n = min(WG, ke - k0);
    // Scores: invocation tid takes key k0 + tid for all G heads.
    float sc[G];
    [[unroll]] for (uint gi = 0; gi < G; ++gi) sc[gi] = 0.0;
    if (tid < n) {
      const uint kb = ring0 + KvIndex(g, k0 + tid, 0);
      if (KV_F16 && aligned) {
        [[unroll]] for (uint d = 0; d < MAXD; d += 8) {
          if (d < D) {
            const uvec4 u = k4[(kb + d) / 8];
            const vec4 lo = vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y));
            const vec4 hi = vec4(unpackHalf2x16(u.z), unpackHalf2x16(u.w));
            [[unroll]] for (uint gi = 0; gi < G; ++gi) {
              const uint qb = gi * MAXD + d;
              sc[gi] += dot(lo, vec4(qs[qb], qs[qb + 1], qs[qb + 2], qs[qb + 3])) +
                        dot(hi, vec4(qs[qb + 4], qs[qb + 5], qs[qb + 6], qs[qb + 7]));
            }
          }
        }
      } else if (!KV_F16 && aligned) {
        [[unroll]] for (uint d = 0; d < MAXD; d += 4) {
          if (d < D) {
            const vec4 kv = kf4[(kb + d) / 4];
            [[unroll]] for (uint gi = 0; gi < G; ++gi) {
              const uint qb = gi * MAXD + d;
              sc[gi] += dot(kv, vec4(qs[qb], qs[qb + 1], qs[qb + 2], qs[qb + 3]));
            }
          }
        }
      } else {
        for (uint d = 0; d < D; ++d) {
          const float kd = KAt(kb + d);
          [[unroll]] for (uint gi = 0; gi < G; ++gi) sc[gi] += qs[gi * MAXD + d] * kd;
        }
      }
      [[unroll]] for (uint gi = 0; gi < G; ++gi) sc[gi] = ScoreCap(sc[gi]);
    }
    // Online softmax: the tile's max, then each invocation's own probability.
    [[unroll]] for (uint gi = 0; gi < G; ++gi) {
      const float mt = max(m[gi], WorkgroupMax(tid < n ? sc[gi] : kNegBig));
      const float alpha = exp(m[gi] - mt);
      m[gi] = mt;
      l[gi] *= alpha;
      [[unroll]] for (uint e = 0; e < VPT; ++e) o[gi][e] *= alpha;
      ps[gi * WG + tid] = tid < n ? exp(sc[gi] - mt) : 0.0;
    }
    barrier();
    // P V over this key group's keys, UNROLL keys' values loaded at once.
    if (kg < KG) {
      for (uint i0 = kg; i0 < n; i0 += UNROLL * KG) {
        float vd[UNROLL][VPT];
        [[unroll]] for (uint u = 0; u < UNROLL; ++u) {
          const uint i = min(i0 + u * KG, n - 1);  // a repeat past n adds p = 0
          const uint vb = ring0 + KvIndex(g, k0 + i, r * VPT);
          if (KV_F16 && aligned) {
            const uvec4 w = v4[vb / 8];
            vd[u][0] = unpackHalf2x16(w.x).x, vd[u][1] = unpackHalf2x16(w.x).y;
            vd[u][2] = unpackHalf2x16(w.y).x, vd[u][3] = unpackHalf2x16(w.y).y;
            vd[u][4] = unpackHalf2x16(w.z).x, vd[u][5] = unpackHalf2x16(w.z).y;
            vd[u][6] = unpackHalf2x16(w.w).x, vd[u][7] = unpackHalf2x16(w.w).y;
          } else if (!KV_F16 && aligned) {
            const vec4 lo = vf4[vb / 4], hi = vf4[vb / 4 + 1];
            vd[u][0] = lo.x, vd[u][1] = lo.y, vd[u][2] = lo.z, vd[u][3] = lo.w;
            vd[u][4] = hi.x, vd[u][5] = hi.y, vd[u][6] = hi.z, vd[u][7] = hi.w;
          } else {
            [[unroll]] for (uint e = 0; e < VPT; ++e) {
              vd[u][e] = r * VPT + e < D ? VAt(vb + e) : 0.0;
            }
          }
        }
        [[unroll]] for (uint u = 0; u < UNROLL; ++u) {
          const uint i = i0 + u * KG;
          [[unroll]] for (uint gi = 0; gi < G; ++gi) {
            const float pr = i < n ? ps[gi * WG + i] : 0.0;
            l[gi] += pr;
            [[unroll]] for (uint e = 0; e < VPT; ++e) o[gi][e] += pr * vd[u][e];
          }
        }
      }
    }
    barrier();
  }

  // Sum the key groups' outputs into key group 0 (qs is free now); every
  // key group saw the same running max.
  for (uint j = 1; j < KG; ++j) {
    if (kg == j) {
      [[unroll]] for (uint gi = 0; gi < G; ++gi) {
        [[unroll]] for (uint e = 0; e < VPT; ++e) {
          if (r * VPT + e < D) qs[gi * MAXD + r * VPT + e] = o[gi][e];
        }
        if (r == 0) ls[gi] = l[gi];
      }
    }
    barrier();
    if (kg == 0) {
      [[unroll]] for (uint gi = 0; gi < G; ++gi) {
        [[unroll]] for (uint e = 0; e < VPT; ++e) {
          if (r * VPT + e < D) o[gi][e] += qs[gi * MAXD + r * VPT + e];
        }
        l[gi] += ls[gi];
      }
    }
    barrier();
  }
  if (kg == 0) {
    [[unroll]] for (uint gi = 0; gi < G; ++gi) {
      const uint h = g * G + gi;
      const uint base = (t * p.n_heads + h) * p.n_splits + s;
      [[unroll]] for (uint e = 0; e < VPT; ++e) {
        const uint d = r * VPT + e;
        if (d < D) o_part[base * D + d] = o[gi][e];
      }
      if (r == 0) ml_part[base] = vec2(m[gi], l[gi]);
    }
  }
#ifdef UNICORN_ATTN_MERGE
  // Publish this split's partials, then count it; the last one merges.
  memoryBarrierBuffer();
  barrier();
  const uint c = t * p.n_kv_heads + g;
  if (tid == 0) last_split = atomicAdd(counters[c], 1u) + 1 == busy;
  barrier();
  if (!last_split) return;
  memoryBarrierBuffer();
  if (tid == 0) counters[c] = 0;
  [[unroll]] for (uint gi = 0; gi < G; ++gi) MergeHead(g * G + gi, t);
#endif
}
