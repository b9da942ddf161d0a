// `unicorn quantize`'s per-tensor type choice (model/quant_plan.h).
#include "model/quant_plan.h"

#include <gtest/gtest.h>

namespace unicorn {
namespace {

TEST(QuantPlan, ParsesTypeNames) {
  EXPECT_EQ(*ParseQuantType("q4_k"), DType::kQ4_K);
  EXPECT_EQ(*ParseQuantType("nf4"), DType::kNF4);
  EXPECT_FALSE(ParseQuantType("q4_k_m").ok());  // a scheme, not a type
  EXPECT_TRUE(IsQuantScheme("q4_k_m"));
  EXPECT_FALSE(IsQuantScheme("q7"));
  EXPECT_EQ(LayerOf("blk.17.ffn_down.weight"), 17);
  EXPECT_EQ(LayerOf("token_embd.weight"), -1);
  EXPECT_EQ(LayerOf("blk.x.attn_q.weight"), -1);
}

// llama.cpp's use_more_bits for 34 layers (Gemma 3 4B): layers 0..3, 29..33
// and every third from 4 + 2.
TEST(QuantPlan, Q4_KMPattern) {
  const int n = 34;
  std::vector<int> more;
  for (int i = 0; i < n; ++i) {
    if (UseMoreBits(i, n)) more.push_back(i);
  }
  EXPECT_EQ(more, (std::vector<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 29, 30, 31, 32, 33}));
  auto type = [&](const std::string& name, TensorRole role = TensorRole::kMatrix) {
    return SchemeType("q4_k_m", name, role, LayerOf(name), n);
  };
  EXPECT_EQ(type("blk.0.attn_v.weight"), DType::kQ6_K);
  EXPECT_EQ(type("blk.4.attn_v.weight"), DType::kQ4_K);
  EXPECT_EQ(type("blk.6.ffn_down.weight"), DType::kQ6_K);
  EXPECT_EQ(type("blk.6.ffn_up.weight"), DType::kQ4_K);
  EXPECT_EQ(type("blk.0.attn_q.weight"), DType::kQ4_K);
  EXPECT_EQ(type("token_embd.weight", TensorRole::kEmbedding), DType::kQ6_K);
  EXPECT_EQ(SchemeType("q4_0", "token_embd.weight", TensorRole::kEmbedding, -1, n), DType::kQ8_0);
  EXPECT_EQ(SchemeType("q2_k", "blk.1.attn_q.weight", TensorRole::kMatrix, 1, n), DType::kQ2_K);
  EXPECT_EQ(SchemeType("nf4", "blk.1.attn_q.weight", TensorRole::kMatrix, 1, n), DType::kNF4);
}

// Rows that are not whole 256-weight super-blocks fall back to legacy types.
TEST(QuantPlan, Fallback) {
  EXPECT_EQ(WithFallback(DType::kQ4_K, 2560), DType::kQ4_K);
  EXPECT_EQ(WithFallback(DType::kQ4_K, 1152), DType::kQ4_0);
  EXPECT_EQ(WithFallback(DType::kQ2_K, 192), DType::kQ4_0);
  EXPECT_EQ(WithFallback(DType::kQ6_K, 1152), DType::kQ8_0);
  EXPECT_EQ(WithFallback(DType::kQ4_0, 48), DType::kF16);
  EXPECT_EQ(WithFallback(DType::kNF4, 64), DType::kNF4);
}

}  // namespace
}  // namespace unicorn
