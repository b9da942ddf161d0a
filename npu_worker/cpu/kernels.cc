// Highway implementations of kernels.h, compiled once per target by
// foreach_target and picked at run time by HWY_DYNAMIC_DISPATCH.
#include "npu_worker/cpu/kernels.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "model/quant.h"
#include "npu_worker/cpu/kquant_kernels.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "npu_worker/cpu/kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.
#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

#undef UNICORN_X86_INT8
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define UNICORN_X86_INT8 1
#include <immintrin.h>
#else
#define UNICORN_X86_INT8 0
#endif

namespace unicorn::cpu {
extern std::atomic<bool> g_vnni_allowed;  // see SetVnniForTest
}  // namespace unicorn::cpu

HWY_BEFORE_NAMESPACE();
namespace unicorn::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;

// ---- Loading weights of each float format as f32 vectors ----------------

HWY_INLINE hn::Vec<DF> LoadW(DF df, const float* p) { return hn::LoadU(df, p); }
HWY_INLINE hn::Vec<DF> LoadW(DF df, const hwy::bfloat16_t* p) {
  const hn::Rebind<uint16_t, DF> du16;
  const hn::Rebind<uint32_t, DF> du32;
  const auto bits = hn::LoadU(du16, reinterpret_cast<const uint16_t*>(p));
  return hn::BitCast(df, hn::ShiftLeft<16>(hn::PromoteTo(du32, bits)));
}
HWY_INLINE hn::Vec<DF> LoadW(DF df, const hwy::float16_t* p) {
  const hn::Rebind<hwy::float16_t, DF> df16;
  return hn::PromoteTo(df, hn::LoadU(df16, p));
}
HWY_INLINE float ScalarW(const float* p) { return *p; }
HWY_INLINE float ScalarW(const hwy::bfloat16_t* p) {
  uint16_t b;
  memcpy(&b, p, 2);
  return BF16ToF32(b);
}
HWY_INLINE float ScalarW(const hwy::float16_t* p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return F16ToF32(h);
}

// out[t] = dot(w, x[t]) for NT activation rows.
template <int NT, typename WT>
HWY_INLINE void FloatTile(const WT* w, const float* x, int64_t x_stride, int64_t cols, float* out) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  hn::Vec<DF> acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = hn::Zero(df);
  int64_t c = 0;
  for (; c + N <= cols; c += N) {
    const auto wv = LoadW(df, w + c);
    for (int t = 0; t < NT; ++t)
      acc[t] = hn::MulAdd(wv, hn::LoadU(df, x + t * x_stride + c), acc[t]);
  }
  for (int t = 0; t < NT; ++t) {
    float s = hn::GetLane(hn::SumOfLanes(df, acc[t]));
    for (int64_t k = c; k < cols; ++k) s += ScalarW(w + k) * x[t * x_stride + k];
    out[t] = s;
  }
}

template <typename WT>
void FloatMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  // Blocks of weight rows that stay in L2 while all activation tiles pass.
  const int64_t row_block = std::max<int64_t>(1, 65536 / int64_t(a.w_row_bytes));
  for (int64_t rb = r0; rb < r1; rb += row_block) {
    const int64_t re = std::min(r1, rb + row_block);
    for (int64_t i0 = 0; i0 < a.n; i0 += 4) {
      const int nt = int(std::min<int64_t>(4, a.n - i0));
      const float* x = a.x + i0 * a.cols;
      for (int64_t r = rb; r < re; ++r) {
        const WT* w = reinterpret_cast<const WT*>(a.w + r * a.w_row_bytes);
        float out[4];
        switch (nt) {
          case 4:
            FloatTile<4>(w, x, a.cols, a.cols, out);
            break;
          case 3:
            FloatTile<3>(w, x, a.cols, a.cols, out);
            break;
          case 2:
            FloatTile<2>(w, x, a.cols, a.cols, out);
            break;
          default:
            FloatTile<1>(w, x, a.cols, a.cols, out);
            break;
        }
        const float bias = a.bias ? a.bias[r] : 0.0f;
        for (int t = 0; t < nt; ++t) a.y[(i0 + t) * a.y_stride + r] = out[t] + bias;
      }
    }
  }
}

// ---- Integer dot products for Q8_0 / Q4_0 -------------------------------

