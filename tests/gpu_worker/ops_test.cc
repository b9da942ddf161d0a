// Norms, embedding lookup, QK-norm + RoPE into the K/V cache, element-wise
// ops, argmax and the SigLIP helpers, each against its CPU twin.
#include <limits>

#include "model/quant.h"
#include "model/sampler.h"
#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {
namespace {

// F32 sums in another order than the F64 twins: a few ulp of the output scale.
constexpr double kF32Tol = 1e-5;

TEST(VkLayerNorm, MatchesTwin) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int rows = 4, n = 1152;
  std::vector<float> x = Random(rows * n, 1, -2, 3), w = Random(n, 2), b = Random(n, 3);
  Buffer bx = Upload(d, x), bw = Upload(d, w), bb = Upload(d, b), by = Zeros(d, x.size() * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(
        env.kernels->LayerNorm(cmd, bx.All(), bw.All(), bb.All(), by.All(), rows, n, 1e-6f).ok());
  });
  EXPECT_LT(MaxRelError(Download<float>(d, by, x.size()), LayerNormRef(x, w, b, rows, n, 1e-6f)),
            kF32Tol);
}

// n = 640 takes the vec4 path with the row in registers, n = 5376 (27B's
// hidden size) the vec4 loop over the row, n = 78 the scalar one.
class VkAddRmsNorm : public ::testing::TestWithParam<int> {};

TEST_P(VkAddRmsNorm, PostNormResidualAndNextNorm) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int rows = 3, n = GetParam();
  std::vector<float> x = Random(rows * n, 1, -5, 5), h = Random(rows * n, 2, -2, 2);
  std::vector<float> wp = Random(n, 3), wn = Random(n, 4);
  Buffer bx = Upload(d, x), bh = Upload(d, h), bwp = Upload(d, wp), bwn = Upload(d, wn);
  Buffer by = Zeros(d, x.size() * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(
        env.kernels
            ->AddRmsNorm(cmd, bx.All(), bwp.All(), bh.All(), bwn.All(), by.All(), rows, n, 1e-6f)
            .ok());
  });
  std::vector<float> post = RmsNormRef(x, wp, rows, n, 1e-6f);
  std::vector<float> h_want(h.size());
  for (size_t i = 0; i < h.size(); ++i) h_want[i] = h[i] + post[i];
  EXPECT_LT(MaxRelError(Download<float>(d, bh, h.size()), h_want), kF32Tol);
  EXPECT_LT(MaxRelError(Download<float>(d, by, h.size()), RmsNormRef(h_want, wn, rows, n, 1e-6f)),
            kF32Tol);
  // Without the next norm: only the residual update.
  Buffer bh2 = Upload(d, h);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(
        env.kernels->AddRmsNorm(cmd, bx.All(), bwp.All(), bh2.All(), {}, {}, rows, n, 1e-6f).ok());
  });
  EXPECT_LT(MaxRelError(Download<float>(d, bh2, h.size()), h_want), kF32Tol);
}

INSTANTIATE_TEST_SUITE_P(Widths, VkAddRmsNorm, ::testing::Values(640, 5376, 78));

class VkEmbed : public ::testing::TestWithParam<DType> {};

TEST_P(VkEmbed, LooksUpScaledRows) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int vocab = 50, k = 96;
  TestMatrix table = MakeMatrix(GetParam(), vocab, k, 5);
  std::vector<int32_t> ids = {3, 49, 0, 3, 1000, -2 /* out of range: zeros */};
  Buffer bt = Upload(d, table.bytes), bi = Upload(d, ids), by = Zeros(d, ids.size() * k * 4);
  const float scale = std::sqrt(float(k));
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(env.kernels
                    ->Embed(cmd, {bt.All(), GetParam(), vocab, k}, bi.All(), by.All(),
                            uint32_t(ids.size()), scale)
                    .ok());
  });
  std::vector<float> want(ids.size() * k, 0.0f);
  for (size_t t = 0; t < ids.size(); ++t) {
    if (ids[t] < 0 || ids[t] >= vocab) continue;
    for (int i = 0; i < k; ++i) want[t * k + i] = table.values[ids[t] * k + i] * scale;
  }
  // Exact dequantization times one F32 multiply on both sides.
  EXPECT_LT(MaxRelError(Download<float>(d, by, want.size()), want), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VkEmbed,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                           DType::kQ4_0),
                         [](const auto& info) { return std::string(Traits(info.param).name); });

