// Integer dot-product kernels of Q8_0 / Q4_0 weights against Q8 activations
// (kernels.h: Q8Rows), with x86 intrinsics: Highway 1.0.3 has no 8-bit dot
// product op. No include guard: kernels.cc includes this once per x86 target
// (inside its Highway target namespace), and once more inside a region that
// enables AVX-512 VNNI. The includer defines, before including:
//   HWY_INLINE __m256i DotU8S8(__m256i u, __m256i s)
// returning 8 int32 lanes, lane j = sum_{k<4} u[4j+k] * s[4j+k] (u unsigned,
// s signed; at most 2 * 128 * 127 per 16-bit pair, so maddubs never saturates).

HWY_INLINE float HSum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

HWY_INLINE float HalfToFloat(const uint8_t* p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

// Q4_0 row (nb blocks) against NT activation rows starting at x + i0.
//   dot(w_b, q_b) with w = nibble - 8 is dot(nibble, q) - 8 sum(q), and
//   d_b * sum(q_b) = s_b, so each block adds dw * (d_b dot(nibble, q_b) - 8 s_b).
template <int NT>
HWY_INLINE void Q4Tile(const uint8_t* w, int64_t nb, const Q8Rows& x, int64_t i0, float* out) {
  __m256 acc[NT];
  float corr[NT];
  for (int t = 0; t < NT; ++t) {
    acc[t] = _mm256_setzero_ps();
    corr[t] = 0;
  }
  const __m256i lo_mask = _mm256_set1_epi8(0x0F);
  const int64_t cols = nb * 32;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * sizeof(BlockQ4_0);
    const float dw = HalfToFloat(blk);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo_mask);
    for (int t = 0; t < NT; ++t) {
      const int64_t row = i0 + t;
      const __m256i a =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + row * cols + b * 32));
      const __m256 p = _mm256_cvtepi32_ps(DotU8S8(nib, a));
      acc[t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * x.d[row * nb + b]), acc[t]);
      corr[t] += dw * x.s[row * nb + b];
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = HSum8(acc[t]) - 8.0f * corr[t];
}

// Q8_0 row against NT activation rows: dot(w, q) = dot(|w|, sign(q, w)).
template <int NT>
HWY_INLINE void Q8Tile(const uint8_t* w, int64_t nb, const Q8Rows& x, int64_t i0, float* out) {
  __m256 acc[NT];
  for (int t = 0; t < NT; ++t) acc[t] = _mm256_setzero_ps();
  const int64_t cols = nb * 32;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = w + b * sizeof(BlockQ8_0);
    const float dw = HalfToFloat(blk);
    const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    const __m256i wabs = _mm256_sign_epi8(wq, wq);
    for (int t = 0; t < NT; ++t) {
      const int64_t row = i0 + t;
      const __m256i a =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + row * cols + b * 32));
      const __m256 p = _mm256_cvtepi32_ps(DotU8S8(wabs, _mm256_sign_epi8(a, wq)));
      acc[t] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw * x.d[row * nb + b]), acc[t]);
    }
  }
  for (int t = 0; t < NT; ++t) out[t] = HSum8(acc[t]);
}

template <int NT>
HWY_INLINE void QuantTile(const MatMulArgs& a, int64_t r, int64_t i0, float* out) {
  const uint8_t* w = a.w + r * a.w_row_bytes;
  const int64_t nb = a.cols / 32;
  if (a.wtype == DType::kQ4_0) {
    Q4Tile<NT>(w, nb, a.xq, i0, out);
  } else {
    Q8Tile<NT>(w, nb, a.xq, i0, out);
  }
}

// y[i, r] for r in [r0, r1): blocks of weight rows small enough to stay in L1
// while every tile of up to 4 activation rows passes over them.
static void QuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const int64_t row_block = std::max<int64_t>(1, 16384 / int64_t(a.w_row_bytes));
  for (int64_t rb = r0; rb < r1; rb += row_block) {
    const int64_t re = std::min(r1, rb + row_block);
    for (int64_t i0 = 0; i0 < a.n; i0 += 4) {
      const int nt = int(std::min<int64_t>(4, a.n - i0));
      for (int64_t r = rb; r < re; ++r) {
        float out[4];
        switch (nt) {
          case 4:
            QuantTile<4>(a, r, i0, out);
            break;
          case 3:
            QuantTile<3>(a, r, i0, out);
            break;
          case 2:
            QuantTile<2>(a, r, i0, out);
            break;
          default:
            QuantTile<1>(a, r, i0, out);
            break;
        }
        const float bias = a.bias ? a.bias[r] : 0.0f;
        for (int t = 0; t < nt; ++t) a.y[(i0 + t) * a.y_stride + r] = out[t] + bias;
      }
    }
  }
}
