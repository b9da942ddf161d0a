// Matrix products (matvec.comp for few tokens, matmul_batch.comp for a batch
// of 2-16 decoding sequences, matmul.comp tiled) for every weight type,
// against the F64 twin on the exactly dequantized weights.
#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/product_inputs.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {
namespace {

// Both sides use the same dequantized weights; only the F32 accumulation
// order differs from the F64 twin: a few ulp of the output scale per
// thousand terms. 1e-5 of the output scale leaves a margin of ~10x.
constexpr double kMatTol = 1e-5;

using Path = MatMulOptions::Path;

struct Case {
  DType dtype;
  int m, k, n;
  Path path;
  uint32_t flags = 0;
  uint32_t tile_m = 0, tile_n = 0;
  uint32_t matvec_rows = 0, matvec_wg = 0;
  uint32_t batch_k = 0;
  bool batch_prefetch = false;
};

void RunCase(const Case& c) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  ProductInputs in =
      MakeProductInputs(d, c.dtype, c.m, c.k, c.n, c.flags & UNICORN_MM_GEGLU, 100 + c.m + c.k, 7);
  MatMulOptions opt;
  opt.flags = c.flags;
  opt.bias = in.bb.All();
  opt.softcap = 3.0f;
  opt.path = c.path;
  opt.tile_m = c.tile_m;
  opt.tile_n = c.tile_n;
  opt.matvec_rows = c.matvec_rows;
  opt.matvec_wg = c.matvec_wg;
  opt.batch_k = c.batch_k;
  opt.batch_prefetch = c.batch_prefetch;
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->MatMul(cmd, in.weight, in.bx.All(), in.by.All(), c.n, opt);
    ASSERT_TRUE(s.ok()) << s;
  });
  std::vector<float> got = Download<float>(d, in.by, in.y0.size());
  std::vector<float> want =
      MatMulRef(in.w.values, in.x, c.m, c.k, c.n, c.flags, in.bias, 3.0f, in.y0);
  EXPECT_LT(MaxRelError(got, want), kMatTol) << Traits(c.dtype).name << " m=" << c.m << " k=" << c.k
                                             << " n=" << c.n << " flags=" << c.flags;
}

class VkMatMulDtype : public ::testing::TestWithParam<DType> {};

TEST_P(VkMatMulDtype, DecodeOneToken) { RunCase({GetParam(), 37, 256, 1, Path::kVector}); }
TEST_P(VkMatMulDtype, DecodeLongRows) { RunCase({GetParam(), 5, 4352, 1, Path::kVector}); }
TEST_P(VkMatMulDtype, FewTokens) { RunCase({GetParam(), 19, 128, 6, Path::kVector}); }
// The batch kernel: ragged rows (not a multiple of its 16), each token
// class (4, 8, 16), a last k slice that is partly past k (k = 96, 352).
TEST_P(VkMatMulDtype, BatchKernel) {
  RunCase({GetParam(), 37, 96, 2, Path::kBatch});
  RunCase({GetParam(), 21, 352, 7, Path::kBatch});
  RunCase({GetParam(), 16, 256, 16, Path::kBatch});
  RunCase({GetParam(), 9, 128, 13, Path::kBatch, UNICORN_MM_GEGLU});
}
TEST_P(VkMatMulDtype, TiledRaggedEdges) { RunCase({GetParam(), 70, 96, 67, Path::kTiled}); }
TEST_P(VkMatMulDtype, TiledMultipleTiles) { RunCase({GetParam(), 130, 256, 129, Path::kTiled}); }

INSTANTIATE_TEST_SUITE_P(AllTypes, VkMatMulDtype,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                           DType::kQ4_0),
                         [](const auto& info) { return std::string(Traits(info.param).name); });

// The 128-wide tiles (lavapipe's 32 KiB of shared memory holds 128 x 64).
TEST(VkMatMul, WideTiles) {
  RunCase({DType::kQ4_0, 200, 128, 70, Path::kTiled, 0, 128, 64});
  RunCase({DType::kF16, 70, 96, 150, Path::kTiled, UNICORN_MM_BIAS, 64, 128});
}

// A batch of 16 decoding sequences: two column groups of 8 tokens side by
// side (neighbouring workgroups), 8 rows per workgroup, ragged rows, on 64
// and on 32 invocations.
TEST(VkMatMul, SixteenTokensWithEightRowsPerWorkgroup) {
  for (DType t : {DType::kQ4_0, DType::kQ8_0, DType::kF16}) {
    RunCase({t, 37, 256, 16, Path::kVector, 0, 0, 0, 8, 64});
    RunCase({t, 21, 128, 13, Path::kVector, UNICORN_MM_GEGLU, 0, 0, 8, 64});
    // Fewer invocations than outputs (8 rows x 8 tokens on 32): each writes several.
    RunCase({t, 37, 256, 16, Path::kVector, UNICORN_MM_BIAS, 0, 0, 8, 32});
    RunCase({t, 19, 128, 11, Path::kVector, UNICORN_MM_GEGLU, 0, 0, 8, 32});
  }
}