#if UNICORN_X86_INT8
namespace maddubs {
constexpr bool kVnni = false;
HWY_INLINE __m256i DotU8S8(__m256i acc, __m256i u, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
#include "npu_worker/cpu/int8_x86-inl.h"
}  // namespace maddubs

#if HWY_TARGET != HWY_AVX2
// AVX-512 VNNI (Ice Lake, Zen 4 and later): one instruction per dot.
#pragma GCC push_options
#pragma GCC target("avx512vnni")
#define UNICORN_INT8_512 1
namespace vnni {
constexpr bool kVnni = true;
HWY_INLINE __m256i DotU8S8(__m256i acc, __m256i u, __m256i s) {
  return _mm256_dpbusd_epi32(acc, u, s);
}
#include "npu_worker/cpu/int8_x86-inl.h"
}  // namespace vnni
#undef UNICORN_INT8_512
#pragma GCC pop_options
#endif

bool HasVnni() {
#if HWY_TARGET != HWY_AVX2
  static const bool has = __builtin_cpu_supports("avx512vnni");
  return has && g_vnni_allowed.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

void QuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
#if HWY_TARGET != HWY_AVX2
  if (HasVnni()) return vnni::QuantMatMulRows(a, r0, r1);
#endif
  maddubs::QuantMatMulRows(a, r0, r1);
}

#else  // portable fallback: exact int32 block sums, scalar

bool HasVnni() { return false; }

void QuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const int64_t nb = a.cols / 32;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = a.w + r * a.w_row_bytes;
    for (int i = 0; i < a.n; ++i) {
      float total = 0;
      for (const Q8Rows* plane : {&a.xq, &a.xr}) {
        if (plane->q == nullptr) continue;
        const int8_t* q = plane->q + i * a.cols;
        float sum = 0;
        for (int64_t b = 0; b < nb; ++b) {
          int32_t dot = 0;
          uint16_t h;
          float dw;
          if (a.wtype == DType::kQ4_0) {
            const uint8_t* blk = w + b * sizeof(BlockQ4_0);
            memcpy(&h, blk, 2);
            dw = F16ToF32(h);
            for (int j = 0; j < 16; ++j) {
              dot += (int(blk[2 + j] & 0x0F) - 8) * q[b * 32 + j];
              dot += (int(blk[2 + j] >> 4) - 8) * q[b * 32 + j + 16];
            }
          } else {
            const uint8_t* blk = w + b * sizeof(BlockQ8_0);
            memcpy(&h, blk, 2);
            dw = F16ToF32(h);
            for (int j = 0; j < 32; ++j) dot += int(int8_t(blk[2 + j])) * q[b * 32 + j];
          }
          sum += dw * plane->d[i * nb + b] * float(dot);
        }
        total += sum;
      }
      a.y[i * a.y_stride + r] = total + (a.bias ? a.bias[r] : 0.0f);
    }
  }
}
#endif

float Dot(const float* a, const float* b, int64_t n);  // below

// NF4: each weight row is expanded to f32 once by the reference
// DequantizeRow (model/quant.h), then dotted with all n activation rows by
// the SIMD Dot. Activations stay f32 (no int8 rounding).
void DequantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  thread_local std::vector<float> row;  // [cols]
  if (row.size() < size_t(a.cols)) row.resize(size_t(a.cols));
  for (int64_t r = r0; r < r1; ++r) {
    DequantizeRow(a.wtype, a.w + r * a.w_row_bytes, row.data(), a.cols);
    const float b = a.bias ? a.bias[r] : 0.0f;
    for (int i = 0; i < a.n; ++i) {
      a.y[i * a.y_stride + r] = Dot(a.x + i * a.cols, row.data(), a.cols) + b;
    }
  }
}

void MatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  switch (a.wtype) {
    case DType::kF32:
      return FloatMatMulRows<float>(a, r0, r1);
    case DType::kBF16:
      return FloatMatMulRows<hwy::bfloat16_t>(a, r0, r1);
    case DType::kF16:
      return FloatMatMulRows<hwy::float16_t>(a, r0, r1);
    case DType::kQ8_0:
    case DType::kQ4_0:
      return QuantMatMulRows(a, r0, r1);
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
    case DType::kQ5_K:
    case DType::kQ6_K:
      return cpu::KQuantMatMulRows(a, r0, r1);  // kquant_kernels.cc, its own dispatch
    case DType::kNF4:
      return DequantMatMulRows(a, r0, r1);
  }
}

