// Activations to int8 blocks for the integer-dot products
// (matvec_int8.comp); q8_activations.glsl has the formula and the layout.
//   x: [n, x_stride] F32 (k % 32 == 0, x_stride % 4 == 0)   xq: n tokens of k
// Push: MatMulPush (k, n, x_stride). Dispatch: (ceil(k / 32 / WG), n), one
// invocation per block.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

#include "push_constants.h"
#include "common.glsl"
#include "q8_activations.glsl"

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer Q4 { uvec4 q4[]; };
layout(std430, binding = 1) writeonly buffer Meta { uvec2 meta[]; };

void main() {
  const uint nb = p.k / 32;
  const uint b = gl_WorkGroupID.x * WG + gl_LocalInvocationID.x;
  const uint t = gl_WorkGroupID.y;
  if (b >= nb || t >= p.n) return;
  vec4 v[8];
  [[unroll]] for (uint i = 0; i < 8; ++i) v[i] = x4[(t * p.x_stride + b * 32) / 4 + i];
  const Q8Block e = Q8EncodeBlock(v);
  const uint q = Q8QuadIndex(t, b, p.k);
  q4[q] = e.lo;
  q4[q + 1] = e.hi;
  meta[Q8MetaIndex(t, b, p.n, p.k)] = e.meta;
}
