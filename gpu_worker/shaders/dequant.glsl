// Reading weights in their GGUF block layout (model/dtype.h) from binding 0,
// dequantizing in registers. The including shader defines DTYPE (a
// specialization constant, UNICORN_DT_*).
//
// A row of k weights is cut into chunks of 8 weights; chunk c yields two vec4
// (lo, hi) that multiply x[XLo(c) .. +3] and x[XHi(c) .. +3]:
//   Q4_0  block b = c / 4, quarter q = c % 4: bytes 4q..4q+3 of the block's
//         nibbles: weights 32b+4q.. (low nibbles) and 32b+16+4q.. (high)
//   Q8_0  weights 32b+8q .. 32b+8q+7
//   dense weights 8c .. 8c+7 (one 16-byte load for F16/BF16; needs k % 8 == 0,
//         else use LoadOne)
//   Q2_K..Q6_K weights 8c .. 8c+7 (dequant_kquant.glsl)

layout(std430, binding = 0) readonly buffer WeightU16 { uint16_t w_u16[]; };
layout(std430, binding = 0) readonly buffer WeightU4 { uvec4 w_u4[]; };
layout(std430, binding = 0) readonly buffer WeightU2 { uvec2 w_u2[]; };
layout(std430, binding = 0) readonly buffer WeightF4 { vec4 w_f4[]; };
layout(std430, binding = 0) readonly buffer WeightF { float w_f[]; };

#include "dequant_kquant.glsl"

uint XLo(uint c) {
  if (DTYPE == UNICORN_DT_Q4_0) return (c >> 2) * 32 + (c & 3) * 4;
  return c * 8;
}
uint XHi(uint c) {
  if (DTYPE == UNICORN_DT_Q4_0) return (c >> 2) * 32 + 16 + (c & 3) * 4;
  return c * 8 + 4;
}

vec4 Bf16x4(uvec2 u) {
  return vec4(uintBitsToFloat(u.x << 16), uintBitsToFloat(u.x & 0xFFFF0000u),
              uintBitsToFloat(u.y << 16), uintBitsToFloat(u.y & 0xFFFF0000u));
}
vec4 F16x4(uvec2 u) { return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
// The four int8 of a word, in element order (byte 0 first).
vec4 Int8x4(uint v) { return vec4(ivec4(uvec4(v) << uvec4(24, 16, 8, 0)) >> 24); }

// Chunk c of row r of a [*, k] matrix.
void LoadChunk(uint r, uint k, uint c, out vec4 lo, out vec4 hi) {
  if (DTYPE == UNICORN_DT_Q4_0) {
    const uint base = r * (k / 32) * 9 + (c >> 2) * 9;  // in uint16 units
    const uint q = c & 3;
    const float d = F16ToF32(uint(w_u16[base]));
    const uint v = uint(w_u16[base + 1 + 2 * q]) | (uint(w_u16[base + 2 + 2 * q]) << 16);
    const uvec4 nl = (uvec4(v) >> uvec4(0, 8, 16, 24)) & 0xFu;
    const uvec4 nh = (uvec4(v) >> uvec4(4, 12, 20, 28)) & 0xFu;
    lo = d * (vec4(nl) - 8.0);
    hi = d * (vec4(nh) - 8.0);
  } else if (DTYPE == UNICORN_DT_Q8_0) {
    const uint base = r * (k / 32) * 17 + (c >> 2) * 17;
    const uint q = c & 3;
    const float d = F16ToF32(uint(w_u16[base]));
    const uint b = base + 1 + 4 * q;
    const uint v0 = uint(w_u16[b]) | (uint(w_u16[b + 1]) << 16);
    const uint v1 = uint(w_u16[b + 2]) | (uint(w_u16[b + 3]) << 16);
    lo = d * Int8x4(v0);
    hi = d * Int8x4(v1);
  } else if (DTYPE == UNICORN_DT_Q4_K) {
    LoadQ4K(r, k, c, lo, hi);
  } else if (DTYPE == UNICORN_DT_Q6_K) {
    LoadQ6K(r, k, c, lo, hi);
  } else if (DTYPE == UNICORN_DT_Q5_K) {
    LoadQ5K(r, k, c, lo, hi);
  } else if (DTYPE == UNICORN_DT_Q3_K) {
    LoadQ3K(r, k, c, lo, hi);
  } else if (DTYPE == UNICORN_DT_Q2_K) {
    LoadQ2K(r, k, c, lo, hi);
  } else if (DTYPE == UNICORN_DT_F16) {
    const uvec4 u = w_u4[r * (k / 8) + c];
    lo = F16x4(u.xy);
    hi = F16x4(u.zw);
  } else if (DTYPE == UNICORN_DT_BF16) {
    const uvec4 u = w_u4[r * (k / 8) + c];
    lo = Bf16x4(u.xy);
    hi = Bf16x4(u.zw);
  } else {
    const uint i = (r * k + c * 8) / 4;
    lo = w_f4[i];
    hi = w_f4[i + 1];
  }
}

// Weight i of row r, dense types only (rows of any length).
float LoadOne(uint r, uint k, uint i) {
  if (DTYPE == UNICORN_DT_F16) return F16ToF32(uint(w_u16[r * k + i]));
  if (DTYPE == UNICORN_DT_BF16) return Bf16ToF32(uint(w_u16[r * k + i]));
  return w_f[r * k + i];
}
