// Row normalisations, F32 throughout, one workgroup per row (see NormPush):
//   MODE RMS:     y = x * rsqrt(mean(x^2) + eps) * (1 + w)          (Gemma RMSNorm, QK-norm)
//   MODE LAYER:   y = (x - mean) * rsqrt(var + eps) * w + aux        (SigLIP LayerNorm)
//   MODE ADD:     h += RMS(x, w)                                      (post-norm + residual)
//   MODE ADD_RMS: h += RMS(x, w); y = RMS(h, aux)                     (post-norm + residual
//                                                                       + the next pre-norm)
// x: [rows, n]  w, aux: [n]  h: [rows, n]  y: [rows, n]   (rows of the given strides)
// y may alias x (each element is read and written by the same invocation).
// Built with UNICORN_NORM_QUANT (the norm_q8 variant; ADD_RMS, n % 32 == 0,
// dense rows): y is also written as int8 blocks into xq (binding 5), as
// q8_activations.glsl defines them, for the int8 products that
// read it (8 neighbouring invocations hold a block of 32, and exchange
// their maxima and sums by subgroup shuffles). A variant of its own, so that
// devices without subgroup shuffles keep the plain norm.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 256;
layout(constant_id = 3) const uint MODE = 0;

#include "push_constants.h"
#include "common.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Push { NormPush p; };
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer W { float w[]; };
layout(std430, binding = 2) buffer Y { float y[]; };
layout(std430, binding = 3) readonly buffer Aux { float aux[]; };
layout(std430, binding = 4) buffer H { float h[]; };
// The same buffers as vec4 (rows of a multiple of 4 floats): one 16-byte
// load per invocation keeps a decode step's single-row norm short.
layout(std430, binding = 0) readonly buffer X4 { vec4 x4[]; };
layout(std430, binding = 1) readonly buffer W4 { vec4 w4[]; };
layout(std430, binding = 2) buffer Y4 { vec4 y4[]; };
layout(std430, binding = 3) readonly buffer Aux4 { vec4 aux4[]; };
layout(std430, binding = 4) buffer H4 { vec4 h4[]; };
#ifdef UNICORN_NORM_QUANT
#extension GL_KHR_shader_subgroup_shuffle : require
#include "q8_activations.glsl"
layout(std430, binding = 5) writeonly buffer XQ { uint xq[]; };
layout(std430, binding = 5) writeonly buffer XMeta { uvec2 xmeta[]; };

// Over the 8 neighbouring subgroup invocations that hold one block.
float BlockMax(float v) {
  v = max(v, subgroupShuffleXor(v, 1));
  v = max(v, subgroupShuffleXor(v, 2));
  return max(v, subgroupShuffleXor(v, 4));
}
int BlockSum(int v) {
  v += subgroupShuffleXor(v, 1);
  v += subgroupShuffleXor(v, 2);
  return v + subgroupShuffleXor(v, 4);
}

// Element group i (4 floats) of row `row`'s y into int8: the block's scale
// from the 8 invocations that hold it.
void Quantize4(uint row, uint i, vec4 v) {
  const vec4 a = abs(v);
  const float amax = BlockMax(max(max(a.x, a.y), max(a.z, a.w)));
  int s4;
  xq[row * (p.n / 4) + i] = Q8Pack(v, Q8InverseScale(amax), s4);
  const int sum = BlockSum(s4);
  if (i % 8 == 0) xmeta[Q8MetaIndex(row, i / 8, p.rows, p.n)] = Q8Meta(amax, sum);
}
#endif

// RmsVec4 where every invocation holds at most one group of 4 (a decode
// step's rows: 2560 floats on 1024 invocations). Its loads are all issued
// before the first reduction: four dependent trips to memory fewer. The
// same arithmetic, in the same order, as the loops below.
void RmsVec4Held(uint row, uint tid) {
  const uint n4 = p.n / 4;
  const uint xo = row * p.x_stride / 4, yo = row * p.y_stride / 4, ho = row * p.h_stride / 4;
  const bool on = tid < n4;
  const bool adds = MODE == UNICORN_NORM_ADD || MODE == UNICORN_NORM_ADD_RMS;
  const vec4 xv = on ? x4[xo + tid] : vec4(0.0), wv = on ? w4[tid] : vec4(0.0);
  const vec4 hv = on && adds ? h4[ho + tid] : vec4(0.0);
  const vec4 av = on && MODE == UNICORN_NORM_ADD_RMS ? aux4[tid] : vec4(0.0);
  const float scale = inversesqrt(WorkgroupSum(dot(xv, xv)) / float(p.n) + p.eps);
  if (MODE == UNICORN_NORM_RMS) {
    if (on) y4[yo + tid] = xv * scale * (1.0 + wv);
    return;
  }
  const vec4 v = hv + xv * scale * (1.0 + wv);
  if (on) h4[ho + tid] = v;
  if (MODE == UNICORN_NORM_ADD) return;
  const float scale2 = inversesqrt(WorkgroupSum(dot(v, v)) / float(p.n) + p.eps);
  const vec4 yv = v * scale2 * (1.0 + av);
  if (on) {
    y4[yo + tid] = yv;
#ifdef UNICORN_NORM_QUANT
    Quantize4(row, tid, yv);  // n4 % 8 == 0: a block's 8 invocations are all on
#endif
  }
}

