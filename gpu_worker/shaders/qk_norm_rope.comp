// Splits the fused QKV projection of n tokens into q (RMS-normed per head,
// rotated) and the K/V cache (k normed and rotated, v as is), see RopePush.
//   qkv: [n, qkv_stride] F32 holding q [H, D], k [Hkv, D], v [Hkv, D]
//   q_norm, k_norm: [D] (Gemma (1 + w) weights)   inv_freq: [D/2]
//   pos: [n] ivec2 (position, key end)
//   q: [n, H, D] F32     k_cache, v_cache: [Hkv, cap, D] F16, slot pos % cap
// Workgroup (head, token) with head in [0, H + Hkv): q heads, then kv heads.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;

#include "push_constants.h"
#include "common.glsl"
#include "reduce.glsl"
#include "rope.glsl"

layout(push_constant) uniform Push { RopePush p; };
layout(std430, binding = 0) readonly buffer QKV { float qkv[]; };
layout(std430, binding = 1) readonly buffer QN { float q_norm[]; };
layout(std430, binding = 2) readonly buffer KN { float k_norm[]; };
layout(std430, binding = 3) readonly buffer Freq { float inv_freq[]; };
layout(std430, binding = 4) readonly buffer Pos { ivec2 pos[]; };
layout(std430, binding = 5) writeonly buffer Q { float q[]; };
layout(std430, binding = 6) writeonly buffer KC { float16_t k_cache[]; };
layout(std430, binding = 7) writeonly buffer VC { float16_t v_cache[]; };

void main() {
  const uint head = gl_WorkGroupID.x;
  const uint t = gl_WorkGroupID.y;
  const uint tid = gl_LocalInvocationID.x;
  const uint D = p.head_dim, half_d = p.head_dim / 2;
  const bool is_q = head < p.n_heads;
  const uint kvh = head - p.n_heads;
  const uint src = t * p.qkv_stride + head * D;
  const int position = pos[t].x;
  const uint slot = uint(position) % p.cap;
  const uint cache = (kvh * p.cap + slot) * D;

  float scale = 1.0;
  if ((p.flags & UNICORN_ROPE_QK_NORM) != 0) {
    float ss = 0.0;
    for (uint i = tid; i < D; i += WG) ss += qkv[src + i] * qkv[src + i];
    scale = inversesqrt(WorkgroupSum(ss) / float(D) + p.eps);
  }
  for (uint i = tid; i < half_d; i += WG) {
    float x0 = qkv[src + i] * scale, x1 = qkv[src + i + half_d] * scale;
    if ((p.flags & UNICORN_ROPE_QK_NORM) != 0) {
      x0 *= 1.0 + (is_q ? q_norm[i] : k_norm[i]);
      x1 *= 1.0 + (is_q ? q_norm[i + half_d] : k_norm[i + half_d]);
    }
    const vec2 cs = RopeCosSin(float(position) * inv_freq[i]);
    const float y0 = x0 * cs.x - x1 * cs.y;
    const float y1 = x1 * cs.x + x0 * cs.y;
    if (is_q) {
      const uint o = (t * p.n_heads + head) * D;
      q[o + i] = y0;
      q[o + i + half_d] = y1;
    } else {
      k_cache[cache + i] = float16_t(y0);
      k_cache[cache + i + half_d] = float16_t(y1);
    }
  }
  if (!is_q) {
    const uint vsrc = t * p.qkv_stride + (p.n_heads + p.n_kv_heads + kvh) * D;
    for (uint i = tid; i < D; i += WG) v_cache[cache + i] = float16_t(qkv[vsrc + i]);
  }
}
