// The tensor-core product (matmul_coop.comp, VK_NV_cooperative_matrix)
// against the F64 twin, fed the same F16-rounded weights (and, with
// coop_x_f16, activations) as the kernel, so only the F32 sums' order and
// x's low part differ. Where the device has no such extension (lavapipe),
// the kernel runs with emulated fragments (coop_ops.glsl), on the tiles that
// fit its shared memory; and with emulation off, the path is refused by name.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "model/quant.h"
#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/product_inputs.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {
namespace {

// Against the twin on F16-rounded inputs, only the sums (and x's low part,
// ~2^-22) should differ. Emulated on lavapipe the kernel stays within 1.3e-6
// of it (kEmulatedTol). On an NVIDIA H100 it differed by up to 6.5e-4, even
// at k = 36; with x's low part left out, the emulation gives the same
// 6.5e-4. So that GPU build lost the low part, perhaps to a compiler that
// took float(float16_t(v)) for v: the high part now goes through an
// explicit F16 round trip. Until a GPU run confirms it, the GPU bound stays
// at 2e-3 (LowPartOfXReachesTheProducts checks the low part exactly).
constexpr double kRoundedTol = 2e-3;
constexpr double kEmulatedTol = 1e-5;
// Against the twin on the exact inputs: F16 rounding of weights and
// activations (2^-11 relative each) over random-sign sums.
constexpr double kExactTol = 4e-3;

using Path = MatMulOptions::Path;

float RoundF16(float v) { return F16ToF32(F32ToF16(std::clamp(v, -65504.0f, 65504.0f))); }

std::vector<float> RoundedF16(std::vector<float> v) {
  for (float& f : v) f = RoundF16(f);
  return v;
}

struct Case {
  DType dtype;
  int m, k, n;
  uint32_t flags = 0;
  uint32_t shape = 0, wg = 0;  // 0: the default (or tuned) shape
  bool x_f16 = false;          // x as one F16 value (else a high and a low part)
};

#define UNICORN_NEED_COOP(env)                                                            \
  UNICORN_VK_ENV(env);                                                                    \
  CoopEmulated emulated(*env.kernels);                                                    \
  if (!emulated.runs()) {                                                                 \
    GTEST_SKIP() << env.device->caps().name << " has no VK_NV_cooperative_matrix or F16"; \
  }

// Whether the tile (0: the default for n tokens) fits this device's shared
// memory. Emulated runs skip those that do not: lavapipe has 32 KiB, and no
// tile for 33+ tokens fits there.
bool TileFits(Env& env, uint32_t shape, uint32_t wg, uint32_t flags, uint32_t n = 16) {
  Buffer b = Zeros(*env.device, 1 << 16);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  MatMulOptions opt;
  opt.path = Path::kCoop;
  opt.coop_shape = shape;
  opt.coop_wg = wg;
  opt.flags = flags;
  opt.bias = b.All();
  Status s = env.kernels->MatMul(cmd, {b.All(), DType::kF16, 64, 64}, b.All(), b.All(), n, opt);
  return s.ok() || (s.message().find("shared memory") == std::string::npos &&
                    s.message().find("tile fits") == std::string::npos);
}

void RunCase(const Case& c) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const bool emulated = !env.kernels->coopmat() && env.kernels->coop_emulation();
  if (emulated && !TileFits(env, c.shape, c.wg, c.flags, uint32_t(c.n))) return;
  ProductInputs in =
      MakeProductInputs(d, c.dtype, c.m, c.k, c.n, c.flags & UNICORN_MM_GEGLU, 300 + c.m + c.k, 17);
  MatMulOptions opt;
  opt.flags = c.flags;
  opt.bias = in.bb.All();
  opt.softcap = 3.0f;
  opt.path = Path::kCoop;
  opt.coop_shape = c.shape;
  opt.coop_wg = c.wg;
  opt.coop_x_f16 = c.x_f16;
  RunCmd(d, [&](CommandBuffer& cmd) {
    Status s = env.kernels->MatMul(cmd, in.weight, in.bx.All(), in.by.All(), c.n, opt);
    ASSERT_TRUE(s.ok()) << s;
  });
  std::vector<float> got = Download<float>(d, in.by, in.y0.size());
  // The twin on what the kernel multiplies: F16 weights; x in F16 or, as
  // hi + lo, within ~2^-22 of x.
  std::vector<float> rounded = MatMulRef(RoundedF16(in.w.values), c.x_f16 ? RoundedF16(in.x) : in.x,
                                         c.m, c.k, c.n, c.flags, in.bias, 3.0f, in.y0);
  std::vector<float> exact =
      MatMulRef(in.w.values, in.x, c.m, c.k, c.n, c.flags, in.bias, 3.0f, in.y0);
  const std::string what =
      absl::StrCat(std::string(Traits(c.dtype).name), " m=", c.m, " k=", c.k, " n=", c.n,
                   " flags=", c.flags, " shape=", c.shape, " wg=", c.wg);
  EXPECT_LT(MaxRelError(got, rounded), emulated ? kEmulatedTol : kRoundedTol) << what;
  EXPECT_LT(MaxRelError(got, exact), kExactTol) << what;
}

