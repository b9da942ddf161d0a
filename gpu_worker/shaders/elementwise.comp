// Element-wise ops over n floats (see ElementwisePush), OP a specialization
// constant: ADD y = a + b; GEGLU y = gelu(a) * b; SOFTCAP y = param * tanh(a / param);
// GELU y = gelu(a).
// y may alias a or b. Dispatch ceil(n / WG) workgroups (flattened).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 3) const uint OP = 0;

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { ElementwisePush p; };
layout(std430, binding = 0) readonly buffer A { float a[]; };
layout(std430, binding = 1) readonly buffer B { float b[]; };
layout(std430, binding = 2) writeonly buffer Y { float y[]; };

void main() {
  const uint i = FlatGroup() * WG + gl_LocalInvocationID.x;
  if (i >= p.n) return;
  if (OP == UNICORN_EW_ADD) {
    y[i] = a[i] + b[i];
  } else if (OP == UNICORN_EW_GEGLU) {
    y[i] = GeluTanh(a[i]) * b[i];
  } else if (OP == UNICORN_EW_GELU) {
    y[i] = GeluTanh(a[i]);
  } else {
    y[i] = p.param * SafeTanh(a[i] / p.param);
  }
}
