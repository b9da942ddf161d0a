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
  float amax = 0.0;
  [[unroll]] for (uint i = 0; i < 8; ++i) {
    v[i] = x4[(t * p.x_stride + b * 32) / 4 + i];
    const vec4 a = abs(v[i]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  const float id = Q8InverseScale(amax);
  int sum = 0;
  uint words[8];
  [[unroll]] for (uint i = 0; i < 8; ++i) {
    int s4;
    words[i] = Q8Pack(v[i], id, s4);
    sum += s4;
  }
  const uint qbase = (t * p.k / 4 + b * 8) / 4;  // in uvec4
  q4[qbase] = uvec4(words[0], words[1], words[2], words[3]);
  q4[qbase + 1] = uvec4(words[4], words[5], words[6], words[7]);
  meta[(p.n * p.k / 4) / 2 + t * nb + b] = Q8Meta(amax, sum);
}
