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
// Each subgroup walks its own keys (every NSG-th of the split's), U at a
// time: its lanes hold the key's dims across them (LD each, coalesced
// loads of the whole row), so a score is one subgroupAdd and the keys'
// values load together with the keys. The loop has no barriers; the
// subgroups' (max, sum, output) merge once, at the end.
// Built with UNICORN_ATTN_MERGE (the attn_decode_merge variants): one
// dispatch instead of two. The active splits of (token t, kv head g) count
// themselves on counters[t * Hkv + g] (zero before, zero after); the last
// to finish merges the G heads (attn_merge.glsl) into out (binding 7), and
// with UNICORN_ATTN_QUANT also as int8 blocks (binding 9).
// Built with UNICORN_ATTN_NEW_KV (attn_decode_new_kv; F32 store, no merge):
// q comes raw from its product, and so do the token's own key and value
// (k_new, v_new: [n, Hkv * D] F32). Each workgroup norms its G query heads
// and the key (Gemma's (1 + w) RMSNorm over head_dim, eps = EPS) and
// rotates both at position pos[t] (rope.glsl), as head_norm_rope.comp
// would; split 0 stores the key and value in the token's slot, and every
// split takes the token's own key from shared memory instead of the store.
// So the store must not hold another key that this pass writes: one token
// per ring (a single token, or a batch of sequences with a row each).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;  // >= UNICORN_ATTN_MAX_SPLITS (the merge)
layout(constant_id = 3) const bool KV_F16 = true;
layout(constant_id = 4) const uint G = 2;  // query heads per kv head
layout(constant_id = 5) const bool RINGS = false;
// Dims per lane, 4 * ceil(D / (4 * subgroup size)) from the device's reported
// subgroupSize, which gl_SubgroupSize equals here (SPIR-V 1.5, pipelines
// made without the varying-subgroup-size flag).
layout(constant_id = 6) const uint LD = 8;
layout(constant_id = 7) const float EPS = 1e-6;  // UNICORN_ATTN_NEW_KV: the head norms' eps

#include "push_constants.h"
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Push { AttnPush p; };
#include "attn_common.glsl"
layout(std430, binding = 0) readonly buffer Q { float q[]; };
layout(std430, binding = 1) readonly buffer K2 { uvec2 k2[]; };
layout(std430, binding = 1) readonly buffer KF4 { vec4 kf4[]; };
layout(std430, binding = 2) readonly buffer V2 { uvec2 v2[]; };
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
#ifdef UNICORN_ATTN_NEW_KV
#include "rope.glsl"
layout(std430, binding = 1) writeonly buffer KStore { float k_store[]; };
layout(std430, binding = 2) writeonly buffer VStore { float v_store[]; };
layout(std430, binding = 7) readonly buffer KNew { float k_new[]; };
layout(std430, binding = 8) readonly buffer VNew { float v_new[]; };
layout(std430, binding = 9) readonly buffer QNorm { float q_norm[]; };
layout(std430, binding = 10) readonly buffer KNorm { float k_norm[]; };
layout(std430, binding = 11) readonly buffer Freq { float inv_freq[]; };
layout(std430, binding = 12) readonly buffer Pos { int pos[]; };
#endif

const uint MAXD = UNICORN_MAX_HEAD_DIM;
const uint U = 4;        // keys a subgroup loads at once
const uint MAX_SG = UNICORN_ATTN_MAX_SUBGROUPS;  // subgroups per workgroup, at most
shared vec2 sg_ml[G * MAX_SG];                   // each subgroup's (max, sum) per head
shared float acc[G * MAXD];     // the subgroups' outputs, summed
#ifdef UNICORN_ATTN_NEW_KV
shared float new_q[G * MAXD];   // the token's query heads, normed and rotated
shared float new_k[MAXD], new_v[MAXD];  // its key (normed, rotated) and value

