// K-quant weights times Q8_K activations (kquant_kernels.h), compiled once per
// target by Highway's foreach_target. On x86 (AVX2, AVX-512) each
// super-block is unpacked into 8 vectors of 32 unsigned codes plus int16
// sub-block scales and mins, written as w = d * sc * q - dmin * m for every
// type (Q6_K: q6 with m = 32 sc; Q3_K: q3 with m = 4 sc). The codes meet the
// int8 activations in maddubs (u8 x s8 -> i16 pairs, at most 2 * 63 * 127,
// no saturation), the pairs meet the scales in madd (-> i32), and the mins
// meet the activations' per-16 sums (bsums) in one more madd: the block's dot
// is exact in int32, then scaled by d * dx and dmin * dx in f32. Other
// targets use the reference dequantization of each block (portable, slow).
#include "npu_worker/cpu/kquant_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "model/kquant.h"
#include "model/quant.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "npu_worker/cpu/kquant_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// Must come after foreach_target.
#include "hwy/highway.h"

#undef UNICORN_KQ_X86
#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL
#define UNICORN_KQ_X86 1
#include <immintrin.h>
#else
#define UNICORN_KQ_X86 0
#endif

HWY_BEFORE_NAMESPACE();
namespace unicorn::cpu {
namespace HWY_NAMESPACE {

#if UNICORN_KQ_X86

HWY_INLINE __m256i L32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
HWY_INLINE float Half(const uint8_t* p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}
// Per byte: (v >> s) & mask (16-bit shifts, then a byte mask, so bits that
// cross into a neighbour byte are dropped).
HWY_INLINE __m256i Bits(__m256i v, int s, int mask) {
  return _mm256_and_si256(_mm256_srl_epi16(v, _mm_cvtsi32_si128(s)), _mm256_set1_epi8(char(mask)));
}

// One super-block, unpacked: w[32g + l] = d * sc(g, l) * q[g][l] - dm * m(...)
// with sv[g] the int16 scales of weights 32g.. (lanes 0-7: sub-block of the
// first 16, lanes 8-15: of the next 16; maddubs pairs map to those lanes)
// and mv the 16 int16 mins per 16 weights.
struct Unpacked {
  __m256i q[8];
  __m256i sv[8];
  __m256i mv;
  float d, dm;
};

// sv[g] from the 16 int16 sub-block scales s16 (sub-blocks of 16 weights):
// lanes 0-7 = s16[2g], lanes 8-15 = s16[2g + 1]. shuffle_epi8 stays within
// 128-bit halves, so each half gets the same 8 scales and picks its own.
HWY_INLINE void PairScales(__m256i s16, __m256i (&sv)[8]) {
  const __m256i lo = _mm256_broadcastsi128_si256(_mm256_castsi256_si128(s16));
  const __m256i hi = _mm256_broadcastsi128_si256(_mm256_extracti128_si256(s16, 1));
  _Pragma("GCC unroll 4") for (int g = 0; g < 4; ++g) {
    const char a = char(4 * g), b = char(4 * g + 1), c = char(4 * g + 2), d = char(4 * g + 3);
    const __m256i m = _mm256_setr_epi8(a, b, a, b, a, b, a, b, a, b, a, b, a, b, a, b,  //
                                       c, d, c, d, c, d, c, d, c, d, c, d, c, d, c, d);
    sv[g] = _mm256_shuffle_epi8(lo, m);
    sv[g + 4] = _mm256_shuffle_epi8(hi, m);
  }
}

// Q4_K / Q5_K: the 8 6-bit scales (bytes of *sc8) and mins (*m8) of the
// sub-blocks of 32 from the 12 packed bytes (layout in model/kquant.h):
// s < 4: low 6 bits of bytes s and s + 4; s >= 4: nibbles of byte s + 4 with
// the top 2 bits of bytes s - 4 and s above them.
HWY_INLINE void ScaleMin6x8(const uint8_t* p, uint64_t* sc8, uint64_t* m8) {
  uint32_t u[3];
  memcpy(u, p, 12);
  const uint32_t low6 = 0x3F3F3F3Fu, nib = 0x0F0F0F0Fu, top2 = 0x03030303u;
  const uint32_t sc_lo = u[0] & low6, m_lo = u[1] & low6;
  const uint32_t sc_hi = (u[2] & nib) | ((u[0] >> 6) & top2) << 4;
  const uint32_t m_hi = ((u[2] >> 4) & nib) | ((u[1] >> 6) & top2) << 4;
  *sc8 = uint64_t(sc_lo) | uint64_t(sc_hi) << 32;
  *m8 = uint64_t(m_lo) | uint64_t(m_hi) << 32;
}

// 8 bytes, each repeated twice, as 16 int16 (a value per 32 -> per 16).
HWY_INLINE __m256i Twice16(uint64_t v8) {
  const __m128i v = _mm_cvtsi64_si128(int64_t(v8));
  return _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(v, v));
}

template <DType T>
HWY_INLINE void Unpack(const uint8_t* b, Unpacked& u) {
  if constexpr (T == DType::kQ4_K || T == DType::kQ5_K) {
    const uint8_t* qs = b + (T == DType::kQ4_K ? 16 : 48);
    u.d = Half(b);
    u.dm = Half(b + 2);
    _Pragma("GCC unroll 4") for (int p = 0; p < 4; ++p) {
      const __m256i v = L32(qs + 32 * p);
      u.q[2 * p] = Bits(v, 0, 15);
      u.q[2 * p + 1] = Bits(v, 4, 15);
    }
    if constexpr (T == DType::kQ5_K) {
      const __m256i qh = L32(b + 16);
      _Pragma("GCC unroll 8") for (int s = 0; s < 8; ++s) {
        u.q[s] = _mm256_or_si256(u.q[s], _mm256_slli_epi16(Bits(qh, s, 1), 4));
      }
    }
    uint64_t sc8, m8;
    ScaleMin6x8(b + 4, &sc8, &m8);
    PairScales(Twice16(sc8), u.sv);
    u.mv = Twice16(m8);
  } else if constexpr (T == DType::kQ6_K) {
    u.d = u.dm = Half(b + 208);
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; ++h) {
      const __m256i a = L32(b + 64 * h), c = L32(b + 64 * h + 32), hb = L32(b + 128 + 32 * h);
      u.q[4 * h] = _mm256_or_si256(Bits(a, 0, 15), _mm256_slli_epi16(Bits(hb, 0, 3), 4));
      u.q[4 * h + 1] = _mm256_or_si256(Bits(c, 0, 15), _mm256_slli_epi16(Bits(hb, 2, 3), 4));
      u.q[4 * h + 2] = _mm256_or_si256(Bits(a, 4, 15), _mm256_slli_epi16(Bits(hb, 4, 3), 4));
      u.q[4 * h + 3] = _mm256_or_si256(Bits(c, 4, 15), _mm256_slli_epi16(Bits(hb, 6, 3), 4));
    }
    const __m256i s16 =
        _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)));
    PairScales(s16, u.sv);
    u.mv = _mm256_slli_epi16(s16, 5);  // 32 * scale
  } else if constexpr (T == DType::kQ2_K) {
    u.d = Half(b + 80);
    u.dm = Half(b + 82);
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; ++h) {
      const __m256i v = L32(b + 16 + 32 * h);
      _Pragma("GCC unroll 4") for (int j = 0; j < 4; ++j) u.q[4 * h + j] = Bits(v, 2 * j, 3);
    }
    const __m128i sm = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    const __m128i nib = _mm_set1_epi8(15);
    PairScales(_mm256_cvtepu8_epi16(_mm_and_si128(sm, nib)), u.sv);
    u.mv = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(sm, 4), nib));
  } else {  // Q3_K
    const uint8_t* sc = b + 96;
    u.d = u.dm = Half(b + 108);
    const __m256i hm = L32(b);
    _Pragma("GCC unroll 2") for (int h = 0; h < 2; ++h) {
      const __m256i v = L32(b + 32 + 32 * h);
      _Pragma("GCC unroll 4") for (int j = 0; j < 4; ++j) {
        u.q[4 * h + j] =
            _mm256_or_si256(Bits(v, 2 * j, 3), _mm256_slli_epi16(Bits(hm, 4 * h + j, 1), 2));
      }
    }
    alignas(32) int16_t s6[16];
    for (int s = 0; s < 16; ++s) {
      const int low = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4;
      const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
      s6[s] = int16_t((low | high << 4) - 32);
    }
    const __m256i s16 = _mm256_load_si256(reinterpret_cast<const __m256i*>(s6));
    PairScales(s16, u.sv);
    u.mv = _mm256_slli_epi16(s16, 2);  // 4 * scale
  }
}

