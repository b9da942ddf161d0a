// Unfolds an image into patch rows so that the patch embedding is a matrix
// product with the conv weight [out, C, P, P] seen as [out, C*P*P]:
//   image: [C, S, S] F32 -> patches: [(S/P)^2, C*P*P], patch (py, px) at row
//   py * (S/P) + px, element (c, ky, kx) at c*P*P + ky*P + kx.
// One invocation per output element (dispatch ceil(total / WG), flattened).
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;

#include "push_constants.h"
#include "common.glsl"

layout(push_constant) uniform Push { PatchPush p; };
layout(std430, binding = 0) readonly buffer Img { float img[]; };
layout(std430, binding = 1) writeonly buffer Patches { float patches[]; };

void main() {
  const uint P = p.patch_size, S = p.image_size, grid = S / P;
  const uint row_len = p.channels * P * P;
  const uint i = FlatGroup() * WG + gl_LocalInvocationID.x;
  if (i >= grid * grid * row_len) return;
  const uint pi = i / row_len, e = i % row_len;
  const uint py = pi / grid, px = pi % grid;
  const uint ch = e / (P * P), ky = (e / P) % P, kx = e % P;
  patches[i] = img[(ch * S + py * P + ky) * S + px * P + kx];
}
