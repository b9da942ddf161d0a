// Reference conversions between the weight formats of model/dtype.h and f32.
// These are the CPU twins that every fast kernel (SIMD, Vulkan, NPU) is
// tested against; they favour clarity over speed.
#pragma once

#include <cstdint>

#include "model/dtype.h"

namespace unicorn {

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);  // round to nearest even
inline float BF16ToF32(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}
uint16_t F32ToBF16(float f);  // round to nearest even

// Dequantizes one row of `n` elements (n a multiple of the block size).
void DequantizeRow(DType type, const uint8_t* src, float* dst, int64_t n);

// Quantizes one row, the way llama.cpp's reference quantizers do:
//   Q8_0: d = max|x| / 127,  q = round(x / d)
//   Q4_0: d = x_m / -8 where x_m is the value of largest magnitude (sign
//         kept), q = clamp(round(x / d + 8), 0, 15)
// F32/F16/BF16 are converted. `dst` holds RowBytes(type, n) bytes.
void QuantizeRow(DType type, const float* src, uint8_t* dst, int64_t n);

}  // namespace unicorn
