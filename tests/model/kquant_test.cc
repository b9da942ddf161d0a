// K-quant and NF4 block formats: hand-built blocks pin the byte layouts of
// model/kquant.h (ggml's), round trips pin the quantizers' error.
#include "model/kquant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "model/dtype.h"
#include "model/quant.h"

namespace unicorn {
namespace {

std::vector<float> Dequant(DType t, const void* block) {
  std::vector<float> y(size_t(Traits(t).block_elems));
  DequantizeRow(t, static_cast<const uint8_t*>(block), y.data(), int64_t(y.size()));
  return y;
}

TEST(KQuant, Q2_KHandBlock) {
  BlockQ2_K b{};
  b.d = F32ToF16(0.5f);
  b.dmin = F32ToF16(0.25f);
  b.scales[13] = uint8_t(6 | 3 << 4);  // sub-block 13: scale 6, min 3
  // Weight 128 + 32 * 2 + 23 = 215 (sub-block 13): qs[32 + 23], bits 4..5.
  b.qs[55] = uint8_t(2 << 4);
  const std::vector<float> y = Dequant(DType::kQ2_K, &b);
  EXPECT_FLOAT_EQ(y[215], 0.5f * 6 * 2 - 0.25f * 3);
  EXPECT_FLOAT_EQ(y[214], -0.25f * 3);  // same sub-block, code 0
  EXPECT_FLOAT_EQ(y[0], 0.0f);
}

TEST(KQuant, Q3_KHandBlock) {
  BlockQ3_K b{};
  b.d = F32ToF16(0.5f);
  for (int s = 0; s < 8; ++s) b.scales[s] = 0x88;   // low nibbles 8 ...
  for (int s = 8; s < 12; ++s) b.scales[s] = 0xAA;  // ... high bits 2: stored 40, scale 8
  // Sub-block 10 stored as 5 (scale -27): low nibble in scales[2] high, bits
  // 4..5 of scales[10] = 0.
  b.scales[2] = uint8_t(0x08 | 5 << 4);
  b.scales[10] = uint8_t(0xAA & ~(3 << 4));
  // Weight 128 + 32 * 1 + 5 = 165 (sub-block 10): low bits in qs[37] bits
  // 2..3 = 1, high bit in hmask[5] bit 4 + 1 = 5 set: q3 = 5 -> 1.
  b.qs[37] = uint8_t(1 << 2);
  b.hmask[5] = uint8_t(1 << 5);
  const std::vector<float> y = Dequant(DType::kQ3_K, &b);
  EXPECT_FLOAT_EQ(y[165], 0.5f * -27 * 1);
  EXPECT_FLOAT_EQ(y[0], 0.5f * 8 * -4);  // code 0, high bit clear: -4
}

TEST(KQuant, Q4_KAndQ5_KHandBlock) {
  BlockQ4_K b{};
  b.d = F32ToF16(0.5f);
  b.dmin = F32ToF16(0.25f);
  // Sub-block 1: scale 33, min 20 (low 6 bits in scales[1] / scales[5]).
  b.scales[1] = 33;
  b.scales[5] = 20;
  // Sub-block 6: scale 37 = 0b100101, min 50 = 0b110010: low nibbles in
  // scales[10], high bits in scales[2] >> 6 and scales[6] >> 6.
  b.scales[10] = uint8_t((37 & 15) | (50 & 15) << 4);
  b.scales[2] = uint8_t((37 >> 4) << 6);
  b.scales[6] = uint8_t((50 >> 4) << 6);
  b.qs[32 * 0 + 4] = uint8_t(7 << 4);  // weight 32 + 4, high nibble
  b.qs[32 * 3 + 9] = uint8_t(11);      // weight 192 + 9, low nibble
  std::vector<float> y = Dequant(DType::kQ4_K, &b);
  EXPECT_FLOAT_EQ(y[36], 0.5f * 33 * 7 - 0.25f * 20);
  EXPECT_FLOAT_EQ(y[201], 0.5f * 37 * 11 - 0.25f * 50);
  EXPECT_FLOAT_EQ(y[0], 0.0f);

  BlockQ5_K c{};
  c.d = b.d;
  c.dmin = b.dmin;
  std::memcpy(c.scales, b.scales, 12);
  std::memcpy(c.qs, b.qs, 128);
  c.qh[9] = uint8_t(1 << 6);  // weight 192 + 9: bit 2 * 3 of qh[9] -> +16
  y = Dequant(DType::kQ5_K, &c);
  EXPECT_FLOAT_EQ(y[201], 0.5f * 37 * 27 - 0.25f * 50);
  EXPECT_FLOAT_EQ(y[36], 0.5f * 33 * 7 - 0.25f * 20);
}

TEST(KQuant, Q6_KHandBlock) {
  BlockQ6_K b{};
  b.d = F32ToF16(0.5f);
  for (int s = 0; s < 16; ++s) b.scales[s] = int8_t(s - 8);
  // Weight 128 + 64 + 17 = 209 (sub-block 13): ql[64 + 17] high nibble,
  // qh[32 + 17] bits 4..5.
  b.ql[81] = uint8_t(0xA << 4);
  b.qh[49] = uint8_t(2 << 4);
  const std::vector<float> y = Dequant(DType::kQ6_K, &b);
  EXPECT_FLOAT_EQ(y[209], 0.5f * (13 - 8) * ((0xA | 2 << 4) - 32));
  EXPECT_FLOAT_EQ(y[0], 0.5f * -8 * -32);
}

TEST(KQuant, NF4HandBlock) {
  uint8_t b[18] = {};
  const uint16_t d = F32ToF16(2.0f);
  std::memcpy(b, &d, 2);
  b[2 + 3] = uint8_t(15 | 0 << 4);
  const std::vector<float> y = Dequant(DType::kNF4, b);
  EXPECT_FLOAT_EQ(y[3], 2.0f);
  EXPECT_FLOAT_EQ(y[19], -2.0f);
  EXPECT_FLOAT_EQ(y[0], 2.0f * kNf4Levels[0]);
}

// Gaussian weights (as trained matrices roughly are) with outliers. Bounds
// on the RMS error relative to the RMS weight, about 1.3x what these
// quantizers give here (q6_k 0.019, q5_k 0.038, q4_k 0.076, q3_k 0.154,
// q2_k 0.274, nf4 0.091; a uniform step of range / levels predicts the same
// order): a broken layout or scale search lands far above them.
TEST(KQuant, RoundTripErrorBounds) {
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0, 0.02f);
  const int64_t n = 256 * 64;
  std::vector<float> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
  for (float& v : x) v = g(rng);
  // Outliers, as real weights have: one per 512.
  for (int64_t i = 0; i < n; i += 512) x[size_t(i)] *= 6;
  struct Case {
    DType t;
    double rel_rms;
  };
  for (Case c : {Case{DType::kQ6_K, 0.026}, Case{DType::kQ5_K, 0.05}, Case{DType::kQ4_K, 0.10},
                 Case{DType::kQ3_K, 0.20}, Case{DType::kQ2_K, 0.36}, Case{DType::kNF4, 0.12}}) {
    std::vector<uint8_t> buf(RowBytes(c.t, n));
    QuantizeRow(c.t, x.data(), buf.data(), n);
    DequantizeRow(c.t, buf.data(), y.data(), n);
    double se = 0, ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      se += double(y[size_t(i)] - x[size_t(i)]) * (y[size_t(i)] - x[size_t(i)]);
      ss += double(x[size_t(i)]) * x[size_t(i)];
    }
    const double rel = std::sqrt(se / ss);
    EXPECT_LT(rel, c.rel_rms) << Traits(c.t).name;
    std::printf("%s: relative rms error %.4f\n", std::string(Traits(c.t).name).c_str(), rel);
  }
}