class VkCoopDtype : public ::testing::TestWithParam<DType> {};

// Ragged rows and tokens, k not a multiple of the k step (a partial last
// step), one token group and several.
TEST_P(VkCoopDtype, RaggedShapes) {
  UNICORN_NEED_COOP(env);
  RunCase({GetParam(), 37, 96, 2});
  RunCase({GetParam(), 70, 320, 16});
  RunCase({GetParam(), 130, 256, 67});
  RunCase({GetParam(), 200, 512, 150});
}

// x rounded to one F16 value: the same against the twin on rounded x.
TEST_P(VkCoopDtype, OneF16PerActivation) {
  UNICORN_NEED_COOP(env);
  RunCase({GetParam(), 70, 320, 16, 0, 0, 0, true});
  RunCase({GetParam(), 40, 256, 40, UNICORN_MM_GEGLU, 0, 0, true});
}

TEST_P(VkCoopDtype, GeGluFused) {
  UNICORN_NEED_COOP(env);
  RunCase({GetParam(), 40, 256, 16, UNICORN_MM_GEGLU});
  RunCase({GetParam(), 72, 128, 100, UNICORN_MM_GEGLU});
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VkCoopDtype,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                           DType::kQ4_0),
                         [](const auto& info) { return std::string(Traits(info.param).name); });

// Rows of any length for dense weights (k % 8 != 0: element loads).
TEST(VkCoop, OddRowLength) {
  UNICORN_NEED_COOP(env);
  RunCase({DType::kF16, 24, 36, 5});
  RunCase({DType::kF32, 33, 100, 20});
}

TEST(VkCoop, EveryEpilogue) {
  UNICORN_NEED_COOP(env);
  const uint32_t b = UNICORN_MM_BIAS;
  RunCase({DType::kQ4_0, 48, 128, 9, b | UNICORN_MM_GELU});
  RunCase({DType::kQ8_0, 48, 128, 40, b | UNICORN_MM_ACC});
  RunCase({DType::kF16, 48, 128, 16, UNICORN_MM_SOFTCAP});
  RunCase({DType::kQ4_K, 40, 512, 16, b});  // 256-weight super-blocks
}

// Every tile layout the tuner may pick: subgroups along m and n, several
// fragments each, k steps of 32 to 128, on 64, 128 and 256 invocations,
// loading each step before or during the previous step's products.
TEST(VkCoop, TileShapes) {
  UNICORN_NEED_COOP(env);
  struct S {
    uint32_t bm, bn, wm, bk, wg;
  };
  for (const S& s : {S{32, 16, 2, 128, 64}, S{64, 16, 4, 128, 128}, S{128, 16, 8, 64, 256},
                     S{64, 32, 2, 64, 128}, S{128, 64, 4, 32, 256}, S{128, 128, 4, 32, 256},
                     S{64, 128, 2, 32, 256}, S{128, 32, 4, 64, 128}}) {
    for (bool prefetch : {false, true}) {
      const uint32_t shape = Kernels::CoopShape(s.bm, s.bn, s.wm, s.bk, prefetch);
      RunCase({DType::kQ4_0, 150, 512, 70, 0, shape, s.wg});
      RunCase({DType::kQ8_0, 150, 256, 13, UNICORN_MM_BIAS, shape, s.wg});
      RunCase({DType::kF16, 40, 36, 20, 0, shape, s.wg});  // one partial step
      RunCase({DType::kBF16, 60, 128, 33, UNICORN_MM_ACC, shape, s.wg, true});
      if ((s.bm / 16 / s.wm) % 2 == 0) {
        RunCase({DType::kQ4_0, 100, 256, 20, UNICORN_MM_GEGLU, shape, s.wg});
      }
    }
  }
}

