// Every CPU op against a naive loop (double accumulation where it matters),
// on shapes that exercise SIMD tails, several threads and every weight format.
#include "npu_worker/cpu/cpu_ops.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <limits>

#include "hwy/targets.h"
#include "model/quant.h"
#include "model/sampler.h"
#include "npu_worker/cpu/kernels.h"
#include "tests/model/test_tensors.h"
#include "tests/scoped_env.h"

namespace unicorn::cpu {
namespace {

using testing::RandomVector;
using testing::TensorStore;

std::unique_ptr<Buffer> Upload(Ops& ops, const std::vector<float>& v) {
  auto b = ops.Alloc(v.size());
  ops.Write(*b, 0, v.data(), v.size());
  return b;
}
std::unique_ptr<Buffer> UploadI(Ops& ops, const std::vector<int32_t>& v) {
  auto b = ops.Alloc(v.size());
  ops.Write(*b, 0, v.data(), v.size());
  return b;
}
std::vector<float> Download(Ops& ops, const Buffer& b, size_t n) {
  std::vector<float> v(n);
  ops.Read(b, 0, v.data(), n);
  return v;
}

// Naive y = x W^T with W as the backend sees it (dequantized), in double.
std::vector<double> NaiveMatMul(const std::vector<float>& x, const std::vector<float>& w, int n,
                                int64_t out, int64_t in) {
  std::vector<double> y(size_t(n * out));
  for (int i = 0; i < n; ++i) {
    for (int64_t r = 0; r < out; ++r) {
      double s = 0;
      for (int64_t c = 0; c < in; ++c) s += double(x[i * in + c]) * w[r * in + c];
      y[i * out + r] = s;
    }
  }
  return y;
}

// x rounded as the Q8 activation blocks of kernels.h.
std::vector<float> Q8Rounded(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size() / 32; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) out[b * 32 + j] = d * std::nearbyint(x[b * 32 + j] * id);
  }
  return out;
}

// x as two Q8 planes see it: its Q8 rounding plus that of the residual.
std::vector<float> Q8TwoPlanes(const std::vector<float>& x) {
  std::vector<float> main = Q8Rounded(x), res(x.size());
  for (size_t i = 0; i < x.size(); ++i) res[i] = x[i] - main[i];
  const std::vector<float> r = Q8Rounded(res);
  for (size_t i = 0; i < x.size(); ++i) main[i] += r[i];
  return main;
}

// x rounded as the Q8_K activation blocks of kernels.h (k-quant weights).
std::vector<float> Q8KRounded(const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t b = 0; b < x.size() / 256; ++b) {
    float amax = 0, m = 0;
    for (int j = 0; j < 256; ++j) {
      if (std::fabs(x[b * 256 + j]) > amax) {
        amax = std::fabs(x[b * 256 + j]);
        m = x[b * 256 + j];
      }
    }
    const float iscale = amax != 0 ? -127.0f / m : 0.0f;
    const float d = amax != 0 ? 1.0f / iscale : 0.0f;
    for (int j = 0; j < 256; ++j) {
      out[b * 256 + j] = d * float(std::min(127.0f, std::nearbyint(iscale * x[b * 256 + j])));
    }
  }
  return out;
}

struct MatMulCase {
  DType dtype;
  int n;
  int64_t out, in;
};

void PrintTo(const MatMulCase& c, std::ostream* os) {
  *os << Traits(c.dtype).name << " n=" << c.n << " " << c.out << "x" << c.in;
}

class MatMulTest : public ::testing::TestWithParam<MatMulCase> {
 protected:
  void Check(bool two_planes);
};

// Runs `body` once per SIMD target this CPU supports (and, on AVX-512, with
// and without VNNI), so every kernel variant is checked on this machine.
template <typename F>
void ForEachTarget(F body) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    for (bool vnni : {true, false}) {
      SetVnniForTest(vnni);
      SCOPED_TRACE(KernelTarget());
      body();
    }
  }
  hwy::SetSupportedTargetsForTest(0);
  SetVnniForTest(true);
}

TEST_P(MatMulTest, MatchesNaive) {
  ForEachTarget([&] { Check(true); });
}

// The llama.cpp scheme alone (one 8-bit activation plane).
TEST_P(MatMulTest, MatchesNaiveWithOneActivationPlane) {
  ForEachTarget([&] { Check(false); });
}

