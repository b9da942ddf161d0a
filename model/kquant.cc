#include "model/kquant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "model/quant.h"

// Scale search, shared by all k-quants:
//   Symmetric types (Q3_K, Q6_K: codes q in [qmin, qmax], w = s * q): with xm
//   the weight of largest magnitude (sign kept), try s = xm / (qmin + t) for
//   t in {-0.5, -0.4, ..., 1.0}; round and clamp the codes, then refit s by
//   least squares on those codes (s = <x,q> / <q,q>) and keep the s with the
//   smallest squared error.
//   Asymmetric types (Q2_K, Q4_K, Q5_K: q in [0, qmax], w = s * q - m, m >= 0
//   so that the block minimum, clamped to <= 0, is representable): try
//   s = (max - min) / (qmax + t) for the same t grid with m = -min, round,
//   refit (s, m) by 2x2 least squares (m clamped at 0), and keep the best.
// Sub-block scales are then quantized against the super-block scale (6, 4 or
// 8 bits) and every code is re-rounded with its final, quantized scale.

namespace unicorn {
namespace {

constexpr int kGridLo = -5, kGridHi = 10;  // t = k / 10

float Load16(const uint16_t& h) { return F16ToF32(h); }

int Nearest(float v) { return int(std::lrintf(v)); }

// w ~= s * q, q in [qmin, qmax]. Returns s.
float SearchSymmetric(const float* x, int n, int qmin, int qmax) {
  float amax = 0, xm = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(x[i]) > amax) {
      amax = std::fabs(x[i]);
      xm = x[i];
    }
  }
  if (amax == 0) return 0;
  float best_s = xm / qmin, best_err = INFINITY;
  for (int k = kGridLo; k <= kGridHi; ++k) {
    const float s = xm / (float(qmin) + 0.1f * k);
    const float is = 1.0f / s;
    double xq = 0, qq = 0;
    int q[32];
    for (int i = 0; i < n; ++i) {
      q[i] = std::clamp(Nearest(x[i] * is), qmin, qmax);
      xq += double(x[i]) * q[i];
      qq += double(q[i]) * q[i];
    }
    if (qq == 0) continue;
    const float fit = float(xq / qq);
    float err = 0;
    for (int i = 0; i < n; ++i) {
      const float e = x[i] - fit * q[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best_s = fit;
    }
  }
  return best_s;
}

struct ScaleMin {
  float s = 0, m = 0;  // w = s * q - m
};

// w ~= s * q - m, q in [0, qmax], s >= 0, m >= 0.
ScaleMin SearchAsymmetric(const float* x, int n, int qmax) {
  float lo = 0, hi = x[0];
  for (int i = 0; i < n; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
  if (hi <= lo) return {0, -lo};
  ScaleMin best{(hi - lo) / qmax, -lo};
  float best_err = INFINITY;
  for (int k = kGridLo; k <= kGridHi; ++k) {
    float s = (hi - lo) / (float(qmax) + 0.1f * k), m = -lo;
    for (int iter = 0; iter < 2; ++iter) {
      if (s <= 0) break;
      const float is = 1.0f / s;
      int q[32];
      double sq = 0, sqq = 0, sx = 0, sxq = 0;
      for (int i = 0; i < n; ++i) {
        q[i] = std::clamp(Nearest((x[i] + m) * is), 0, qmax);
        sq += q[i];
        sqq += double(q[i]) * q[i];
        sx += x[i];
        sxq += double(x[i]) * q[i];
      }
      // Least squares for x = s q + b: [sqq sq; sq n] [s; b] = [sxq; sx].
      const double det = sqq * n - sq * sq;
      float ns, nb;
      if (det > 0) {
        ns = float((sxq * n - sq * sx) / det);
        nb = float((sqq * sx - sq * sxq) / det);
      } else {
        ns = s;
        nb = -m;
      }
      if (nb > 0) {  // m must stay >= 0: refit s alone with b = 0
        nb = 0;
        ns = sqq > 0 ? float(sxq / sqq) : 0;
      }
      if (ns < 0) ns = 0;
      float err = 0;
      for (int i = 0; i < n; ++i) {
        const float e = x[i] - (ns * q[i] + nb);
        err += e * e;
      }
      if (err < best_err) {
        best_err = err;
        best = {ns, -nb};
      }
      s = ns;
      m = -nb;
    }
  }
  return best;
}

// Super-block scale for unsigned sub-block values v[] in [0, vmax]: f16 of
// max(v) / levels, with quantized values out[] = round(v / d).
uint16_t QuantizeUnsigned(const float* v, int n, int levels, int* out) {
  float mx = 0;
  for (int i = 0; i < n; ++i) mx = std::max(mx, v[i]);
  const uint16_t dh = F32ToF16(mx / levels);
  const float d = F16ToF32(dh);
  const float id = d > 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) out[i] = std::clamp(Nearest(v[i] * id), 0, levels);
  return dh;
}

// Signed sub-block scales in [lo, hi] (lo < 0): the largest magnitude maps
// to lo, as Q4_0 does with its weights.
uint16_t QuantizeSigned(const float* v, int n, int lo, int hi, int* out) {
  float amax = 0, vm = 0;
  for (int i = 0; i < n; ++i) {
    if (std::fabs(v[i]) > amax) {
      amax = std::fabs(v[i]);
      vm = v[i];
    }
  }
  const uint16_t dh = F32ToF16(vm / lo);
  const float d = F16ToF32(dh);
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int i = 0; i < n; ++i) out[i] = std::clamp(Nearest(v[i] * id), lo, hi);
  return dh;
}

