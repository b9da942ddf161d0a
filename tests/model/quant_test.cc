// Block formats, checked against blocks computed by hand (the layouts of
// model/dtype.h, which are ggml's).
#include "model/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace unicorn {
namespace {

TEST(Quant, F16AndBF16) {
  EXPECT_EQ(F16ToF32(0x3c00), 1.0f);
  EXPECT_EQ(F16ToF32(0xc000), -2.0f);
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(F16ToF32(0x7bff), 65504.0f);
  EXPECT_TRUE(std::isinf(F16ToF32(0x7c00)));
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);                      // rounds up to inf
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie -> even
  EXPECT_EQ(BF16ToF32(0x3f80), 1.0f);
  EXPECT_EQ(BF16ToF32(0xbfc0), -1.5f);
  EXPECT_EQ(F32ToBF16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);  // tie -> even
  EXPECT_EQ(F32ToBF16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
}

TEST(Quant, Q8_0HandBlock) {
  // d = 0.5 (f16 0x3800); q = -128..-97 -> w = d * q.
  uint8_t blk[34];
  const uint16_t d = 0x3800;
  std::memcpy(blk, &d, 2);
  for (int j = 0; j < 32; ++j) blk[2 + j] = uint8_t(int8_t(-128 + j));
  float out[32];
  DequantizeRow(DType::kQ8_0, blk, out, 32);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(out[j], 0.5f * (-128 + j)) << j;
}

TEST(Quant, Q4_0HandBlock) {
  // d = 2 (f16 0x4000). Byte j: low nibble -> weight j, high nibble -> j + 16.
  uint8_t blk[18];
  const uint16_t d = 0x4000;
  std::memcpy(blk, &d, 2);
  for (int j = 0; j < 16; ++j) blk[2 + j] = uint8_t(j | (15 - j) << 4);
  float out[32];
  DequantizeRow(DType::kQ4_0, blk, out, 32);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(out[j], 2.0f * (j - 8)) << j;
    EXPECT_EQ(out[j + 16], 2.0f * (15 - j - 8)) << j;
  }
}

TEST(Quant, QuantizeMatchesHandComputedBlocks) {
  float x[32];
  for (int j = 0; j < 32; ++j) x[j] = float(j - 16) / 4;  // -4 .. 3.75
  // Q8_0: d = 4 / 127; q = round(x / d).
  uint8_t q8[34];
  QuantizeRow(DType::kQ8_0, x, q8, 32);
  uint16_t d8;
  std::memcpy(&d8, q8, 2);
  EXPECT_EQ(d8, F32ToF16(4.0f / 127));
  EXPECT_EQ(int8_t(q8[2]), -127);      // x = -4
  EXPECT_EQ(int8_t(q8[2 + 16]), 0);    // x = 0
  EXPECT_EQ(int8_t(q8[2 + 31]), 119);  // 3.75 * 127 / 4 = 119.06
  // Q4_0: the largest magnitude is -4, d = -4 / -8 = 0.5; nibble = x / d + 8.
  uint8_t q4[18];
  QuantizeRow(DType::kQ4_0, x, q4, 32);
  uint16_t d4;
  std::memcpy(&d4, q4, 2);
  EXPECT_EQ(F16ToF32(d4), 0.5f);
  EXPECT_EQ(q4[2] & 0x0f, 0);       // x[0] = -4 -> 0
  EXPECT_EQ(q4[2] >> 4, 8);         // x[16] = 0 -> 8
  EXPECT_EQ(q4[2 + 15] >> 4, 15);   // x[31] = 3.75 -> 15.5, clamped to 15
  EXPECT_EQ(q4[2 + 15] & 0x0f, 8);  // x[15] = -0.25 -> -0.5 + 8.5 = 8
}

TEST(Quant, RoundTripErrorBounds) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> x(4096), y(4096);
  for (float& v : x) v = u(rng);
  std::vector<uint8_t> buf(RowBytes(DType::kQ4_0, 4096) + RowBytes(DType::kQ8_0, 4096) + 4096 * 4);
  // Worst cases for |x| < 1: half an ulp for f16/bf16; half a step (amax/127)
  // for Q8_0 plus the f16 rounding of the scale; for Q4_0 a whole step
  // (amax/8): the block's extreme maps to -8 steps, while a value of the
  // opposite sign and equal size would need +8 and is clamped to +7.
  struct Case {
    DType t;
    float tol;
  };
  for (Case c :
       {Case{DType::kF32, 0}, Case{DType::kF16, 1.0f / 2048}, Case{DType::kBF16, 1.0f / 256},
        Case{DType::kQ8_0, 0.5f / 127 + 1e-3f}, Case{DType::kQ4_0, 1.0f / 8 + 1e-3f}}) {
    QuantizeRow(c.t, x.data(), buf.data(), 4096);
    DequantizeRow(c.t, buf.data(), y.data(), 4096);
    for (int k = 0; k < 4096; ++k) ASSERT_NEAR(y[k], x[k], c.tol) << Traits(c.t).name << " " << k;
  }
}

}  // namespace
}  // namespace unicorn