// Query head h of kv head g (h < G), or (h == G) the key: RMS-normed with
// (1 + w) and rotated at `position`, into new_q / new_k. One subgroup.
void NormRotate(uint t, uint g, uint h, int position) {
  const uint D = p.head_dim, half_d = D / 2, lane = gl_SubgroupInvocationID;
  const bool key = h == G;
  const uint src = key ? (t * p.n_kv_heads + g) * D : t * p.q_stride + (g * G + h) * D;
  float ss = 0.0;
  for (uint i = lane; i < D; i += gl_SubgroupSize) {
    const float x = key ? k_new[src + i] : q[src + i];
    ss += x * x;
  }
  const float scale = inversesqrt(subgroupAdd(ss) / float(D) + EPS);
  for (uint i = lane; i < half_d; i += gl_SubgroupSize) {
    float x0 = key ? k_new[src + i] : q[src + i];
    float x1 = key ? k_new[src + i + half_d] : q[src + i + half_d];
    x0 *= scale * (1.0 + (key ? k_norm[i] : q_norm[i]));
    x1 *= scale * (1.0 + (key ? k_norm[i + half_d] : q_norm[i + half_d]));
    const vec2 y = RotatePair(x0, x1, position, inv_freq[i]);
    if (key) {
      new_k[i] = y.x;
      new_k[i + half_d] = y.y;
    } else {
      new_q[h * MAXD + i] = y.x;
      new_q[h * MAXD + i + half_d] = y.y;
    }
  }
}
#endif

// Lane `lane`'s e-th dim: chunks of 4 consecutive dims, the subgroup's
// lanes side by side in each chunk (one coalesced row load per chunk).
uint Dim(uint lane, uint e) { return (e / 4) * (gl_SubgroupSize * 4) + lane * 4 + e % 4; }