void MatMulTest::Check(bool two_planes) {
  const MatMulCase c = GetParam();
  CpuOps ops(CpuOptions{.threads = 2, .two_plane_activations = two_planes});
  TensorStore store;
  const TensorInfo& wt =
      store.Add("w", c.dtype, {c.out, c.in}, RandomVector(size_t(c.out * c.in), 0.05f, 1));
  const TensorInfo& bt = store.Add("b", DType::kF32, {c.out}, RandomVector(size_t(c.out), 1, 2));
  auto w = ops.LoadWeight(wt);
  ASSERT_TRUE(w.ok()) << w.status();
  auto bias = ops.LoadWeight(bt);
  ASSERT_TRUE(bias.ok()) << bias.status();
  const std::vector<float> x = RandomVector(size_t(c.n * c.in), 1.0f, 3);
  auto xb = Upload(ops, x);
  auto yb = ops.Alloc(size_t(c.n * c.out));
  ops.MatMul(*xb, **w, bias->get(), c.n, *yb);
  const std::vector<float> y = Download(ops, *yb, size_t(c.n * c.out));

  const std::vector<float> wd = TensorStore::Dequantized(wt);
  const bool kquant = c.dtype >= DType::kQ2_K && c.dtype <= DType::kQ6_K;
  const bool quant = c.dtype == DType::kQ8_0 || c.dtype == DType::kQ4_0 || kquant;
  // Quantized weights: the exact twin rounds the activations like the kernel
  // does (Q8_0 blocks of 32, with or without the residual plane, or Q8_K
  // blocks of 256 for the k-quants); the remaining difference is f32
  // summation order only.
  const std::vector<double> ref = NaiveMatMul(kquant                ? Q8KRounded(x)
                                              : quant && two_planes ? Q8TwoPlanes(x)
                                              : quant               ? Q8Rounded(x)
                                                                    : x,
                                              wd, c.n, c.out, c.in);
  const std::vector<double> ref_f32 = NaiveMatMul(x, wd, c.n, c.out, c.in);
  const std::vector<float> bv = TensorStore::Dequantized(bt);
  double max_err = 0, max_err_f32 = 0, scale = 0;
  for (int i = 0; i < c.n; ++i) {
    for (int64_t r = 0; r < c.out; ++r) {
      const size_t k = size_t(i * c.out + r);
      max_err = std::max(max_err, std::fabs(y[k] - (ref[k] + bv[size_t(r)])));
      max_err_f32 = std::max(max_err_f32, std::fabs(y[k] - (ref_f32[k] + bv[size_t(r)])));
      scale = std::max(scale, std::fabs(ref_f32[k]));
    }
  }
  // f32 accumulation over `in` terms of size ~0.05: 1e-5 relative to the
  // largest output is ample (observed ~1e-7).
  EXPECT_LT(max_err, 1e-5 * scale + 1e-5) << "scale " << scale;
  if (quant) {
    // Against f32 activations: 8-bit activation rounding (|dx| <= d/2 per
    // element, random signs) costs well under 1% of the output scale; with
    // the residual plane (|dx| <= d/254) well under 0.01%.
    const bool planes = two_planes && !kquant;
    EXPECT_LT(max_err_f32, (planes ? 1e-4 : 1e-2) * scale) << "scale " << scale;
  }
}