// A block whose weights are exactly representable comes back exactly, and
// a zero block stays zero (no division by a zero scale).
TEST(KQuant, ExactAndZeroBlocks) {
  for (DType t :
       {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kNF4}) {
    const int64_t n = Traits(t).block_elems;
    std::vector<float> zero(static_cast<size_t>(n), 0.0f), y(static_cast<size_t>(n));
    std::vector<uint8_t> buf(RowBytes(t, n));
    QuantizeRow(t, zero.data(), buf.data(), n);
    DequantizeRow(t, buf.data(), y.data(), n);
    for (float v : y) ASSERT_EQ(v, 0.0f) << Traits(t).name;
    // Requantizing a dequantized block is (nearly) lossless: the codes and
    // scales that produced it are among the candidates of the search.
    std::mt19937 rng(5);
    std::normal_distribution<float> g(0, 1);
    std::vector<float> x(static_cast<size_t>(n)), z(static_cast<size_t>(n));
    for (float& v : x) v = g(rng);
    QuantizeRow(t, x.data(), buf.data(), n);
    DequantizeRow(t, buf.data(), y.data(), n);
    QuantizeRow(t, y.data(), buf.data(), n);
    DequantizeRow(t, buf.data(), z.data(), n);
    double se = 0, ss = 0;
    for (int64_t i = 0; i < n; ++i) {
      se += double(z[size_t(i)] - y[size_t(i)]) * (z[size_t(i)] - y[size_t(i)]);
      ss += double(y[size_t(i)]) * y[size_t(i)];
    }
    EXPECT_LT(std::sqrt(se / ss), 0.05) << Traits(t).name;
  }
}

}  // namespace
}  // namespace unicorn