// Without the extension (and emulation off) the path is refused by name; with it, a tile that
// cannot run is refused with the reason.
TEST(VkCoop, RefusesWhatItCannotRun) {
  UNICORN_VK_ENV(env);
  Buffer b = Zeros(*env.device, 1 << 16);
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  MatMulOptions opt;
  opt.path = Path::kCoop;
  const Weight w{b.All(), DType::kF32, 32, 64};
  if (!env.kernels->coopmat()) {
    Status s = env.kernels->MatMul(cmd, w, b.All(), b.All(), 16, opt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find("tensor-core"), std::string::npos) << s;
    EXPECT_FALSE(env.kernels->TakesCoop(DType::kQ4_0, 512));
    return;
  }
  struct Bad {
    uint32_t shape, wg, flags;
    const char* why;
  };
  for (const Bad& bad : {Bad{Kernels::CoopShape(64, 16, 4, 64), 96, 0, "subgroups along m"},
                         Bad{Kernels::CoopShape(48, 16, 2, 64), 64, 0, "fragments"},
                         Bad{Kernels::CoopShape(64, 16, 4, 64), 128, UNICORN_MM_GEGLU, "GEGLU"},
                         Bad{Kernels::CoopShape(128, 128, 8, 64), 256, 0, "shared memory"},
                         Bad{Kernels::CoopShape(64, 16, 2, 256), 64, 0, "registers"},
                         Bad{Kernels::CoopShape(64, 16, 2, 64), 100, 0, "invocations"}}) {
    opt.coop_shape = bad.shape;
    opt.coop_wg = bad.wg;
    opt.flags = bad.flags;
    Status s = env.kernels->MatMul(cmd, {b.All(), DType::kF32, 64, 64}, b.All(), b.All(), 16, opt);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find(bad.why), std::string::npos) << s;
  }
}

// kAuto gives the products of min_tokens or more to the tensor cores, over
// any weights but F32.
TEST(VkCoop, AutoPathFromMinTokens) {
  UNICORN_VK_ENV(env);
  if (!env.kernels->coopmat()) GTEST_SKIP() << "no tensor cores: set_coopmat is off";
  env.kernels->set_coopmat(8);
  EXPECT_FALSE(env.kernels->TakesCoop(DType::kQ4_0, 7));
  EXPECT_TRUE(env.kernels->TakesCoop(DType::kQ4_0, 8));
  EXPECT_TRUE(env.kernels->TakesCoop(DType::kBF16, 512));
  EXPECT_FALSE(env.kernels->TakesCoop(DType::kF32, 512));  // F32 weights keep their bits
  env.kernels->set_coopmat(0);
  EXPECT_FALSE(env.kernels->TakesCoop(DType::kQ4_0, 512));
}

// x's low part reaches the products, and coop_x_f16 drops it: with W the
// identity, each output is one x value times 1. x = 1 + i 2^-13 is not an
// F16 value (spacing 2^-10 there); hi + lo carries it exactly, one F16 value
// rounds it. Exact equality: no sum here has two nonzero terms.
TEST(VkCoop, LowPartOfXReachesTheProducts) {
  UNICORN_NEED_COOP(env);
  Device& d = *env.device;
  constexpr int kDim = 32, kTokens = 16;
  std::vector<uint16_t> w(size_t(kDim) * kDim, F32ToF16(0.0f));
  for (int r = 0; r < kDim; ++r) w[size_t(r) * kDim + size_t(r)] = F32ToF16(1.0f);
  std::vector<float> x(size_t(kTokens) * kDim);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 1.0f + float(i % 8) * 0x1p-13f;
  Buffer bw = Upload(d, w), bx = Upload(d, x), by = Zeros(d, x.size() * 4);
  for (bool x_f16 : {false, true}) {
    MatMulOptions opt;
    opt.path = Path::kCoop;
    opt.coop_x_f16 = x_f16;
    RunCmd(d, [&](CommandBuffer& cmd) {
      Status s = env.kernels->MatMul(cmd, {bw.All(), DType::kF16, kDim, kDim}, bx.All(), by.All(),
                                     kTokens, opt);
      ASSERT_TRUE(s.ok()) << s;
    });
    const std::vector<float> got = Download<float>(d, by, x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_EQ(got[i], x_f16 ? RoundF16(x[i]) : x[i]) << "element " << i << " x_f16 " << x_f16;
    }
  }
}

}  // namespace
}  // namespace unicorn::vk::testing
