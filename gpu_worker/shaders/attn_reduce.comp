// Merges the key-range splits of attn_decode.comp (attn_merge.glsl says
// how). Workgroup (h, t), invocations over D.
// The last binding: the spans, which say how many splits each token used.
// Built with UNICORN_ATTN_QUANT (the attn_reduce_q8 variant): also writes the
// output as int8 blocks for the int8 o product, which needs no quantize_q8
// dispatch then.
#version 450
#extension GL_GOOGLE_include_directive : require

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 128;

#include "push_constants.h"
#include "common.glsl"
#include "q8_activations.glsl"
#include "reduce.glsl"

layout(push_constant) uniform Push { AttnPush p; };
layout(std430, binding = 0) readonly buffer OPart { float o_part[]; };
layout(std430, binding = 1) readonly buffer MLPart { vec2 ml_part[]; };
layout(std430, binding = 2) writeonly buffer Out { float out_[]; };
#ifdef UNICORN_ATTN_QUANT
layout(std430, binding = 3) writeonly buffer Q4 { uvec4 q4[]; };
layout(std430, binding = 3) writeonly buffer Meta { uvec2 meta[]; };
#endif
#ifdef UNICORN_ATTN_QUANT
layout(std430, binding = 4) readonly buffer Spans { ivec2 spans[]; };
#else
layout(std430, binding = 3) readonly buffer Spans { ivec2 spans[]; };
#endif
#include "attn_keys.glsl"
#include "attn_merge.glsl"

void main() { MergeHead(gl_WorkGroupID.x, gl_WorkGroupID.y); }