void main() {
  const uint s = gl_WorkGroupID.x, g = gl_WorkGroupID.y, t = gl_WorkGroupID.z;
  const uint tid = gl_LocalInvocationID.x, lane = gl_SubgroupInvocationID;
  const uint sg = gl_SubgroupID, NSG = gl_NumSubgroups;
  const uint D = p.head_dim;
  const uvec2 range = KeyRange(t);
  const uint len = range.y - range.x;
  const uint busy = ActiveSplits(len), chunk = SplitChunk(len);
  if (s >= busy) return;  // the whole workgroup: nothing to do
  const uint ks = min(range.y, range.x + s * chunk);
  const uint ke = min(range.y, ks + chunk);
  // The token's ring in a store shared by a batch: its slots start here.
  const uint ring0 = RINGS ? uint(max(rings[t], 0)) * p.cap * p.kv_token_stride : 0u;
  const bool aligned = D % 4 == 0 && p.kv_token_stride % 4 == 0 && p.kv_head_stride % 4 == 0;

#ifdef UNICORN_ATTN_NEW_KV
  // The token's queries and key, normed and rotated; its value. Split 0
  // stores the key and value (no split reads that slot back: see above).
  const int new_pos = pos[t];
  for (uint h = sg; h <= G; h += NSG) NormRotate(t, g, h, new_pos);
  for (uint i = tid; i < D; i += WG) new_v[i] = v_new[(t * p.n_kv_heads + g) * D + i];
  barrier();
  if (s == 0) {
    const uint slot = ring0 + KvIndex(g, uint(max(new_pos, 0)), 0);
    for (uint i = tid; i < D; i += WG) {
      k_store[slot + i] = new_k[i];
      v_store[slot + i] = new_v[i];
    }
  }
#endif
  float qr[G][LD], m[G], l[G], o[G][LD];
  [[unroll]] for (uint gi = 0; gi < G; ++gi) {
    m[gi] = kNegBig;
    l[gi] = 0.0;
    [[unroll]] for (uint e = 0; e < LD; ++e) {
      const uint d = Dim(lane, e);
#ifdef UNICORN_ATTN_NEW_KV
      qr[gi][e] = d < D ? new_q[gi * MAXD + d] * p.scale : 0.0;
#else
      qr[gi][e] = d < D ? q[t * p.q_stride + (g * G + gi) * D + d] * p.scale : 0.0;
#endif
      o[gi][e] = 0.0;
    }
  }

  for (uint j0 = ks + sg; j0 < ke; j0 += U * NSG) {
    // Keys j0, j0 + NSG, ...: rows past the split repeat j0 and count 0.
    float kr[U][LD], vr[U][LD];
    [[unroll]] for (uint u = 0; u < U; ++u) {
      const uint j = j0 + u * NSG < ke ? j0 + u * NSG : j0;
      const uint b = ring0 + KvIndex(g, j, 0);
      [[unroll]] for (uint e = 0; e < LD; e += 4) {
        const uint d = Dim(lane, e);
        if (d >= D) {
          [[unroll]] for (uint i = 0; i < 4; ++i) kr[u][e + i] = vr[u][e + i] = 0.0;
        } else if (KV_F16 && aligned) {
          const uvec2 kw = k2[(b + d) / 4], vw = v2[(b + d) / 4];
          const vec2 k0 = unpackHalf2x16(kw.x), k1 = unpackHalf2x16(kw.y);
          const vec2 v0 = unpackHalf2x16(vw.x), v1 = unpackHalf2x16(vw.y);
          kr[u][e] = k0.x, kr[u][e + 1] = k0.y, kr[u][e + 2] = k1.x, kr[u][e + 3] = k1.y;
          vr[u][e] = v0.x, vr[u][e + 1] = v0.y, vr[u][e + 2] = v1.x, vr[u][e + 3] = v1.y;
        } else if (!KV_F16 && aligned) {
          const vec4 kw = kf4[(b + d) / 4], vw = vf4[(b + d) / 4];
          kr[u][e] = kw.x, kr[u][e + 1] = kw.y, kr[u][e + 2] = kw.z, kr[u][e + 3] = kw.w;
          vr[u][e] = vw.x, vr[u][e + 1] = vw.y, vr[u][e + 2] = vw.z, vr[u][e + 3] = vw.w;
        } else {
          [[unroll]] for (uint i = 0; i < 4; ++i) {
            kr[u][e + i] = d + i < D ? KAt(b + d + i) : 0.0;
            vr[u][e + i] = d + i < D ? VAt(b + d + i) : 0.0;
          }
        }
#ifdef UNICORN_ATTN_NEW_KV
        if (j == uint(new_pos)) {  // the token's own key: not yet in the store
          [[unroll]] for (uint i = 0; i < 4; ++i) {
            kr[u][e + i] = d + i < D ? new_k[d + i] : 0.0;
            vr[u][e + i] = d + i < D ? new_v[d + i] : 0.0;
          }
        }
#endif
      }
    }
    [[unroll]] for (uint gi = 0; gi < G; ++gi) {
      float sc[U];
      float mt = m[gi];
      [[unroll]] for (uint u = 0; u < U; ++u) {
        float part = 0.0;
        [[unroll]] for (uint e = 0; e < LD; ++e) part += qr[gi][e] * kr[u][e];
        sc[u] = ScoreCap(subgroupAdd(part));
        if (j0 + u * NSG < ke) mt = max(mt, sc[u]);
      }
      const float alpha = exp(m[gi] - mt);
      m[gi] = mt;
      l[gi] *= alpha;
      [[unroll]] for (uint e = 0; e < LD; ++e) o[gi][e] *= alpha;
      [[unroll]] for (uint u = 0; u < U; ++u) {
        const float pr = j0 + u * NSG < ke ? exp(sc[u] - mt) : 0.0;
        l[gi] += pr;
        [[unroll]] for (uint e = 0; e < LD; ++e) o[gi][e] += pr * vr[u][e];
      }
    }
  }

  // Merge the subgroups: the split's max M, each subgroup's weight
  // e^(m - M), then their outputs summed one subgroup after another.
  if (lane == 0) {
    [[unroll]] for (uint gi = 0; gi < G; ++gi) sg_ml[gi * MAX_SG + sg] = vec2(m[gi], l[gi]);
  }
  barrier();
  float mm[G], ll[G], w[G];
  [[unroll]] for (uint gi = 0; gi < G; ++gi) {
    mm[gi] = kNegBig;
    for (uint j = 0; j < NSG; ++j) mm[gi] = max(mm[gi], sg_ml[gi * MAX_SG + j].x);
    ll[gi] = 0.0;
    for (uint j = 0; j < NSG; ++j) {
      const vec2 ml = sg_ml[gi * MAX_SG + j];
      ll[gi] += ml.y * exp(ml.x - mm[gi]);
    }
    w[gi] = exp(m[gi] - mm[gi]);
  }
  for (uint j = 0; j < NSG; ++j) {
    if (sg == j) {
      [[unroll]] for (uint gi = 0; gi < G; ++gi) {
        [[unroll]] for (uint e = 0; e < LD; ++e) {
          const uint d = Dim(lane, e);
          if (d < D) acc[gi * MAXD + d] = (j == 0 ? 0.0 : acc[gi * MAXD + d]) + o[gi][e] * w[gi];
        }
      }
    }
    barrier();
  }
  for (uint i = tid; i < G * D; i += WG) {
    const uint gi = i / D, d = i % D;
    const uint base = (t * p.n_heads + g * G + gi) * p.n_splits + s;
    o_part[base * D + d] = acc[gi * MAXD + d];
    if (d == 0) ml_part[base] = vec2(mm[gi], ll[gi]);
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
