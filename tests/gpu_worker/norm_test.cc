// RMSNorm / QK-norm kernel against its CPU twin.
#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {
namespace {

// F32 sums in a different order than the F64 twin: the error is a few ulp of
// the output scale; 1e-5 leaves room for rsqrt's approximation on GPUs.
constexpr double kNormTol = 1e-5;

void CheckRmsNorm(int rows, int n, bool in_place) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  std::vector<float> x = Random(size_t(rows) * n, 11, -3, 3);
  std::vector<float> w = Random(n, 12, -0.5, 0.5);
  Buffer bx = Upload(d, x), bw = Upload(d, w);
  Buffer by = Zeros(d, x.size() * 4);
  const Buffer& out = in_place ? bx : by;
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(env.kernels->RmsNorm(cmd, bx.All(), bw.All(), out.All(), rows, n, 1e-6f).ok());
  });
  std::vector<float> got = Download<float>(d, out, x.size());
  EXPECT_LT(MaxRelError(got, RmsNormRef(x, w, rows, n, 1e-6f)), kNormTol);
}

TEST(VkRmsNorm, MatchesTwinOnHiddenRows) { CheckRmsNorm(3, 2560, false); }
TEST(VkRmsNorm, OddLengthShorterThanWorkgroup) { CheckRmsNorm(5, 77, false); }
// Rows longer than four floats per invocation loop over the row (the
// others hold their part in registers).
TEST(VkRmsNorm, ManyLongRowsLoopOverTheRow) { CheckRmsNorm(70, 2048, false); }
TEST(VkRmsNorm, InPlace) { CheckRmsNorm(2, 1152, true); }

TEST(VkRmsNorm, QkNormOverHeadsWithStride) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const int tokens = 3, heads = 4, head_dim = 256;
  std::vector<float> x = Random(size_t(tokens) * heads * head_dim, 21, -2, 2);
  std::vector<float> w = Random(head_dim, 22, -0.5, 0.5);
  Buffer bx = Upload(d, x), bw = Upload(d, w);
  RunCmd(d, [&](CommandBuffer& cmd) {
    ASSERT_TRUE(
        env.kernels->RmsNorm(cmd, bx.All(), bw.All(), bx.All(), tokens * heads, head_dim, 1e-6f)
            .ok());
  });
  std::vector<float> got = Download<float>(d, bx, x.size());
  EXPECT_LT(MaxRelError(got, RmsNormRef(x, w, tokens * heads, head_dim, 1e-6f)), kNormTol);
}

}  // namespace
}  // namespace unicorn::vk::testing
