#include "model/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/kquant.h"

namespace unicorn {
namespace {

using BlockFn = void (*)(const uint8_t*, float*);
using QBlockFn = void (*)(const float*, uint8_t*);

void DequantBlocks(BlockFn fn, DType t, const uint8_t* src, float* dst, int64_t n) {
  const DTypeTraits& tr = Traits(t);
  for (int64_t b = 0; b < n / tr.block_elems; ++b) {
    fn(src + b * tr.block_bytes, dst + b * tr.block_elems);
  }
}

void QuantBlocks(QBlockFn fn, DType t, const float* src, uint8_t* dst, int64_t n) {
  const DTypeTraits& tr = Traits(t);
  for (int64_t b = 0; b < n / tr.block_elems; ++b) {
    fn(src + b * tr.block_elems, dst + b * tr.block_bytes);
  }
}

}  // namespace

float F16ToF32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | uint32_t(127 - 15 - e) << 23 | (mant & 0x3ff) << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | mant << 13;  // inf / nan
  } else {
    bits = sign | (exp + 127 - 15) << 23 | mant << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t F32ToF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  int32_t exp = int32_t((x >> 23) & 0xff) - 127 + 15;
  uint32_t mant = x & 0x7fffff;
  if (((x >> 23) & 0xff) == 0xff) return uint16_t(sign | 0x7c00 | (mant ? 0x200 : 0));
  if (exp >= 31) return uint16_t(sign | 0x7c00);
  if (exp <= 0) {
    if (exp < -10) return uint16_t(sign);
    mant |= 0x800000;
    uint32_t shift = uint32_t(14 - exp);
    uint32_t half = 1u << (shift - 1);
    uint32_t r = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return uint16_t(sign | r);
  }
  uint32_t r = uint32_t(exp) << 10 | mant >> 13;
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;  // may carry into the exponent: fine
  return uint16_t(sign | r);
}

uint16_t F32ToBF16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 0x40);  // quiet nan
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

void DequantizeRow(DType type, const uint8_t* src, float* dst, int64_t n) {
  switch (type) {
    case DType::kQ2_K:
      return DequantBlocks(DequantizeQ2_K, type, src, dst, n);
    case DType::kQ3_K:
      return DequantBlocks(DequantizeQ3_K, type, src, dst, n);
    case DType::kQ4_K:
      return DequantBlocks(DequantizeQ4_K, type, src, dst, n);
    case DType::kQ5_K:
      return DequantBlocks(DequantizeQ5_K, type, src, dst, n);
    case DType::kQ6_K:
      return DequantBlocks(DequantizeQ6_K, type, src, dst, n);
    case DType::kNF4:
      return DequantBlocks(DequantizeNF4, type, src, dst, n);
    case DType::kF32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = F16ToF32(h);
      }
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        dst[i] = BF16ToF32(h);
      }
      return;
    case DType::kQ8_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        BlockQ8_0 blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ8_0), sizeof(blk));
        float d = F16ToF32(blk.d);
        for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * blk.qs[j];
      }
      return;
    case DType::kQ4_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        BlockQ4_0 blk;
        std::memcpy(&blk, src + b * sizeof(BlockQ4_0), sizeof(blk));
        float d = F16ToF32(blk.d);
        for (int j = 0; j < 16; ++j) {
          dst[b * 32 + j] = d * (int(blk.qs[j] & 0x0f) - 8);
          dst[b * 32 + j + 16] = d * (int(blk.qs[j] >> 4) - 8);
        }
      }
      return;
  }
}

void QuantizeRow(DType type, const float* src, uint8_t* dst, int64_t n) {
  switch (type) {
    case DType::kQ2_K:
      return QuantBlocks(QuantizeQ2_K, type, src, dst, n);
    case DType::kQ3_K:
      return QuantBlocks(QuantizeQ3_K, type, src, dst, n);
    case DType::kQ4_K:
      return QuantBlocks(QuantizeQ4_K, type, src, dst, n);
    case DType::kQ5_K:
      return QuantBlocks(QuantizeQ5_K, type, src, dst, n);
    case DType::kQ6_K:
      return QuantBlocks(QuantizeQ6_K, type, src, dst, n);
    case DType::kNF4:
      return QuantBlocks(QuantizeNF4, type, src, dst, n);
    case DType::kF32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = F32ToF16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h = F32ToBF16(src[i]);
        std::memcpy(dst + 2 * i, &h, 2);
      }
      return;
    case DType::kQ8_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        const float* x = src + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(x[j]));
        float d = amax / 127.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        BlockQ8_0 blk;
        blk.d = F32ToF16(d);
        for (int j = 0; j < 32; ++j) blk.qs[j] = int8_t(std::lround(x[j] * id));
        std::memcpy(dst + b * sizeof(BlockQ8_0), &blk, sizeof(blk));
      }
      return;
    case DType::kQ4_0:
      for (int64_t b = 0; b < n / 32; ++b) {
        const float* x = src + b * 32;
        float amax = 0, vmax = 0;
        for (int j = 0; j < 32; ++j) {
          if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            vmax = x[j];
          }
        }
        float d = vmax / -8.0f;
        float id = d != 0 ? 1.0f / d : 0.0f;
        BlockQ4_0 blk;
        blk.d = F32ToF16(d);
        for (int j = 0; j < 16; ++j) {
          int lo = std::min(15, int(x[j] * id + 8.5f));
          int hi = std::min(15, int(x[j + 16] * id + 8.5f));
          blk.qs[j] = uint8_t(lo | hi << 4);
        }
        std::memcpy(dst + b * sizeof(BlockQ4_0), &blk, sizeof(blk));
      }
      return;
  }
}

}  // namespace unicorn
