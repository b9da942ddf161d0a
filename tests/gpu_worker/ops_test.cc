// Norms, embedding lookup, QK-norm + RoPE into the K/V cache, element-wise
// ops and the SigLIP helpers, each against its CPU twin.
#include "model/quant.h"
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

TEST(VkAddRmsNorm, PostNormResidualAndNextNorm) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int rows = 3, n = 640;
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
}

class VkEmbed : public ::testing::TestWithParam<DType> {};

TEST_P(VkEmbed, LooksUpScaledRows) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int vocab = 50, k = 96;
  TestMatrix table = MakeMatrix(GetParam(), vocab, k, 5);
  std::vector<uint32_t> ids = {3, 49, 0, 3, 1000 /* out of range: zeros */};
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
    if (ids[t] >= uint32_t(vocab)) continue;
    for (int i = 0; i < k; ++i) want[t * k + i] = table.values[ids[t] * k + i] * scale;
  }
  // Exact dequantization times one F32 multiply on both sides.
  EXPECT_LT(MaxRelError(Download<float>(d, by, want.size()), want), 1e-6);
}

INSTANTIATE_TEST_SUITE_P(AllTypes, VkEmbed,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                           DType::kQ4_0),
                         [](const auto& info) { return std::string(Traits(info.param).name); });

// q and k are RMS-normed per head, rotated, and k/v land in the cache slot
// pos % cap; positions up to 70k check the angle reduction of large angles.
TEST(VkQkNormRope, NormsRotatesAndFillsTheCacheRing) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int H = 4, Hkv = 2, D = 64, cap = 8;
  const std::vector<int> positions = {3, 1001, 70002};  // slots 3, 1, 2
  const int n = int(positions.size()), width = (H + 2 * Hkv) * D;
  std::vector<float> qkv = Random(n * width, 1, -2, 2);
  std::vector<float> qn = Random(D, 2, -0.5, 0.5), kn = Random(D, 3, -0.5, 0.5);
  std::vector<float> freq = Kernels::RopeInvFreq(D, 1e6, 8.0);
  std::vector<int32_t> pos;
  for (int p : positions) pos.insert(pos.end(), {p, p + 1});
  Buffer bqkv = Upload(d, qkv), bqn = Upload(d, qn), bkn = Upload(d, kn), bf = Upload(d, freq);
  Buffer bp = Upload(d, pos), bq = Zeros(d, n * H * D * 4);
  Buffer bk = Zeros(d, Hkv * cap * D * 2), bv = Zeros(d, Hkv * cap * D * 2);
  RopeParams rp{uint32_t(H), uint32_t(Hkv), uint32_t(D), uint32_t(cap), true, 1e-6f};
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(env.kernels
                    ->QkNormRope(cmd, bqkv.All(), bqn.All(), bkn.All(), bf.All(), bp.All(),
                                 bq.All(), bk.All(), bv.All(), n, rp)
                    .ok());
  });
  std::vector<float> q_want(n * H * D);
  std::vector<float> k_want(Hkv * cap * D, 0.0f), v_want(Hkv * cap * D, 0.0f);
  for (int t = 0; t < n; ++t) {
    for (int h = 0; h < H + Hkv; ++h) {
      std::vector<float> x(&qkv[t * width + h * D], &qkv[t * width + h * D] + D);
      x = RopeRef(RmsNormRef(x, h < H ? qn : kn, 1, D, 1e-6f), positions[t], freq);
      if (h < H) {
        std::copy(x.begin(), x.end(), &q_want[(t * H + h) * D]);
      } else {
        int slot = positions[t] % cap, g = h - H;
        for (int i = 0; i < D; ++i) {
          k_want[(g * cap + slot) * D + i] = F16ToF32(F32ToF16(x[i]));
          v_want[(g * cap + slot) * D + i] =
              F16ToF32(F32ToF16(qkv[t * width + (H + Hkv + g) * D + i]));
        }
      }
    }
  }
  // q: F32 with the same F32 angle; the GPU's sin/cos after exact range
  // reduction are within ~1e-6. K/V: F16 (2^-11 relative), one rounding step
  // apart at most.
  EXPECT_LT(MaxRelError(Download<float>(d, bq, q_want.size()), q_want), 1e-4);
  auto halves = [&](const Buffer& b) {
    std::vector<uint16_t> h = Download<uint16_t>(d, b, Hkv * cap * D);
    std::vector<float> f(h.size());
    for (size_t i = 0; i < h.size(); ++i) f[i] = F16ToF32(h[i]);
    return f;
  };
  EXPECT_LT(MaxRelError(halves(bk), k_want), 1e-3);
  EXPECT_EQ(MaxRelError(halves(bv), v_want), 0.0);
}

TEST(VkElementwise, AddGeGluSoftCap) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int tokens = 3, width = 300;
  std::vector<float> a = Random(tokens * 2 * width, 1, -4, 4), b = Random(a.size(), 2, -4, 4);
  Buffer ba = Upload(d, a), bb = Upload(d, b), bsum = Zeros(d, a.size() * 4);
  Buffer bg = Zeros(d, tokens * width * 4), bc = Zeros(d, a.size() * 4);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(env.kernels->Add(cmd, ba.All(), bb.All(), bsum.All(), uint32_t(a.size())).ok());
    ASSERT_TRUE(env.kernels->GeGlu(cmd, ba.All(), bg.All(), tokens, width).ok());
    ASSERT_TRUE(env.kernels->SoftCap(cmd, ba.All(), bc.All(), uint32_t(a.size()), 2.5f).ok());
  });
  std::vector<float> sum(a.size()), geglu(tokens * width), cap(a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    sum[i] = a[i] + b[i];
    cap[i] = float(2.5 * std::tanh(a[i] / 2.5));
  }
  for (int t = 0; t < tokens; ++t)
    for (int i = 0; i < width; ++i)
      geglu[t * width + i] = GeluTanhRef(a[t * 2 * width + i]) * a[t * 2 * width + width + i];
  EXPECT_EQ(MaxRelError(Download<float>(d, bsum, sum.size()), sum), 0.0);
  // tanh in F32 on the GPU: a few ulp.
  EXPECT_LT(MaxRelError(Download<float>(d, bg, geglu.size()), geglu), 1e-5);
  EXPECT_LT(MaxRelError(Download<float>(d, bc, cap.size()), cap), 1e-5);
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