// acc += dx * (d * sum_l sc q x - dm * sum_s m bsum) for one activation block.
HWY_INLINE __m256 BlockDot(const Unpacked& u, const int8_t* xq, const int16_t* bsums, float dx,
                           __m256 acc) {
  __m256i si = _mm256_setzero_si256();
  _Pragma("GCC unroll 8") for (int g = 0; g < 8; ++g) {
    const __m256i p =
        _mm256_maddubs_epi16(u.q[g], L32(reinterpret_cast<const uint8_t*>(xq) + 32 * g));
    si = _mm256_add_epi32(si, _mm256_madd_epi16(p, u.sv[g]));
  }
  const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(bsums));
  const __m256i mi = _mm256_madd_epi16(bs, u.mv);
  acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(si), _mm256_set1_ps(u.d * dx), acc);
  return _mm256_fnmadd_ps(_mm256_cvtepi32_ps(mi), _mm256_set1_ps(u.dm * dx), acc);
}

HWY_INLINE float HSum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Rows [r0, r1): each super-block of a row is unpacked once and dotted with
// the matching block of every activation row (one f32 accumulator vector per
// activation row, so the x blocks stream once per weight row).
template <DType T>
void Rows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const int64_t nb = a.cols / kQK;
  const size_t bs = size_t(Traits(T).block_bytes);
  if (a.n == 1) {  // decode: the accumulator stays in a register
    for (int64_t r = r0; r < r1; ++r) {
      const uint8_t* w = a.w + r * a.w_row_bytes;
      __m256 acc = _mm256_setzero_ps();
      for (int64_t b = 0; b < nb; ++b) {
        _mm_prefetch(reinterpret_cast<const char*>(w + b * bs) + 1024, _MM_HINT_T0);
        Unpacked u;
        Unpack<T>(w + b * bs, u);
        acc = BlockDot(u, a.xk.q + b * kQK, a.xk.bsums + b * 16, a.xk.d[b], acc);
      }
      a.y[r] = HSum(acc) + (a.bias ? a.bias[r] : 0.0f);
    }
    return;
  }
  thread_local std::vector<float> acc;  // [n, 8] partial sums
  if (acc.size() < size_t(a.n) * 8) acc.resize(size_t(a.n) * 8);
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = a.w + r * a.w_row_bytes;
    const float bias = a.bias ? a.bias[r] : 0.0f;
    std::fill(acc.begin(), acc.begin() + a.n * 8, 0.0f);
    for (int64_t b = 0; b < nb; ++b) {
      // Ahead of the hardware prefetcher, as the Q4_0 decode does.
      _mm_prefetch(reinterpret_cast<const char*>(w + b * bs) + 1024, _MM_HINT_T0);
      Unpacked u;
      Unpack<T>(w + b * bs, u);
      for (int i = 0; i < a.n; ++i) {
        float* ai = acc.data() + size_t(i) * 8;
        _mm256_storeu_ps(ai,
                         BlockDot(u, a.xk.q + i * a.cols + b * kQK, a.xk.bsums + (i * nb + b) * 16,
                                  a.xk.d[i * nb + b], _mm256_loadu_ps(ai)));
      }
    }
    for (int i = 0; i < a.n; ++i) {
      a.y[i * a.y_stride + r] = HSum(_mm256_loadu_ps(acc.data() + size_t(i) * 8)) + bias;
    }
  }
}

void KQuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  switch (a.wtype) {
    case DType::kQ2_K:
      return Rows<DType::kQ2_K>(a, r0, r1);
    case DType::kQ3_K:
      return Rows<DType::kQ3_K>(a, r0, r1);
    case DType::kQ4_K:
      return Rows<DType::kQ4_K>(a, r0, r1);
    case DType::kQ5_K:
      return Rows<DType::kQ5_K>(a, r0, r1);
    default:
      return Rows<DType::kQ6_K>(a, r0, r1);
  }
}

#else  // portable: the reference dequantization of each block, f32 dot

void KQuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const int64_t nb = a.cols / kQK;
  const size_t bs = size_t(Traits(a.wtype).block_bytes);
  float w[kQK];
  for (int64_t r = r0; r < r1; ++r) {
    for (int i = 0; i < a.n; ++i) {
      float sum = 0;
      for (int64_t b = 0; b < nb; ++b) {
        DequantizeRow(a.wtype, a.w + r * a.w_row_bytes + b * bs, w, kQK);
        const int8_t* q = a.xk.q + i * a.cols + b * kQK;
        float s = 0;
        for (int l = 0; l < kQK; ++l) s += w[l] * float(q[l]);
        sum += s * a.xk.d[i * nb + b];
      }
      a.y[i * a.y_stride + r] = sum + (a.bias ? a.bias[r] : 0.0f);
    }
  }
}

#endif

}  // namespace HWY_NAMESPACE
}  // namespace unicorn::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace unicorn::cpu {

HWY_EXPORT(KQuantMatMulRows);

void KQuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  HWY_DYNAMIC_DISPATCH(KQuantMatMulRows)(a, r0, r1);
}

void QuantizeRowQ8K(const float* x, int64_t cols, const Q8KRows& out, int64_t row) {
  const int64_t nb = cols / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQK;
    int8_t* q = out.q + row * cols + b * kQK;
    int16_t* bsums = out.bsums + (row * nb + b) * 16;
    float amax = 0, m = 0;
    for (int l = 0; l < kQK; ++l) {
      if (std::fabs(xb[l]) > amax) {
        amax = std::fabs(xb[l]);
        m = xb[l];
      }
    }
    if (amax == 0) {
      out.d[row * nb + b] = 0;
      std::memset(q, 0, kQK);
      std::memset(bsums, 0, 16 * sizeof(int16_t));
      continue;
    }
    const float iscale = -127.0f / m;
    for (int l = 0; l < kQK; ++l) {
      q[l] = int8_t(std::min(127, int(std::nearbyint(iscale * xb[l]))));
    }
    for (int j = 0; j < 16; ++j) {
      int s = 0;
      for (int l = 0; l < 16; ++l) s += q[16 * j + l];
      bsums[j] = int16_t(s);
    }
    out.d[row * nb + b] = 1.0f / iscale;
  }
}

}  // namespace unicorn::cpu
#endif  // HWY_ONCE