INSTANTIATE_TEST_SUITE_P(
    AllFormats, MatMulTest,
    ::testing::Values(MatMulCase{DType::kF32, 1, 37, 40}, MatMulCase{DType::kF32, 7, 65, 588},
                      MatMulCase{DType::kF16, 5, 33, 96}, MatMulCase{DType::kBF16, 6, 50, 136},
                      MatMulCase{DType::kBF16, 1, 300, 64}, MatMulCase{DType::kQ8_0, 1, 70, 256},
                      MatMulCase{DType::kQ8_0, 9, 41, 96}, MatMulCase{DType::kQ4_0, 1, 129, 1152},
                      MatMulCase{DType::kQ4_0, 11, 40, 64}, MatMulCase{DType::kQ4_0, 4, 3, 32},
                      // odd block counts (the 512-bit decode path pairs blocks)
                      MatMulCase{DType::kQ4_0, 1, 33, 96}, MatMulCase{DType::kQ8_0, 1, 17, 160},
                      MatMulCase{DType::kQ4_0, 1, 9, 32},
                      // k-quants: integer dots with Q8_K activations, tiles of 4
                      // activation rows plus remainders
                      MatMulCase{DType::kQ2_K, 3, 37, 512}, MatMulCase{DType::kQ3_K, 1, 20, 256},
                      MatMulCase{DType::kQ4_K, 5, 41, 768}, MatMulCase{DType::kQ5_K, 2, 19, 256},
                      MatMulCase{DType::kQ6_K, 7, 33, 512}, MatMulCase{DType::kQ4_K, 1, 9, 2560},
                      MatMulCase{DType::kQ6_K, 1, 5, 1280}, MatMulCase{DType::kQ3_K, 9, 6, 512},
                      MatMulCase{DType::kQ2_K, 1, 7, 1024}, MatMulCase{DType::kQ5_K, 6, 13, 768},
                      // NF4: rows expanded to f32 (x stays f32)
                      MatMulCase{DType::kNF4, 4, 30, 96}),
    [](const ::testing::TestParamInfo<MatMulCase>& info) {
      const MatMulCase& c = info.param;
      return std::string(Traits(c.dtype).name) + "_n" + std::to_string(c.n) + "_" +
             std::to_string(c.out) + "x" + std::to_string(c.in);
    });

// UNICORN_CPU_ACTIVATION_PLANES picks the activation planes of a process's
// CPU backends: with 2 a Q4_0 product is within 1e-4 of the f32 one, with 1
// (llama.cpp's scheme) it is not.
TEST(CpuOpsTest, EnvironmentPicksTheActivationPlanes) {
  TensorStore store;
  const int in = 256, out = 64;
  const TensorInfo& wt = store.Add("w", DType::kQ4_0, {out, in}, RandomVector(out * in, 0.05f, 1));
  const std::vector<float> x = RandomVector(in, 1.0f, 3);
  const std::vector<double> f32 = NaiveMatMul(x, TensorStore::Dequantized(wt), 1, out, in);
  auto error = [&](const char* planes) {
    unicorn::testing::ScopedEnv env("UNICORN_CPU_ACTIVATION_PLANES", planes);  // read by CpuOps
    CpuOps ops(CpuOptions{2});
    auto w = *ops.LoadWeight(wt);
    auto xb = Upload(ops, x);
    auto yb = ops.Alloc(out);
    ops.MatMul(*xb, *w, nullptr, 1, *yb);
    const std::vector<float> y = Download(ops, *yb, out);
    double err = 0, scale = 0;
    for (int r = 0; r < out; ++r) {
      err = std::max(err, std::fabs(y[size_t(r)] - f32[size_t(r)]));
      scale = std::max(scale, std::fabs(f32[size_t(r)]));
    }
    return err / scale;
  };
  EXPECT_LT(error("2"), 1e-4);
  EXPECT_GT(error("1"), 1e-4);
}

TEST(CpuOpsTest, MatMulMultiEqualsSeparateProducts) {
  CpuOps ops(CpuOptions{2});
  TensorStore store;
  const int n = 3, in = 64;
  const TensorInfo& a = store.Add("a", DType::kQ4_0, {48, in}, RandomVector(48 * in, 0.1f, 4));
  const TensorInfo& b = store.Add("b", DType::kQ8_0, {16, in}, RandomVector(16 * in, 0.1f, 5));
  const TensorInfo& c = store.Add("c", DType::kBF16, {24, in}, RandomVector(24 * in, 0.1f, 6));
  auto wa = *ops.LoadWeight(a);
  auto wb = *ops.LoadWeight(b);
  auto wc = *ops.LoadWeight(c);
  auto x = Upload(ops, RandomVector(n * in, 1, 7));
  auto ya = ops.Alloc(n * 48), yb = ops.Alloc(n * 16), yc = ops.Alloc(n * 24);
  ops.MatMulMulti(*x, {wa.get(), wb.get(), wc.get()}, n, {ya.get(), yb.get(), yc.get()});
  for (auto [w, y, rows] : {std::tuple{wa.get(), ya.get(), 48}, std::tuple{wb.get(), yb.get(), 16},
                            std::tuple{wc.get(), yc.get(), 24}}) {
    auto single = ops.Alloc(size_t(n * rows));
    ops.MatMul(*x, *w, nullptr, n, *single);
    EXPECT_EQ(Download(ops, *y, size_t(n * rows)), Download(ops, *single, size_t(n * rows)));
  }
}