// Both k slices where shared memory holds them (lavapipe's 32 KiB holds
// 128 only), with every epilogue flag.
TEST(VkMatMul, BatchKernelSlicesAndFlags) {
  UNICORN_VK_ENV(env);
  const uint32_t shared = env.device->caps().max_shared_memory;
  for (auto [bk, pf] : {std::pair{128u, false}, {256u, false}, {128u, true}, {256u, true}}) {
    if (Kernels::BatchSharedBytes(16, bk) > shared) continue;
    const uint32_t b = UNICORN_MM_BIAS;
    RunCase({DType::kQ4_0, 40, 640, 16, Path::kBatch, 0, 0, 0, 0, 0, bk, pf});
    RunCase({DType::kQ8_0, 33, 512, 11, Path::kBatch, UNICORN_MM_GEGLU, 0, 0, 0, 0, bk, pf});
    RunCase({DType::kQ4_0, 21, 352, 7, Path::kBatch, 0, 0, 0, 0, 0, bk, pf});
    RunCase({DType::kF16, 40, 64, 5, Path::kBatch, b | UNICORN_MM_GELU, 0, 0, 0, 0, bk, pf});
    RunCase({DType::kF32, 40, 64, 3, Path::kBatch, b | UNICORN_MM_ACC, 0, 0, 0, 0, bk, pf});
    RunCase({DType::kBF16, 50, 64, 9, Path::kBatch, UNICORN_MM_SOFTCAP, 0, 0, 0, 0, bk, pf});
  }
}

// The batch kernel takes 2..16 tokens of rows in whole 8-weight chunks; the
// matvec serves the rest.
TEST(VkMatMul, BatchKernelRefusesWhatItCannotRun) {
  UNICORN_VK_ENV(env);
  Buffer b = Zeros(*env.device, 1 << 16);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  MatMulOptions opt;
  opt.path = Path::kBatch;
  for (auto [k, n] : {std::pair<uint32_t, uint32_t>{64, 1}, {64, 17}, {36, 4}}) {
    Status s = env.kernels->MatMul(cmd, {b.All(), DType::kF32, 8, k}, b.All(), b.All(), n, opt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("batch kernel"), std::string::npos) << s;
  }
  RunCase({DType::kF16, 24, 36, 4, Path::kAuto});  // k % 8 != 0: the matvec, still exact
}

TEST(VkMatMul, GeGluFusedIntoDecode) {
  RunCase({DType::kQ4_0, 33, 128, 1, Path::kVector, UNICORN_MM_GEGLU});
  RunCase({DType::kBF16, 9, 64, 3, Path::kVector, UNICORN_MM_GEGLU});
}

TEST(VkMatMul, BiasGeluAndAccumulate) {
  for (Path p : {Path::kVector, Path::kTiled}) {
    RunCase({DType::kF16, 40, 64, 5, p, UNICORN_MM_BIAS | UNICORN_MM_GELU});
    RunCase({DType::kF32, 40, 64, 5, p, UNICORN_MM_BIAS | UNICORN_MM_ACC});
  }
}

TEST(VkMatMul, SoftCap) {
  RunCase({DType::kQ8_0, 50, 64, 1, Path::kVector, UNICORN_MM_SOFTCAP});
  RunCase({DType::kQ8_0, 50, 64, 20, Path::kTiled, UNICORN_MM_SOFTCAP});
}

// Rows whose length is not a multiple of 8 (SigLIP's patch embedding has
// 3*14*14 = 588 inputs) take the scalar paths.
TEST(VkMatMul, UnalignedDenseRows) {
  for (Path p : {Path::kVector, Path::kTiled}) {
    RunCase({DType::kF16, 24, 588, 3, p, UNICORN_MM_BIAS});
    RunCase({DType::kF32, 24, 36, 2, p});
  }
}

// Autotuning times the candidates on first use of a shape and records the
// product with the winner; results stay exact.
TEST(VkMatMul, AutotunePicksAShapeAndStaysExact) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  auto k = Kernels::Create(d);
  ASSERT_TRUE(k.ok()) << k.status();
  (*k)->set_autotune(true);
  for (int n : {1, 8, 70}) {  // 8: the matvec shapes against the batch kernel's variants
    TestMatrix w = MakeMatrix(DType::kQ8_0, 40, 64, 3);
    std::vector<float> x = Random(size_t(n) * 64, 4);
    Buffer bw = Upload(d, w.bytes), bx = Upload(d, x), by = Zeros(d, size_t(n) * 40 * 4);
    RunCmd(d, [&](CommandBuffer& cmd) {
      Status s = (*k)->MatMul(cmd, {bw.All(), DType::kQ8_0, 40, 64}, bx.All(), by.All(), n);
      ASSERT_TRUE(s.ok()) << s;
    });
    EXPECT_LT(
        MaxRelError(Download<float>(d, by, size_t(n) * 40), MatMulRef(w.values, x, 40, 64, n, 0)),
        kMatTol);
  }
  if (d.caps().timestamps) {
    EXPECT_EQ((*k)->tuning_log().size(), 3u);
  }
}

TEST(VkMatMul, RejectsRowsThatAreNotWholeBlocks) {
  UNICORN_VK_ENV(env);
  Buffer b = Zeros(*env.device, 1024);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  Status s = env.kernels->MatMul(cmd, {b.All(), DType::kQ4_0, 4, 48}, b.All(), b.All(), 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
}

}  // namespace
}  // namespace unicorn::vk::testing
