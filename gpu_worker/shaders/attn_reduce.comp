// Merges the key-range splits of attn_decode.comp: for token t, head h,
//   M = max_s m_s,  out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
//   o_part: [n, H, n_splits, D]   ml_part: [n, H, n_splits] vec2
//   out: [n, o_stride] F32 (head h at h * D)
// Workgroup (h, t), invocations over D.
// Built with UNICORN_ATTN_QUANT (the attn_reduce_q8 variant): also writes the
// output as int8 blocks (q8_activations.glsl) for the int8 o product, which
// needs no quantize_q8 dispatch then. Needs D % 32 == 0 and o_stride = H * D.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;

#include "push_constants.h"
#include "common.glsl"
#include "q8_activations.glsl"

layout(push_constant) uniform Push { AttnPush p; };
layout(std430, binding = 0) readonly buffer OPart { float o_part[]; };
layout(std430, binding = 1) readonly buffer MLPart { vec2 ml_part[]; };
layout(std430, binding = 2) writeonly buffer Out { float out_[]; };
#ifdef UNICORN_ATTN_QUANT
layout(std430, binding = 3) writeonly buffer Q4 { uvec4 q4[]; };
layout(std430, binding = 3) writeonly buffer Meta { uvec2 meta[]; };
shared float vals[UNICORN_MAX_HEAD_DIM];
#endif

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
#ifdef UNICORN_ATTN_QUANT
    vals[d] = acc * inv;
#endif
  }
#ifdef UNICORN_ATTN_QUANT
  // One invocation per block of 32: the head's blocks are whole (D % 32 == 0).
  barrier();
  const uint k = p.n_heads * D, nb = D / 32;
  for (uint b = gl_LocalInvocationID.x; b < nb; b += WG) {
    vec4 v[8];
    [[unroll]] for (uint i = 0; i < 8; ++i) {
      const uint e = b * 32 + i * 4;
      v[i] = vec4(vals[e], vals[e + 1], vals[e + 2], vals[e + 3]);
    }
    const Q8Block e = Q8EncodeBlock(v);
    const uint blk = h * nb + b;  // the block's index in the token's k
    const uint q = Q8QuadIndex(t, blk, k);
    q4[q] = e.lo;
    q4[q + 1] = e.hi;
    meta[Q8MetaIndex(t, blk, p.n_tokens, k)] = e.meta;
  }
#endif
}
