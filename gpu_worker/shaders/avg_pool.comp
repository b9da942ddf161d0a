// Average pooling of a square token grid (Gemma 3's projector: 64x64 SigLIP
// tokens -> 16x16 image tokens):
//   x: [grid_in^2, C] -> y: [grid_out^2, C], y[oy*grid_out + ox, c] = mean of
//   the k x k block x[(oy*k + dy)*grid_in + ox*k + dx, c], k = grid_in / grid_out.
// Workgroup per output token, invocations over channels.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { PoolPush p; };
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Y { float y[]; };

void main() {
  const uint o = gl_WorkGroupID.x;
  const uint oy = o / p.grid_out, ox = o % p.grid_out;
  const uint k = p.grid_in / p.grid_out;
  const float inv = 1.0 / float(k * k);
  for (uint c = gl_LocalInvocationID.x; c < p.channels; c += WG) {
    float s = 0.0;
    for (uint dy = 0; dy < k; ++dy) {
      for (uint dx = 0; dx < k; ++dx) {
        s += x[((oy * k + dy) * p.grid_in + ox * k + dx) * p.channels + c];
      }
    }
    y[o * p.channels + c] = s * inv;
  }
}