// Each row's argmax in place, as the default Ops::Argmax (through Read)
// and model/sampler.h's Argmax give it: ties to the first, NaN never.
TEST(CpuOpsTest, ArgmaxEqualsTheDefaultAndTheSampler) {
  CpuOps ops(CpuOptions{2});
  const int rows = 9, n = 1000;
  std::vector<float> x = RandomVector(rows * n, 3.0f, 4);
  x[size_t(n) + 7] = x[size_t(n) + 500] = 50.0f;  // a tie
  x[2 * size_t(n) + 3] = std::numeric_limits<float>::quiet_NaN();
  for (int i = 0; i < n; ++i) x[3 * size_t(n) + size_t(i)] = -INFINITY;
  auto xb = Upload(ops, x);
  auto in_place = ops.Alloc(rows), by_default = ops.Alloc(rows);
  ops.Argmax(*xb, rows, n, *in_place);
  ops.Ops::Argmax(*xb, rows, n, *by_default);
  std::vector<int32_t> got(rows), def(rows), want;
  ops.Read(*in_place, 0, got.data(), rows);
  ops.Read(*by_default, 0, def.data(), rows);
  for (int r = 0; r < rows; ++r) {
    want.push_back(int32_t(Argmax(std::span<const float>(x).subspan(size_t(r) * n, n))));
  }
  EXPECT_EQ(want[1], 7);
  EXPECT_EQ(want[3], 0);
  EXPECT_EQ(got, want);
  EXPECT_EQ(def, want);
}

TEST(CpuOpsTest, RmsNormAppliesOnePlusWeight) {
  CpuOps ops(CpuOptions{2});
  TensorStore store;
  const int rows = 5, dim = 67;
  const TensorInfo& wt = store.Add("w", DType::kBF16, {dim}, RandomVector(dim, 0.5f, 8));
  auto w = *ops.LoadWeight(wt);
  const std::vector<float> x = RandomVector(rows * dim, 3.0f, 9);
  auto xb = Upload(ops, x);
  ops.RmsNorm(*xb, *w, rows, dim, 1e-6f, *xb);  // in place
  const std::vector<float> y = Download(ops, *xb, rows * dim);
  const std::vector<float> wv = TensorStore::Dequantized(wt);
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int j = 0; j < dim; ++j) ss += double(x[r * dim + j]) * x[r * dim + j];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-6);
    for (int j = 0; j < dim; ++j) {
      const double ref = x[r * dim + j] * inv * (1.0 + wv[size_t(j)]);
      ASSERT_NEAR(y[size_t(r * dim + j)], ref, 1e-5 * (1 + std::fabs(ref)));  // f32 rounding
    }
  }
}

TEST(CpuOpsTest, LayerNormMatchesNaive) {
  CpuOps ops(CpuOptions{2});
  TensorStore store;
  const int rows = 4, dim = 72;
  auto w = *ops.LoadWeight(store.Add("w", DType::kF32, {dim}, RandomVector(dim, 1, 10)));
  auto b = *ops.LoadWeight(store.Add("b", DType::kF32, {dim}, RandomVector(dim, 1, 11)));
  const std::vector<float> wv = RandomVector(dim, 1, 10), bv = RandomVector(dim, 1, 11);
  std::vector<float> x = RandomVector(rows * dim, 2.0f, 12);
  for (float& v : x) v += 5.0f;  // a mean far from zero
  auto xb = Upload(ops, x);
  auto yb = ops.Alloc(rows * dim);
  ops.LayerNorm(*xb, *w, *b, rows, dim, 1e-6f, *yb);
  const std::vector<float> y = Download(ops, *yb, rows * dim);
  for (int r = 0; r < rows; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < dim; ++j) mean += x[r * dim + j];
    mean /= dim;
    for (int j = 0; j < dim; ++j) var += (x[r * dim + j] - mean) * (x[r * dim + j] - mean);
    var /= dim;
    for (int j = 0; j < dim; ++j) {
      const double ref = (x[r * dim + j] - mean) / std::sqrt(var + 1e-6) * wv[j] + bv[j];
      ASSERT_NEAR(y[size_t(r * dim + j)], ref, 1e-5 * (1 + std::fabs(ref)));
    }
  }
}