void QuantizeRowQ8(const float* x, int64_t cols, const Q8Rows& out, int64_t row) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const int64_t N = int64_t(hn::Lanes(df));
  const int64_t nb = cols / 32;
  int8_t* q = out.q + row * cols;
  HWY_ALIGN int32_t qi[32];
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * 32;
    float amax = 0;
    if (N <= 32 && 32 % N == 0) {
      auto vmax = hn::Zero(df);
      for (int64_t j = 0; j < 32; j += N) vmax = hn::Max(vmax, hn::Abs(hn::LoadU(df, xb + j)));
      amax = hn::GetLane(hn::MaxOfLanes(df, vmax));
    } else {
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
    }
    const float d = amax / 127.0f;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    if (N <= 32 && 32 % N == 0) {
      const auto vid = hn::Set(df, id);
      // NearestInt rounds half to even, as std::nearbyint in the default mode.
      for (int64_t j = 0; j < 32; j += N) {
        hn::Store(hn::NearestInt(hn::Mul(hn::LoadU(df, xb + j), vid)), di, qi + j);
      }
    } else {
      for (int j = 0; j < 32; ++j) qi[j] = int32_t(std::nearbyint(xb[j] * id));
    }
    int32_t* bias = out.nbias + (row * nb + b) * 8;
    for (int j = 0; j < 8; ++j) {
      bias[j] = -8 * (qi[4 * j] + qi[4 * j + 1] + qi[4 * j + 2] + qi[4 * j + 3]);
    }
    for (int j = 0; j < 32; ++j) q[b * 32 + j] = int8_t(qi[j]);
    out.d[row * nb + b] = d;
  }
}

// ---- Element-wise -------------------------------------------------------

float Dot(const float* a, const float* b, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  auto acc0 = hn::Zero(df), acc1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * N <= n; i += 2 * N) {
    acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
    acc1 = hn::MulAdd(hn::LoadU(df, a + i + N), hn::LoadU(df, b + i + N), acc1);
  }
  for (; i + N <= n; i += N) acc0 = hn::MulAdd(hn::LoadU(df, a + i), hn::LoadU(df, b + i), acc0);
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void Axpy(float alpha, const float* x, int64_t n, float* y) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  const auto va = hn::Set(df, alpha);
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::MulAdd(va, hn::LoadU(df, x + i), hn::LoadU(df, y + i)), df, y + i);
  for (; i < n; ++i) y[i] += alpha * x[i];
}

float SumSquares(const float* x, int64_t n) { return Dot(x, x, n); }

void RmsNormRow(const float* x, const float* w, int64_t dim, float eps, float* out) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  const float r = 1.0f / std::sqrt(SumSquares(x, dim) / float(dim) + eps);
  const auto vr = hn::Set(df, r);
  const auto one = hn::Set(df, 1.0f);
  int64_t i = 0;
  // (x * r) * (1 + w), rounded as transformers' Gemma3RMSNorm.
  for (; i + N <= dim; i += N) {
    const auto t = hn::Mul(hn::LoadU(df, x + i), vr);
    hn::StoreU(hn::Mul(t, hn::Add(one, hn::LoadU(df, w + i))), df, out + i);
  }
  for (; i < dim; ++i) out[i] = (x[i] * r) * (1.0f + w[i]);
}

void LayerNormRow(const float* x, const float* w, const float* b, int64_t dim, float eps,
                  float* out) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  auto acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + N <= dim; i += N) acc = hn::Add(acc, hn::LoadU(df, x + i));
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < dim; ++i) sum += x[i];
  const float mean = sum / float(dim);
  const auto vm = hn::Set(df, mean);
  acc = hn::Zero(df);
  for (i = 0; i + N <= dim; i += N) {
    const auto c = hn::Sub(hn::LoadU(df, x + i), vm);
    acc = hn::MulAdd(c, c, acc);
  }
  float var = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < dim; ++i) var += (x[i] - mean) * (x[i] - mean);
  const float rstd = 1.0f / std::sqrt(var / float(dim) + eps);
  const auto vr = hn::Set(df, rstd);
  for (i = 0; i + N <= dim; i += N) {
    const auto c = hn::Mul(hn::Sub(hn::LoadU(df, x + i), vm), vr);
    hn::StoreU(hn::MulAdd(c, hn::LoadU(df, w + i), hn::LoadU(df, b + i)), df, out + i);
  }
  for (; i < dim; ++i) out[i] = (x[i] - mean) * rstd * w[i] + b[i];
}

template <class V>
HWY_INLINE V GeluTanh(DF df, V x) {
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const auto k0 = hn::Set(df, 0.7978845608028654f);
  const auto k1 = hn::Set(df, 0.044715f);
  const auto half = hn::Set(df, 0.5f);
  const auto one = hn::Set(df, 1.0f);
  const auto inner = hn::Mul(k0, hn::MulAdd(hn::Mul(k1, x), hn::Mul(x, x), x));
  return hn::Mul(hn::Mul(half, x), hn::Add(one, hn::Tanh(df, inner)));
}

HWY_INLINE float GeluTanhScalar(float x) {
  return 0.5f * x * (1.0f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

void GeluMul(const float* gate, const float* up, size_t n, float* out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(GeluTanh(df, hn::LoadU(df, gate + i)), hn::LoadU(df, up + i)), df, out + i);
  }
  for (; i < n; ++i) out[i] = GeluTanhScalar(gate[i]) * up[i];
}

