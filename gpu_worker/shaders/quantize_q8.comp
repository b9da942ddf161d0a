// Activations to int8 blocks for the integer-dot products
// (matvec_int8.comp), as the CPU backend's QuantizeRowQ8 does: each block of
// 32 floats becomes d = max|x| / 127 and q = round_half_even(x / d) (all
// zero for an all-zero block), so x ~= d * q.
//   x: [n, x_stride] F32 (k % 32 == 0, x_stride % 4 == 0)
//   xq: qs [n, k / 4] uint (4 int8 each, in element order), then at word
//       n * k / 4 the blocks' meta [n, k / 32] uvec2: (bits of d,
//       0x4B400000 - 8 * sum(q)), the second the bias a Q4_0 product adds
//       to its integer sum (matvec_int8.comp says why).
// Push: MatMulPush (k, n, x_stride). Dispatch: (ceil(k / 32 / WG), n).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { MatMulPush p; };
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) writeonly buffer Q4 { uvec4 q4[]; };
layout(std430, binding = 1) writeonly buffer Meta { uvec2 meta[]; };

uint Pack(ivec4 q) {
  const uvec4 u = uvec4(q) & 0xFFu;
  return u.x | (u.y << 8) | (u.z << 16) | (u.w << 24);
}

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
  const float d = amax / 127.0;
  const float id = d != 0.0 ? 1.0 / d : 0.0;
  int sum = 0;
  uint words[8];
  [[unroll]] for (uint i = 0; i < 8; ++i) {
    const ivec4 q = clamp(ivec4(roundEven(v[i] * id)), -127, 127);
    sum += q.x + q.y + q.z + q.w;
    words[i] = Pack(q);
  }
  const uint qbase = (t * p.k / 4 + b * 8) / 4;  // in uvec4
  q4[qbase] = uvec4(words[0], words[1], words[2], words[3]);
  q4[qbase + 1] = uvec4(words[4], words[5], words[6], words[7]);
  meta[(p.n * p.k / 4) / 2 + t * nb + b] = uvec2(floatBitsToUint(d), uint(0x4B400000 - 8 * sum));
}