TEST(CpuOpsTest, RopeRotatesHalves) {
  CpuOps ops(CpuOptions{2});
  const int n = 3, heads = 2, D = 16;
  const std::vector<int32_t> pos = {0, 7, 4099};
  const std::vector<float> x = RandomVector(n * heads * D, 1, 13);
  auto xb = Upload(ops, x);
  auto pb = UploadI(ops, pos);
  const RopeParams p{1e6f, 8.0f};
  ops.Rope(*xb, *pb, n, heads, D, p);
  const std::vector<float> y = Download(ops, *xb, x.size());
  for (int i = 0; i < n; ++i) {
    for (int h = 0; h < heads; ++h) {
      const float* v = x.data() + (i * heads + h) * D;
      for (int j = 0; j < D / 2; ++j) {
        // transformers: inv_freq in f32, divided by the linear factor; angle in f32.
        const float inv = (1.0f / std::pow(1e6f, float(2 * j) / D)) / 8.0f;
        const double f = double(float(pos[size_t(i)]) * inv);
        const double r0 = v[j] * std::cos(f) - v[j + D / 2] * std::sin(f);
        const double r1 = v[j + D / 2] * std::cos(f) + v[j] * std::sin(f);
        ASSERT_NEAR(y[size_t((i * heads + h) * D + j)], r0, 1e-5);
        ASSERT_NEAR(y[size_t((i * heads + h) * D + j + D / 2)], r1, 1e-5);
      }
    }
  }
}

TEST(CpuOpsTest, AttentionOverRingStoreMatchesNaive) {
  CpuOps ops(CpuOptions{2});
  const int H = 4, KVH = 2, D = 24, cap = 8, n = 3;
  // Positions 10..12 are the chunk; the store holds positions 5..12 at p % 8.
  const std::vector<float> q = RandomVector(n * H * D, 1, 14);
  const std::vector<float> ks = RandomVector(cap * KVH * D, 1, 15);
  const std::vector<float> vs = RandomVector(cap * KVH * D, 1, 16);
  const std::vector<int32_t> spans = {5, 10, 6, 12, 9, 11};
  auto qb = Upload(ops, q), kb = Upload(ops, ks), vb = Upload(ops, vs);
  auto sb = UploadI(ops, spans);
  auto ob = ops.Alloc(n * H * D);
  for (float softcap : {0.0f, 2.0f}) {
    AttentionParams p{H, KVH, D, cap, 0.3f, softcap};
    ops.Attention(*qb, *kb, *vb, *sb, nullptr, n, p, *ob);
    const std::vector<float> o = Download(ops, *ob, n * H * D);
    for (int i = 0; i < n; ++i) {
      for (int h = 0; h < H; ++h) {
        const int g = h / (H / KVH);
        std::vector<double> s;
        for (int pos = spans[2 * i]; pos <= spans[2 * i + 1]; ++pos) {
          double d = 0;
          for (int j = 0; j < D; ++j) {
            d += double(q[(i * H + h) * D + j]) * ks[((pos % cap) * KVH + g) * D + j];
          }
          d *= 0.3;
          if (softcap > 0) d = std::tanh(d / softcap) * softcap;
          s.push_back(d);
        }
        double mx = *std::max_element(s.begin(), s.end()), sum = 0;
        for (double& v : s) sum += (v = std::exp(v - mx));
        for (int j = 0; j < D; ++j) {
          double ref = 0;
          for (size_t t = 0; t < s.size(); ++t) {
            ref += s[t] / sum * vs[(((spans[2 * i] + int(t)) % cap) * KVH + g) * D + j];
          }
          ASSERT_NEAR(o[size_t((i * H + h) * D + j)], ref, 1e-5);
        }
      }
    }
  }
}