// RMS modes over rows of n = 4 * n4 floats (strides multiples of 4).
void RmsVec4(uint row, uint tid) {
  const uint n4 = p.n / 4;
  if (n4 <= WG) {
    RmsVec4Held(row, tid);
    return;
  }
  const uint xo = row * p.x_stride / 4, yo = row * p.y_stride / 4, ho = row * p.h_stride / 4;
  float ss = 0.0;
  for (uint i = tid; i < n4; i += WG) ss += dot(x4[xo + i], x4[xo + i]);
  const float scale = inversesqrt(WorkgroupSum(ss) / float(p.n) + p.eps);
  if (MODE == UNICORN_NORM_RMS) {
    for (uint i = tid; i < n4; i += WG) y4[yo + i] = x4[xo + i] * scale * (1.0 + w4[i]);
    return;
  }
  if (MODE == UNICORN_NORM_ADD) {
    for (uint i = tid; i < n4; i += WG) h4[ho + i] += x4[xo + i] * scale * (1.0 + w4[i]);
    return;
  }
  float ss2 = 0.0;
  for (uint i = tid; i < n4; i += WG) {
    const vec4 v = h4[ho + i] + x4[xo + i] * scale * (1.0 + w4[i]);
    h4[ho + i] = v;
    ss2 += dot(v, v);
  }
  const float scale2 = inversesqrt(WorkgroupSum(ss2) / float(p.n) + p.eps);
  for (uint i = tid; i < n4; i += WG) {
    const vec4 v = h4[ho + i] * scale2 * (1.0 + aux4[i]);
    y4[yo + i] = v;
#ifdef UNICORN_NORM_QUANT
    Quantize4(row, i, v);
#endif
  }
}

void main() {
  const uint row = FlatGroup();
  if (row >= p.rows) return;  // whole workgroups only: the barriers stay uniform
  const uint xo = row * p.x_stride;
  const uint yo = row * p.y_stride;
  const uint tid = gl_LocalInvocationID.x;
  if (MODE == UNICORN_NORM_LAYER) {
    float s = 0.0;
    for (uint i = tid; i < p.n; i += WG) s += x[xo + i];
    const float mean = WorkgroupSum(s) / float(p.n);
    float ss = 0.0;
    for (uint i = tid; i < p.n; i += WG) {
      const float d = x[xo + i] - mean;
      ss += d * d;
    }
    const float rstd = inversesqrt(WorkgroupSum(ss) / float(p.n) + p.eps);
    for (uint i = tid; i < p.n; i += WG) y[yo + i] = (x[xo + i] - mean) * rstd * w[i] + aux[i];
    return;
  }
  if (p.n % 4 == 0 && p.x_stride % 4 == 0 && p.y_stride % 4 == 0 && p.h_stride % 4 == 0) {
    RmsVec4(row, tid);
    return;
  }
  float ss = 0.0;
  for (uint i = tid; i < p.n; i += WG) {
    const float v = x[xo + i];
    ss += v * v;
  }
  const float scale = inversesqrt(WorkgroupSum(ss) / float(p.n) + p.eps);
  if (MODE == UNICORN_NORM_RMS) {
    for (uint i = tid; i < p.n; i += WG) y[yo + i] = x[xo + i] * scale * (1.0 + w[i]);
    return;
  }
  const uint ho = row * p.h_stride;
  if (MODE == UNICORN_NORM_ADD) {
    for (uint i = tid; i < p.n; i += WG) h[ho + i] += x[xo + i] * scale * (1.0 + w[i]);
    return;
  }
  // ADD_RMS
  float ss2 = 0.0;
  for (uint i = tid; i < p.n; i += WG) {
    const float v = h[ho + i] + x[xo + i] * scale * (1.0 + w[i]);
    h[ho + i] = v;
    ss2 += v * v;
  }
  const float scale2 = inversesqrt(WorkgroupSum(ss2) / float(p.n) + p.eps);
  for (uint i = tid; i < p.n; i += WG) y[yo + i] = h[ho + i] * scale2 * (1.0 + aux[i]);
}