// Per-head norm + RoPE in place (q) and into the K/V store ring (k, v);
// positions up to 70k check the reduction of large angles.
TEST(VkHeadNormRope, InPlaceAndIntoTheStoreRing) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int heads = 2, D = 64, cap = 8;
  const std::vector<int32_t> positions = {3, 1001, 70002};  // slots 3, 1, 2
  const int n = int(positions.size());
  std::vector<float> x = Random(n * heads * D, 1, -2, 2), v = Random(n * heads * D, 2, -2, 2);
  std::vector<float> w = Random(D, 3, -0.5, 0.5);
  std::vector<float> freq = Kernels::RopeInvFreq(D, 1e6, 8.0);
  Buffer bx = Upload(d, x), bx2 = Upload(d, x), bv = Upload(d, v), bw = Upload(d, w);
  Buffer bf = Upload(d, freq), bp = Upload(d, positions);
  Buffer bks = Zeros(d, cap * heads * D * 4), bvs = Zeros(d, cap * heads * D * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    HeadParams hp{UNICORN_HEAD_NORM | UNICORN_HEAD_ROPE, heads, D, 0, 1e-6f, {}};
    ASSERT_TRUE(env.kernels
                    ->HeadNormRope(cmd, bx.All(), bw.All(), bf.All(), bp.All(), bx.All(), bx.All(),
                                   bx.All(), n, hp)
                    .ok());
    hp.flags |= UNICORN_HEAD_STORE;
    hp.cap = cap;
    ASSERT_TRUE(env.kernels
                    ->HeadNormRope(cmd, bx2.All(), bw.All(), bf.All(), bp.All(), bks.All(),
                                   bv.All(), bvs.All(), n, hp)
                    .ok());
  });
  std::vector<float> want(x.size()), k_want(cap * heads * D, 0.0f), v_want(k_want.size(), 0.0f);
  for (int t = 0; t < n; ++t) {
    for (int h = 0; h < heads; ++h) {
      const size_t at = size_t(t * heads + h) * D;
      std::vector<float> head(&x[at], &x[at] + D);
      head = RopeRef(RmsNormRef(head, w, 1, D, 1e-6f), positions[t], freq);
      std::copy(head.begin(), head.end(), &want[at]);
      const size_t slot = size_t(positions[t] % cap) * heads * D + h * D;
      std::copy(head.begin(), head.end(), &k_want[slot]);
      std::copy(&v[at], &v[at] + D, &v_want[slot]);
    }
  }
  // Same F32 angle on both sides, reduced exactly to [-pi, pi]; there Vulkan
  // lets sin/cos be off by 2^-11 (NVIDIA's were 1.2e-4 of the output scale),
  // so 1e-3; a wrong position or frequency moves values by O(1).
  EXPECT_LT(MaxRelError(Download<float>(d, bx, x.size()), want), 1e-3);
  EXPECT_LT(MaxRelError(Download<float>(d, bks, k_want.size()), k_want), 1e-3);
  EXPECT_EQ(MaxRelError(Download<float>(d, bvs, v_want.size()), v_want), 0.0);
}

