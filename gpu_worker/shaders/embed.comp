// Embedding lookup: y[t, :] = dequant(table[ids[t], :]) * scale (Gemma scales
// by sqrt(hidden)). One workgroup per token; ids outside [0, vocab) give zeros
// (the host validates ids; this only keeps a bad id from reading past the table).
//   table: [vocab, k] (DTYPE)   ids: [n] uint   y: [n, y_stride] F32
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;
layout(constant_id = 3) const uint DTYPE = 0;

#include "push_constants.h"
#include "common.glsl"
#include "dequant.glsl"

layout(push_constant) uniform Push { EmbedPush p; };
layout(std430, binding = 1) readonly buffer Ids { uint ids[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

void main() {
  const uint t = FlatGroup();
  if (t >= p.n) return;
  const uint id = ids[t];
  const uint yo = t * p.y_stride;
  const uint tid = gl_LocalInvocationID.x;
  if (id >= p.vocab) {
    for (uint i = tid; i < p.k; i += WG) y[yo + i] = 0.0;
    return;
  }
  if (DTYPE >= UNICORN_DT_Q8_0 || p.k % 8 == 0) {
    for (uint c = tid; c < p.k / 8; c += WG) {
      vec4 lo, hi;
      LoadChunk(id, p.k, c, lo, hi);
      const uint il = XLo(c), ih = XHi(c);
      [[unroll]] for (uint e = 0; e < 4; ++e) {
        y[yo + il + e] = lo[e] * p.scale;
        y[yo + ih + e] = hi[e] * p.scale;
      }
    }
  } else {
    for (uint i = tid; i < p.k; i += WG) y[yo + i] = LoadOne(id, p.k, i) * p.scale;
  }
}
