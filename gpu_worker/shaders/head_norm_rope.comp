// Per-head RMS-norm and rotary embedding, optionally straight into the K/V
// store (see HeadPush):
//   x: [n, heads, D] F32 (in place unless STORE)   w: [D] (Gemma (1 + w))
//   inv_freq: [D/2]   pos: [n] i32
//   STORE: k_store, v_store [rings * cap, heads * D] F32 at slot pos % cap of
//   ring 0, or (RINGS) of ring rings[t]; v: [n, heads * D]   rings: [n] i32
// Workgroup (head, token).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;
layout(constant_id = 3) const uint FLAGS = 0;

#include "push_constants.h"
#include "common.glsl"
#include "reduce.glsl"
#include "rope.glsl"

layout(push_constant) uniform Push { HeadPush p; };
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) readonly buffer Freq { float inv_freq[]; };
layout(std430, binding = 3) readonly buffer Pos { int pos[]; };
layout(std430, binding = 4) writeonly buffer KS { float k_store[]; };
layout(std430, binding = 5) readonly buffer V { float v[]; };
layout(std430, binding = 6) writeonly buffer VS { float v_store[]; };
layout(std430, binding = 7) readonly buffer Rings { int rings[]; };

void main() {
  const uint head = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  const uint tid = gl_LocalInvocationID.x;
  const uint D = p.head_dim, half_d = p.head_dim / 2;
  const uint src = (t * p.heads + head) * D;
  const int position = pos[t];
  const uint ring = (FLAGS & UNICORN_HEAD_RINGS) != 0 ? uint(max(rings[t], 0)) : 0u;
  const uint slot = ring * p.cap + uint(max(position, 0)) % max(p.cap, 1u);
  const uint dst = slot * p.heads * D + head * D;

  float scale = 1.0;
  if ((FLAGS & UNICORN_HEAD_NORM) != 0) {
    float ss = 0.0;
    for (uint i = tid; i < D; i += WG) ss += x[src + i] * x[src + i];
    scale = inversesqrt(WorkgroupSum(ss) / float(D) + p.eps);
  }
  for (uint i = tid; i < half_d; i += WG) {
    float x0 = x[src + i], x1 = x[src + i + half_d];
    if ((FLAGS & UNICORN_HEAD_NORM) != 0) {
      x0 *= scale * (1.0 + w[i]);
      x1 *= scale * (1.0 + w[i + half_d]);
    }
    if ((FLAGS & UNICORN_HEAD_ROPE) != 0) {
      const vec2 y = RotatePair(x0, x1, position, inv_freq[i]);
      x0 = y.x;
      x1 = y.y;
    }
    if ((FLAGS & UNICORN_HEAD_STORE) != 0) {
      k_store[dst + i] = x0;
      k_store[dst + i + half_d] = x1;
    } else {
      x[src + i] = x0;
      x[src + i + half_d] = x1;
    }
  }
  if ((FLAGS & UNICORN_HEAD_STORE) != 0) {
    for (uint i = tid; i < D; i += WG) v_store[dst + i] = v[src + i];
  }
}