TEST(VkElementwise, AddGeGluSoftCap) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int n = 1000;
  std::vector<float> a = Random(n, 1, -4, 4), b = Random(n, 2, -4, 4);
  Buffer ba = Upload(d, a), bb = Upload(d, b), bsum = Zeros(d, n * 4);
  Buffer bg = Zeros(d, n * 4), bc = Zeros(d, n * 4), bgl = Zeros(d, n * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(env.kernels->Add(cmd, ba.All(), bb.All(), bsum.All(), uint32_t(a.size())).ok());
    ASSERT_TRUE(env.kernels->GeGlu(cmd, ba.All(), bb.All(), bg.All(), n).ok());
    ASSERT_TRUE(env.kernels->Gelu(cmd, ba.All(), bgl.All(), n).ok());
    ASSERT_TRUE(env.kernels->SoftCap(cmd, ba.All(), bc.All(), uint32_t(a.size()), 2.5f).ok());
  });
  std::vector<float> sum(n), geglu(n), cap(n), gelu(n);
  for (int i = 0; i < n; ++i) {
    sum[i] = a[i] + b[i];
    cap[i] = float(2.5 * std::tanh(a[i] / 2.5));
    gelu[i] = GeluTanhRef(a[i]);
    geglu[i] = gelu[i] * b[i];
  }
  EXPECT_EQ(MaxRelError(Download<float>(d, bsum, sum.size()), sum), 0.0);
  // tanh in F32 on the GPU: a few ulp.
  EXPECT_LT(MaxRelError(Download<float>(d, bg, geglu.size()), geglu), 1e-5);
  EXPECT_LT(MaxRelError(Download<float>(d, bc, cap.size()), cap), 1e-5);
  EXPECT_LT(MaxRelError(Download<float>(d, bgl, gelu.size()), gelu), 1e-5);
}

// Each row's argmax, exactly as model/sampler.h's Argmax picks it: the first
// of equal maxima (one at the row's end too), NaN never, a row of -inf and
// NaN its first -inf, all NaN 0; rows longer than the workgroup, with a
// stride, and a bad shape refused.
TEST(VkArgmax, FollowsTheCpuRule) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const int n = 5000, stride = 5003, rows = 7;
  std::vector<float> x = Random(size_t(rows) * stride, 3, -4, 4);
  float* r = x.data();
  r[0 * stride + 4321] = r[0 * stride + 77] = 9.0f;  // a tie: the first
  r[1 * stride + n - 1] = 9.0f;                      // the last value
  r[2 * stride + 10] = nan;
  r[2 * stride + 11] = 8.0f;
  for (int i = 0; i < n; ++i) r[3 * stride + i] = i % 3 == 0 ? nan : -inf;
  for (int i = 0; i < n; ++i) r[4 * stride + i] = nan;
  for (int i = 0; i < n; ++i) r[5 * stride + i] = 1.0f;  // all equal: 0
  r[6 * stride + n] = 99.0f;                             // past n: not seen
  Buffer bx = Upload(d, x), ids = Zeros(d, rows * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(env.kernels->Argmax(cmd, bx.All(), ids.All(), rows, n, stride).ok());
  });
  std::vector<int32_t> want;
  for (int i = 0; i < rows; ++i) {
    want.push_back(int32_t(Argmax(std::span<const float>(x).subspan(size_t(i) * stride, n))));
  }
  EXPECT_EQ(want[0], 77);
  EXPECT_EQ(want[3], 1);
  EXPECT_EQ(Download<int32_t>(d, ids, rows), want);
  CommandBuffer cmd(d);
  cmd.Begin();
  Status s = env.kernels->Argmax(cmd, bx.All(), ids.All(), rows, n, n - 1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("argmax"), std::string::npos) << s;
}

TEST(VkVision, PatchifyAndAvgPool) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int S = 28, P = 7, C = 3;
  std::vector<float> img = Random(C * S * S, 1);
  Buffer bi = Upload(d, img), bp = Zeros(d, img.size() * 4);
  const int channels = 10, gin = 8, gout = 2;
  std::vector<float> tok = Random(gin * gin * channels, 2);
  Buffer bt = Upload(d, tok), bo = Zeros(d, gout * gout * channels * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(env.kernels->Patchify(cmd, bi.All(), bp.All(), S, P, C).ok());
    ASSERT_TRUE(env.kernels->AvgPool(cmd, bt.All(), bo.All(), gin, gout, channels).ok());
  });
  EXPECT_EQ(MaxRelError(Download<float>(d, bp, img.size()), PatchifyRef(img, S, P, C)), 0.0);
  EXPECT_LT(MaxRelError(Download<float>(d, bo, gout * gout * channels),
                        AvgPoolRef(tok, gin, gout, channels)),
            kF32Tol);
}

}  // namespace
}  // namespace unicorn::vk::testing
