// The first index of each row's largest value, ids[r] = argmax x[r, 0..n),
// with model/sampler.h Argmax's rule: torch.argmax's ties (the first index),
// a NaN never wins, and a row of only -inf and NaN gives its first -inf
// (all NaN: 0). Greedy rows need only this, not their logits.
//   x: [rows, stride] f32   ids: [rows] i32
// Dispatch: one workgroup per row (flattened); WG a power of two.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 1024;

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { ArgmaxPush p; };
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) writeonly buffer Ids { int ids[]; };

const uint NONE = 0xFFFFFFFFu;
shared float best_v[WG];
shared uint best_i[WG];

// Whether (v, i) beats the best so far (bv, bi): anything but a NaN beats
// none; else a larger value, or the same value at a smaller index.
bool Beats(float v, uint i, float bv, uint bi) {
  if (i == NONE || isnan(v)) return false;
  return bi == NONE || v > bv || (v == bv && i < bi);
}

void main() {
  const uint tid = gl_LocalInvocationID.x, base = FlatGroup() * p.stride;
  float bv = 0.0;
  uint bi = NONE;
  for (uint i = tid; i < p.n; i += WG) {
    const float v = x[base + i];
    if (Beats(v, i, bv, bi)) {
      bv = v;
      bi = i;
    }
  }
  best_v[tid] = bv;
  best_i[tid] = bi;
  barrier();
  for (uint s = WG / 2; s > 0; s /= 2) {
    if (tid < s && Beats(best_v[tid + s], best_i[tid + s], best_v[tid], best_i[tid])) {
      best_v[tid] = best_v[tid + s];
      best_i[tid] = best_i[tid + s];
    }
    barrier();
  }
  if (tid == 0) ids[FlatGroup()] = best_i[0] == NONE ? 0 : int(best_i[0]);
}