TEST(CpuOpsTest, StoreKvWritesRingSlots) {
  CpuOps ops(CpuOptions{1});
  const int kv = 4, cap = 3;
  auto k = Upload(ops, {1, 1, 1, 1, 2, 2, 2, 2});
  auto v = Upload(ops, {3, 3, 3, 3, 4, 4, 4, 4});
  auto pos = UploadI(ops, {4, 5});  // slots 1 and 2
  auto ks = ops.Alloc(cap * kv), vs = ops.Alloc(cap * kv);
  ops.StoreKv(*k, *v, *pos, nullptr, 2, kv, cap, *ks, *vs);
  EXPECT_EQ(Download(ops, *ks, cap * kv), std::vector<float>({0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2}));
  EXPECT_EQ(Download(ops, *vs, cap * kv), std::vector<float>({0, 0, 0, 0, 3, 3, 3, 3, 4, 4, 4, 4}));
}

// A store shared by a batch: row i's slots are ring[i] * cap + pos % cap,
// and its attention equals attention over its ring alone.
TEST(CpuOpsTest, RingsOfABatchStoreAndAttendPerRow) {
  CpuOps ops(CpuOptions{2});
  const int kv = 2, cap = 3;
  auto k = Upload(ops, {1, 1, 2, 2}), v = Upload(ops, {3, 3, 4, 4});
  auto pos = UploadI(ops, {4, 4}), rings = UploadI(ops, {1, 0});
  auto ks = ops.Alloc(2 * cap * kv), vs = ops.Alloc(2 * cap * kv);
  ops.StoreKv(*k, *v, *pos, rings.get(), 2, kv, cap, *ks, *vs);
  EXPECT_EQ(Download(ops, *ks, 2 * cap * kv),
            std::vector<float>({0, 0, 2, 2, 0, 0, 0, 0, 1, 1, 0, 0}));

  const int H = 4, KVH = 2, D = 8, C = 6, n = 3;
  const std::vector<float> q = RandomVector(n * H * D, 1, 40);
  const std::vector<float> store_k = RandomVector(2 * C * KVH * D, 1, 41);
  const std::vector<float> store_v = RandomVector(2 * C * KVH * D, 1, 42);
  const std::vector<int32_t> spans = {0, 4, 2, 5, 1, 3}, ring_of = {1, 0, 1};
  auto qb = Upload(ops, q), kb = Upload(ops, store_k), vb = Upload(ops, store_v);
  auto sb = UploadI(ops, spans), rb = UploadI(ops, ring_of), ob = ops.Alloc(n * H * D);
  const AttentionParams p{H, KVH, D, C, 0.3f, 0.0f};
  ops.Attention(*qb, *kb, *vb, *sb, rb.get(), n, p, *ob);
  const std::vector<float> batched = Download(ops, *ob, n * H * D);
  const size_t ring_floats = size_t(C) * KVH * D;
  for (int i = 0; i < n; ++i) {
    const size_t r0 = size_t(ring_of[size_t(i)]) * ring_floats;
    auto q1 = Upload(ops, std::vector<float>(q.begin() + i * H * D, q.begin() + (i + 1) * H * D));
    auto k1 = Upload(ops, std::vector<float>(store_k.begin() + long(r0),
                                             store_k.begin() + long(r0 + ring_floats)));
    auto v1 = Upload(ops, std::vector<float>(store_v.begin() + long(r0),
                                             store_v.begin() + long(r0 + ring_floats)));
    auto s1 = UploadI(ops, {spans[2 * size_t(i)], spans[2 * size_t(i) + 1]});
    auto o1 = ops.Alloc(H * D);
    ops.Attention(*q1, *k1, *v1, *s1, nullptr, 1, p, *o1);
    const std::vector<float> alone = Download(ops, *o1, H * D);
    for (int j = 0; j < H * D; ++j) ASSERT_EQ(batched[size_t(i * H * D + j)], alone[size_t(j)]);
  }
}