// Q4_K / Q5_K's 12-byte packing of eight 6-bit (scale, min) pairs.
void PackScaleMin6(const int* sc, const int* m, uint8_t* out) {
  std::memset(out, 0, 12);
  for (int s = 0; s < 8; ++s) {
    if (s < 4) {
      out[s] |= uint8_t(sc[s]);
      out[s + 4] |= uint8_t(m[s]);
    } else {
      out[s + 4] = uint8_t((sc[s] & 15) | (m[s] & 15) << 4);
      out[s - 4] |= uint8_t((sc[s] >> 4) << 6);
      out[s] |= uint8_t((m[s] >> 4) << 6);
    }
  }
}

void UnpackScaleMin6(const uint8_t* q, int s, int* sc, int* m) {
  if (s < 4) {
    *sc = q[s] & 63;
    *m = q[s + 4] & 63;
  } else {
    *sc = (q[s + 4] & 15) | (q[s - 4] >> 6) << 4;
    *m = (q[s + 4] >> 4) | (q[s] >> 6) << 4;
  }
}

// Q3_K's 6-bit signed scale s (stored + 32).
int Q3Scale(const uint8_t* sc, int s) {
  const int low = s < 8 ? sc[s] & 15 : sc[s - 8] >> 4;
  const int high = (sc[8 + s % 4] >> (2 * (s / 4))) & 3;
  return (low | high << 4) - 32;
}

// Shared by Q2_K and Q3_K: position of weight i in qs and its shift.
//   i = 128h + 32j + l  ->  qs[32h + l], bits 2j..2j+1
inline void Q2Pos(int i, int* byte, int* shift) {
  const int h = i / 128, j = (i % 128) / 32, l = i % 32;
  *byte = 32 * h + l;
  *shift = 2 * j;
}

// Q6_K: position of weight i: ql byte and nibble shift, qh byte and shift.
inline void Q6Pos(int i, int* lb, int* ls, int* hb, int* hs) {
  const int h = i / 128, r = i % 128, g = r / 32, l = r % 32;
  *lb = 64 * h + (g & 1) * 32 + l;
  *ls = (g >> 1) * 4;
  *hb = 32 * h + l;
  *hs = 2 * g;
}

// Q4_K / Q5_K: weight i = 64p + 32hi + l -> qs[32p + l], nibble hi.
inline void Q4Pos(int i, int* byte, int* shift, int* hbit) {
  const int p = i / 64, hi = (i % 64) / 32, l = i % 32;
  *byte = 32 * p + l;
  *shift = 4 * hi;
  *hbit = 2 * p + hi;  // Q5_K: bit of qh[l]
}

}  // namespace