void Gelu(float* x, size_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(GeluTanh(df, hn::LoadU(df, x + i)), df, x + i);
  for (; i < n; ++i) x[i] = GeluTanhScalar(x[i]);
}

void Add(const float* a, const float* b, size_t n, float* out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(df, a + i), hn::LoadU(df, b + i)), df, out + i);
  for (; i < n; ++i) out[i] = a[i] + b[i];
}

void SoftCap(float* x, size_t n, float cap) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const auto vc = hn::Set(df, cap);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    hn::StoreU(hn::Mul(hn::Tanh(df, hn::Div(hn::LoadU(df, x + i), vc)), vc), df, x + i);
  }
  for (; i < n; ++i) x[i] = std::tanh(x[i] / cap) * cap;
}

void Softmax(float* x, int64_t n) {
  const DF df;
  const int64_t N = int64_t(hn::Lanes(df));
  float mx = -INFINITY;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  const auto vm = hn::Set(df, mx);
  auto acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + N <= n; i += N) {
    const auto e = hn::Exp(df, hn::Sub(hn::LoadU(df, x + i), vm));
    hn::StoreU(e, df, x + i);
    acc = hn::Add(acc, e);
  }
  float sum = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const auto inv = hn::Set(df, 1.0f / sum);
  for (i = 0; i + N <= n; i += N) hn::StoreU(hn::Mul(hn::LoadU(df, x + i), inv), df, x + i);
  for (; i < n; ++i) x[i] *= 1.0f / sum;
}

const char* TargetName() { return HasVnni() ? "AVX3+VNNI" : hwy::TargetName(HWY_TARGET); }

}  // namespace HWY_NAMESPACE
}  // namespace unicorn::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace unicorn::cpu {

std::atomic<bool> g_vnni_allowed{true};
void SetVnniForTest(bool allowed) { g_vnni_allowed = allowed; }

HWY_EXPORT(MatMulRows);
HWY_EXPORT(QuantizeRowQ8);
HWY_EXPORT(RmsNormRow);
HWY_EXPORT(LayerNormRow);
HWY_EXPORT(GeluMul);
HWY_EXPORT(Gelu);
HWY_EXPORT(Add);
HWY_EXPORT(SoftCap);
HWY_EXPORT(Dot);
HWY_EXPORT(Axpy);
HWY_EXPORT(Softmax);
HWY_EXPORT(TargetName);

void MatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(MatMulRows)(a, r0, r1);
}
void QuantizeRowQ8(const float* x, int64_t cols, const Q8Rows& out, int64_t row) {
  HWY_DYNAMIC_DISPATCH(QuantizeRowQ8)(x, cols, out, row);
}
void ResidualRowQ8(const float* x, int64_t cols, const Q8Rows& main, float* scratch,
                   const Q8Rows& out, int64_t row) {
  const int8_t* q = main.q + row * cols;
  const float* d = main.d + row * (cols / 32);
  for (int64_t c = 0; c < cols; ++c) scratch[c] = x[c] - d[c / 32] * float(q[c]);
  QuantizeRowQ8(scratch, cols, out, row);
}
void RmsNormRow(const float* x, const float* w, int64_t dim, float eps, float* out) {
  HWY_DYNAMIC_DISPATCH(RmsNormRow)(x, w, dim, eps, out);
}
void LayerNormRow(const float* x, const float* w, const float* b, int64_t dim, float eps,
                  float* out) {
  HWY_DYNAMIC_DISPATCH(LayerNormRow)(x, w, b, dim, eps, out);
}
void GeluMul(const float* gate, const float* up, size_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(GeluMul)(gate, up, n, out);
}
void Gelu(float* x, size_t n) { HWY_DYNAMIC_DISPATCH(Gelu)(x, n); }
void Add(const float* a, const float* b, size_t n, float* out) {
  HWY_DYNAMIC_DISPATCH(Add)(a, b, n, out);
}
void SoftCap(float* x, size_t n, float cap) { HWY_DYNAMIC_DISPATCH(SoftCap)(x, n, cap); }
float Dot(const float* a, const float* b, int64_t n) { return HWY_DYNAMIC_DISPATCH(Dot)(a, b, n); }
void Axpy(float alpha, const float* x, int64_t n, float* y) {
  HWY_DYNAMIC_DISPATCH(Axpy)(alpha, x, n, y);
}
void Softmax(float* x, int64_t n) { HWY_DYNAMIC_DISPATCH(Softmax)(x, n); }
const char* KernelTarget() { return HWY_DYNAMIC_DISPATCH(TargetName)(); }

}  // namespace unicorn::cpu
#endif  // HWY_ONCE