double GeluRef(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

TEST(CpuOpsTest, GeluSoftCapAddMatchNaive) {
  CpuOps ops(CpuOptions{2});
  const size_t n = 1000 + 7;
  std::vector<float> g = RandomVector(n, 3, 17), u = RandomVector(n, 1, 18);
  g[0] = 30;
  g[1] = -30;  // saturated tanh
  auto gb = Upload(ops, g), ub = Upload(ops, u), ob = ops.Alloc(n);
  ops.GeluMul(*gb, *ub, n, *ob);
  std::vector<float> o = Download(ops, *ob, n);
  // Highway's Tanh is accurate to a few ulp; for negative x, 1 + tanh(..)
  // cancels in f32 (as in PyTorch's f32 formula), leaving an absolute error
  // of about ulp(1) * |x| / 2: allow 1e-6 relative plus 2e-7 (1 + |x|).
  auto tol = [](double ref, double x) { return 1e-6 * std::fabs(ref) + 2e-7 * (1 + std::fabs(x)); };
  for (size_t i = 0; i < n; ++i) {
    const double ref = GeluRef(g[i]) * u[i];
    ASSERT_NEAR(o[i], ref, tol(ref, g[i]) * std::max(1.0f, std::fabs(u[i]))) << i;
  }
  ops.Gelu(*gb, n);
  o = Download(ops, *gb, n);
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(o[i], GeluRef(g[i]), tol(GeluRef(g[i]), g[i])) << i;
  auto cb = Upload(ops, g);
  ops.SoftCap(*cb, n, 30.0f);
  o = Download(ops, *cb, n);
  for (size_t i = 0; i < n; ++i) ASSERT_NEAR(o[i], std::tanh(g[i] / 30.0) * 30.0, 1e-5);
  auto ab = Upload(ops, g);
  ops.Add(*ab, *ub, n, *ab);
  o = Download(ops, *ab, n);
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(o[i], g[i] + u[i]);
}

TEST(CpuOpsTest, EmbedScalesRowsAndZeroesUnknownIds) {
  CpuOps ops(CpuOptions{2});
  TensorStore store;
  const int vocab = 10, d = 64;
  const TensorInfo& t = store.Add("e", DType::kQ8_0, {vocab, d}, RandomVector(vocab * d, 1, 19));
  auto w = *ops.LoadWeight(t);
  auto ids = UploadI(ops, {3, 0, 10, -1, 9});
  auto out = ops.Alloc(5 * d);
  ops.Embed(*ids, *w, 2.0f, 5, *out);
  const std::vector<float> o = Download(ops, *out, 5 * d);
  const std::vector<float> ref = TensorStore::Dequantized(t);
  for (int j = 0; j < d; ++j) {
    EXPECT_EQ(o[j], ref[3 * d + j] * 2.0f);
    EXPECT_EQ(o[d + j], ref[j] * 2.0f);
    EXPECT_EQ(o[2 * d + j], 0.0f);
    EXPECT_EQ(o[3 * d + j], 0.0f);
    EXPECT_EQ(o[4 * d + j], ref[9 * d + j] * 2.0f);
  }
}

TEST(CpuOpsTest, AvgPoolAveragesSquares) {
  CpuOps ops(CpuOptions{2});
  const int side = 4, c = 3, k = 2;
  std::vector<float> x(side * side * c);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(i);
  auto xb = Upload(ops, x);
  auto ob = ops.Alloc(4 * c);
  ops.AvgPool(*xb, side, c, k, *ob);
  const std::vector<float> o = Download(ops, *ob, 4 * c);
  for (int oy = 0; oy < 2; ++oy) {
    for (int ox = 0; ox < 2; ++ox) {
      for (int j = 0; j < c; ++j) {
        float s = 0;
        for (int dy = 0; dy < 2; ++dy) {
          for (int dx = 0; dx < 2; ++dx) s += x[((oy * 2 + dy) * side + ox * 2 + dx) * c + j];
        }
        EXPECT_FLOAT_EQ(o[(oy * 2 + ox) * c + j], s / 4);
      }
    }
  }
}

TEST(CpuOpsTest, LoadWeightRejectsBadTensors) {
  CpuOps ops(CpuOptions{1});
  TensorStore store;
  TensorInfo t = store.Add("w", DType::kF32, {4, 8}, RandomVector(32, 1, 20));
  t.nbytes = 10;
  EXPECT_FALSE(ops.LoadWeight(t).ok());
  t = store.Add("q", DType::kQ8_0, {2, 32}, RandomVector(64, 1, 21));
  t.shape = {4, 16};  // rows of 16 are not whole Q8_0 blocks
  auto r = ops.LoadWeight(t);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("whole blocks"), std::string::npos) << r.status();
}

}  // namespace
}  // namespace unicorn::cpu
