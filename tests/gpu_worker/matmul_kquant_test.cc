// K-quant weights (Q2_K..Q6_K) in the matrix kernels (matvec.comp for few
// tokens, matmul_batch.comp for 2-16, matmul.comp tiled) and the embedding
// lookup, against the F64 twin on the reference dequantization
// (model/kquant.cc, byte-exact with ggml).
#include "gpu_worker/vulkan_ops.h"
#include "model/quant.h"
#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/product_inputs.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {
namespace {

// The shader dequantizes each weight as (d * sc) * q - dmin * m in F32, the
// reference as d * sc * q - dmin * m: the same value up to an ulp or two of
// the weight scale, then only the F32 summation order differs from the F64
// twin. Both are a few 1e-7 of the output scale over k = 1024; 1e-5 leaves a
// margin of ~10x (a mis-decoded sub-block scale or code is off by >1e-2).
constexpr double kTol = 1e-5;

using Path = MatMulOptions::Path;

struct Case {
  DType dtype;
  int m, k, n;
  Path path;
  uint32_t flags = 0;
};

void RunCase(const Case& c) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  ProductInputs in =
      MakeProductInputs(d, c.dtype, c.m, c.k, c.n, c.flags & UNICORN_MM_GEGLU, 300 + c.m + c.k, 17);
  MatMulOptions opt;
  opt.flags = c.flags;
  opt.bias = in.bb.All();
  opt.path = c.path;
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->MatMul(cmd, in.weight, in.bx.All(), in.by.All(), c.n, opt);
    ASSERT_TRUE(s.ok()) << s;
  });
  std::vector<float> got = Download<float>(d, in.by, in.y0.size());
  std::vector<float> want =
      MatMulRef(in.w.values, in.x, c.m, c.k, c.n, c.flags, in.bias, 0.0f, in.y0);
  EXPECT_LT(MaxRelError(got, want), kTol) << Traits(c.dtype).name << " m=" << c.m << " k=" << c.k
                                          << " n=" << c.n << " flags=" << c.flags;
}

class VkKQuant : public ::testing::TestWithParam<DType> {};

// Rows that are not a multiple of the workgroup's rows or tiles, k = 256 n.
TEST_P(VkKQuant, DecodeOneToken) { RunCase({GetParam(), 37, 256, 1, Path::kVector}); }
TEST_P(VkKQuant, DecodeLongRows) { RunCase({GetParam(), 5, 1280, 1, Path::kVector}); }
TEST_P(VkKQuant, FewTokensWithBias) {
  RunCase({GetParam(), 19, 512, 6, Path::kVector, UNICORN_MM_BIAS});
}
TEST_P(VkKQuant, BatchKernel) {
  RunCase({GetParam(), 19, 512, 13, Path::kBatch, UNICORN_MM_BIAS});
  RunCase({GetParam(), 11, 256, 4, Path::kBatch, UNICORN_MM_GEGLU});
}
TEST_P(VkKQuant, GeGluDecode) {
  RunCase({GetParam(), 11, 256, 1, Path::kVector, UNICORN_MM_GEGLU});
}
TEST_P(VkKQuant, TiledRaggedEdges) { RunCase({GetParam(), 70, 256, 67, Path::kTiled}); }
TEST_P(VkKQuant, TiledAccumulate) {
  RunCase({GetParam(), 130, 256, 9, Path::kTiled, UNICORN_MM_ACC});
}

// Embedding rows come out of the same chunk loader.
TEST_P(VkKQuant, EmbedRows) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int vocab = 13, k = 512;
  TestMatrix w = MakeMatrix(GetParam(), vocab, k, 41, 1.0f);
  const std::vector<uint32_t> ids = {0, 12, 5, 5, 7};
  Buffer bw = Upload(d, w.bytes), bi = Upload(d, ids), by = Zeros(d, ids.size() * k * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->Embed(cmd, {bw.All(), GetParam(), uint32_t(vocab), uint32_t(k)},
                                  bi.All(), by.All(), uint32_t(ids.size()), 2.0f);
    ASSERT_TRUE(s.ok()) << s;
  });
  std::vector<float> got = Download<float>(d, by, ids.size() * k);
  std::vector<float> want(got.size());
  for (size_t t = 0; t < ids.size(); ++t) {
    for (int i = 0; i < k; ++i) want[t * k + i] = 2.0f * w.values[size_t(ids[t]) * k + i];
  }
  // Dequantization alone: within an ulp or two of each value.
  EXPECT_LT(MaxRelError(got, want), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(KQuants, VkKQuant,
                         ::testing::Values(DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K,
                                           DType::kQ6_K),
                         [](const auto& info) { return std::string(Traits(info.param).name); });

// Every k-quant loads into the Vulkan backend; NF4 (no shader) keeps a clear
// refusal that names the tensor and the type.
TEST(VkKQuantLoad, KQuantsLoadAndNf4IsRefused) {
  const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
  auto ops = VulkanOps::Create({sel ? sel : ""});
  ASSERT_TRUE(ops.ok()) << ops.status();
  for (DType t :
       {DType::kQ2_K, DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kNF4}) {
    TestMatrix m = MakeMatrix(t, 3, 256, 5);
    TensorInfo info{"blk.0.ffn_down.weight", t, {3, 256}, m.bytes.data(), m.bytes.size(), "test"};
    auto w = (*ops)->LoadWeight(info);
    if (t != DType::kNF4) {
      EXPECT_TRUE(w.ok()) << w.status();
    } else {
      ASSERT_FALSE(w.ok());
      EXPECT_EQ(w.status().code(), absl::StatusCode::kUnimplemented);
      EXPECT_NE(w.status().message().find("blk.0.ffn_down.weight"), absl::string_view::npos)
          << w.status();
      EXPECT_NE(w.status().message().find("nf4"), absl::string_view::npos) << w.status();
    }
  }
}

}  // namespace
}  // namespace unicorn::vk::testing