const float kNf4Levels[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

// ---- Dequantization -------------------------------------------------------

void DequantizeQ2_K(const uint8_t* src, float* dst) {
  BlockQ2_K b;
  std::memcpy(&b, src, sizeof(b));
  const float d = Load16(b.d), dmin = Load16(b.dmin);
  for (int i = 0; i < kQK; ++i) {
    int byte, shift;
    Q2Pos(i, &byte, &shift);
    const int s = i / 16;  // 128h + 32j + l -> sub-block 8h + 2j + l/16 == i / 16
    const int q = (b.qs[byte] >> shift) & 3;
    dst[i] = d * (b.scales[s] & 15) * q - dmin * (b.scales[s] >> 4);
  }
}

void DequantizeQ3_K(const uint8_t* src, float* dst) {
  BlockQ3_K b;
  std::memcpy(&b, src, sizeof(b));
  const float d = Load16(b.d);
  for (int i = 0; i < kQK; ++i) {
    int byte, shift;
    Q2Pos(i, &byte, &shift);
    const int h = i / 128, j = (i % 128) / 32, l = i % 32;
    const int low = (b.qs[byte] >> shift) & 3;
    const int high = (b.hmask[l] >> (4 * h + j)) & 1;
    dst[i] = d * Q3Scale(b.scales, i / 16) * ((low | high << 2) - 4);
  }
}

void DequantizeQ4_K(const uint8_t* src, float* dst) {
  BlockQ4_K b;
  std::memcpy(&b, src, sizeof(b));
  const float d = Load16(b.d), dmin = Load16(b.dmin);
  for (int i = 0; i < kQK; ++i) {
    int byte, shift, hbit, sc, m;
    Q4Pos(i, &byte, &shift, &hbit);
    UnpackScaleMin6(b.scales, i / 32, &sc, &m);
    dst[i] = d * sc * ((b.qs[byte] >> shift) & 15) - dmin * m;
  }
}

void DequantizeQ5_K(const uint8_t* src, float* dst) {
  BlockQ5_K b;
  std::memcpy(&b, src, sizeof(b));
  const float d = Load16(b.d), dmin = Load16(b.dmin);
  for (int i = 0; i < kQK; ++i) {
    int byte, shift, hbit, sc, m;
    Q4Pos(i, &byte, &shift, &hbit);
    UnpackScaleMin6(b.scales, i / 32, &sc, &m);
    const int q = ((b.qs[byte] >> shift) & 15) | ((b.qh[i % 32] >> hbit) & 1) << 4;
    dst[i] = d * sc * q - dmin * m;
  }
}

void DequantizeQ6_K(const uint8_t* src, float* dst) {
  BlockQ6_K b;
  std::memcpy(&b, src, sizeof(b));
  const float d = Load16(b.d);
  for (int i = 0; i < kQK; ++i) {
    int lb, ls, hb, hs;
    Q6Pos(i, &lb, &ls, &hb, &hs);
    const int q = ((b.ql[lb] >> ls) & 15) | ((b.qh[hb] >> hs) & 3) << 4;
    dst[i] = d * b.scales[i / 16] * (q - 32);
  }
}

void DequantizeNF4(const uint8_t* src, float* dst) {
  uint16_t h;
  std::memcpy(&h, src, 2);
  const float d = Load16(h);
  for (int j = 0; j < 16; ++j) {
    dst[j] = d * kNf4Levels[src[2 + j] & 15];
    dst[j + 16] = d * kNf4Levels[src[2 + j] >> 4];
  }
}

// ---- Quantization ---------------------------------------------------------

void QuantizeQ2_K(const float* x, uint8_t* dst) {
  BlockQ2_K b{};
  float sc[16], mn[16];
  for (int s = 0; s < 16; ++s) {
    const ScaleMin r = SearchAsymmetric(x + 16 * s, 16, 3);
    sc[s] = r.s;
    mn[s] = r.m;
  }
  int qsc[16], qmn[16];
  b.d = QuantizeUnsigned(sc, 16, 15, qsc);
  b.dmin = QuantizeUnsigned(mn, 16, 15, qmn);
  const float d = F16ToF32(b.d), dmin = F16ToF32(b.dmin);
  for (int s = 0; s < 16; ++s) b.scales[s] = uint8_t(qsc[s] | qmn[s] << 4);
  for (int i = 0; i < kQK; ++i) {
    const int s = i / 16;
    const float step = d * qsc[s], off = dmin * qmn[s];
    const int q = step > 0 ? std::clamp(Nearest((x[i] + off) / step), 0, 3) : 0;
    int byte, shift;
    Q2Pos(i, &byte, &shift);
    b.qs[byte] |= uint8_t(q << shift);
  }
  std::memcpy(dst, &b, sizeof(b));
}

void QuantizeQ3_K(const float* x, uint8_t* dst) {
  BlockQ3_K b{};
  float sc[16];
  for (int s = 0; s < 16; ++s) sc[s] = SearchSymmetric(x + 16 * s, 16, -4, 3);
  int qsc[16];
  b.d = QuantizeSigned(sc, 16, -32, 31, qsc);
  const float d = F16ToF32(b.d);
  for (int s = 0; s < 16; ++s) {
    const int u = qsc[s] + 32;
    if (s < 8) {
      b.scales[s] |= uint8_t(u & 15);
    } else {
      b.scales[s - 8] |= uint8_t((u & 15) << 4);
    }
    b.scales[8 + s % 4] |= uint8_t((u >> 4) << (2 * (s / 4)));
  }
  for (int i = 0; i < kQK; ++i) {
    const float step = d * qsc[i / 16];
    const int q = step != 0 ? std::clamp(Nearest(x[i] / step), -4, 3) + 4 : 4;
    int byte, shift;
    Q2Pos(i, &byte, &shift);
    const int h = i / 128, j = (i % 128) / 32, l = i % 32;
    b.qs[byte] |= uint8_t((q & 3) << shift);
    b.hmask[l] |= uint8_t((q >> 2) << (4 * h + j));
  }
  std::memcpy(dst, &b, sizeof(b));
}

namespace {

// Q4_K and Q5_K share everything but the code width.
template <typename Block, int kQMax>
void QuantizeQ45(const float* x, Block& b) {
  float sc[8], mn[8];
  for (int s = 0; s < 8; ++s) {
    const ScaleMin r = SearchAsymmetric(x + 32 * s, 32, kQMax);
    sc[s] = r.s;
    mn[s] = r.m;
  }
  int qsc[8], qmn[8];
  b.d = QuantizeUnsigned(sc, 8, 63, qsc);
  b.dmin = QuantizeUnsigned(mn, 8, 63, qmn);
  PackScaleMin6(qsc, qmn, b.scales);
  const float d = F16ToF32(b.d), dmin = F16ToF32(b.dmin);
  for (int i = 0; i < kQK; ++i) {
    const int s = i / 32;
    const float step = d * qsc[s], off = dmin * qmn[s];
    const int q = step > 0 ? std::clamp(Nearest((x[i] + off) / step), 0, kQMax) : 0;
    int byte, shift, hbit;
    Q4Pos(i, &byte, &shift, &hbit);
    b.qs[byte] |= uint8_t((q & 15) << shift);
    if constexpr (kQMax == 31) b.qh[i % 32] |= uint8_t((q >> 4) << hbit);
  }
}

}  // namespace

void QuantizeQ4_K(const float* x, uint8_t* dst) {
  BlockQ4_K b{};
  QuantizeQ45<BlockQ4_K, 15>(x, b);
  std::memcpy(dst, &b, sizeof(b));
}

void QuantizeQ5_K(const float* x, uint8_t* dst) {
  BlockQ5_K b{};
  QuantizeQ45<BlockQ5_K, 31>(x, b);
  std::memcpy(dst, &b, sizeof(b));
}

void QuantizeQ6_K(const float* x, uint8_t* dst) {
  BlockQ6_K b{};
  float sc[16];
  for (int s = 0; s < 16; ++s) sc[s] = SearchSymmetric(x + 16 * s, 16, -32, 31);
  int qsc[16];
  b.d = QuantizeSigned(sc, 16, -128, 127, qsc);
  const float d = F16ToF32(b.d);
  for (int s = 0; s < 16; ++s) b.scales[s] = int8_t(qsc[s]);
  for (int i = 0; i < kQK; ++i) {
    const float step = d * qsc[i / 16];
    const int q = step != 0 ? std::clamp(Nearest(x[i] / step), -32, 31) + 32 : 32;
    int lb, ls, hb, hs;
    Q6Pos(i, &lb, &ls, &hb, &hs);
    b.ql[lb] |= uint8_t((q & 15) << ls);
    b.qh[hb] |= uint8_t((q >> 4) << hs);
  }
  std::memcpy(dst, &b, sizeof(b));
}

void QuantizeNF4(const float* x, uint8_t* dst) {
  float amax = 0;
  for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  const uint16_t dh = F32ToF16(amax);
  const float d = F16ToF32(dh);
  const float id = d > 0 ? 1.0f / d : 0.0f;
  auto code = [&](float v) {
    const float t = v * id;
    int best = 0;
    float be = INFINITY;
    for (int k = 0; k < 16; ++k) {
      const float e = std::fabs(t - kNf4Levels[k]);
      if (e < be) {
        be = e;
        best = k;
      }
    }
    return best;
  };
  std::memcpy(dst, &dh, 2);
  for (int j = 0; j < 16; ++j) dst[2 + j] = uint8_t(code(x[j]) | code(x[j + 16]) << 4);
}

}  // namespace unicorn
