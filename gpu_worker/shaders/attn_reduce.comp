// Merges the key-range splits of attn_decode.comp: for token t, head h,
//   M = max_s m_s,  out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
//   o_part: [n, H, n_splits, D]   ml_part: [n, H, n_splits] vec2
//   out: [n, o_stride] F32 (head h at h * D)
// Workgroup (h, t), invocations over D.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { AttnPush p; };
layout(std430, binding = 0) readonly buffer OPart { float o_part[]; };
layout(std430, binding = 1) readonly buffer MLPart { vec2 ml_part[]; };
layout(std430, binding = 2) writeonly buffer Out { float out_[]; };

void main() {
  const uint h = gl_WorkGroupID.x, t = gl_WorkGroupID.y;
  const uint D = p.head_dim;
  const uint base = (t * p.n_heads + h) * p.n_splits;
  float mx = -1.0e30;
  for (uint s = 0; s < p.n_splits; ++s) mx = max(mx, ml_part[base + s].x);
  float l = 0.0;
  for (uint s = 0; s < p.n_splits; ++s) l += ml_part[base + s].y * exp(ml_part[base + s].x - mx);
  const float inv = l > 0.0 ? 1.0 / l : 0.0;
  for (uint d = gl_LocalInvocationID.x; d < D; d += WG) {
    float acc = 0.0;
    for (uint s = 0; s < p.n_splits; ++s) {
      acc += o_part[(base + s) * D + d] * exp(ml_part[base + s].x - mx);
    }
    out_[t * p.o_stride + h * D + d] = acc * inv;
  }
}
