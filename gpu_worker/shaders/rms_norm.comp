// Gemma RMSNorm: y = x * rsqrt(mean(x^2) + eps) * (1 + w), F32 throughout.
// One workgroup per row; see RmsNormPush.
//   x: [rows, n] (row stride x_stride)   w: [n]   y: [rows, n] (row stride y_stride)
// y may alias x (each element is read and written by the same invocation).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

#include "push_constants.h"
#include "reduce.glsl"

layout(push_constant) uniform Push { RmsNormPush p; };
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) buffer Y { float y[]; };

void main() {
  const uint row = gl_WorkGroupID.x;
  const uint xo = row * p.x_stride;
  const uint yo = row * p.y_stride;
  float ss = 0.0;
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
    float v = x[xo + i];
    ss += v * v;
  }
  ss = WorkgroupSum(ss);
  const float scale = inversesqrt(ss / float(p.n) + p.eps);
  for (uint i = gl_LocalInvocationID.x; i < p.n; i += WG) {
    y[yo + i] = x[xo + i] * scale * (1.0 + w[i]);
  }
}
