// K/V access and masking shared by the attention kernels (see AttnPush).
// The including shader defines KV_F16 (specialization constant) and binds
// k at binding 1, v at binding 2, spans at binding 3.

layout(std430, binding = 1) readonly buffer K16 { float16_t k16[]; };
layout(std430, binding = 1) readonly buffer K32 { float k32[]; };
layout(std430, binding = 2) readonly buffer V16 { float16_t v16[]; };
layout(std430, binding = 2) readonly buffer V32 { float v32[]; };
layout(std430, binding = 3) readonly buffer Spans { ivec2 spans[]; };

// Element d of the key / value at position j of kv head g.
uint KvIndex(uint g, uint j, uint d) {
  return g * p.kv_head_stride + (j % p.cap) * p.kv_token_stride + d;
}
float KAt(uint i) { return KV_F16 ? float(k16[i]) : k32[i]; }
float VAt(uint i) { return KV_F16 ? float(v16[i]) : v32[i]; }

#include "attn_keys.glsl"

float ScoreCap(float s) { return p.softcap > 0.0 ? p.softcap * SafeTanh(s / p.softcap) : s; }
