// Integer dot-product kernels of Q8_0 / Q4_0 weights against Q8 activations
// (kernels.h: Q8Rows, one plane or two), with x86 intrinsics: Highway 1.0.3 has no 8-bit dot
// product op. No include guard: kernels.cc includes this once per x86 target
// (inside its Highway target namespace), and once more inside a region that
// enables AVX-512 VNNI. The includer defines, before including:
//   kVnni: whether DotU8S8 is VNNI's (no saturation: Q8_0 may use u8 up to 255)
//   HWY_INLINE __m256i DotU8S8(__m256i acc, __m256i u, __m256i s)
// returning acc + 8 int32 lanes, lane j = sum_{k<4} u[4j+k] * s[4j+k] (u
// unsigned, s signed). Without VNNI this is maddubs, whose 16-bit pairs
// saturate above 32767: fine for nibbles (<= 15) and for |w| <= 128.
//
// Structure: a tile is R weight rows x NT activation rows; each weight block
// is unpacked once and used NT times, each activation block is loaded once
// and used R times, and the R * NT accumulators are independent chains.
// Zero points cost nothing in the loop: the activation quantizer stores, per
// block, nbias lanes = -8 * (sum of the 4 q's of the lane) (kernels.h), which
// seed the dot product of Q4_0's unsigned nibbles (w = nibble - 8), and, x16,
// that of VNNI Q8_0's w + 128.

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

template <int R, int NT>
HWY_INLINE void Q4Step(const uint8_t* w, size_t row_bytes, int64_t nb, int64_t cols,
                       const Q8Rows& x, int64_t i0, int64_t b, __m256 (&acc)[NT][R]) {
  const __m256i lo_mask = _mm256_set1_epi8(0x0F);
  __m256i nib[R];
  float dw[R];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
    const uint8_t* blk = w + r * row_bytes + b * sizeof(BlockQ4_0);
    dw[r] = HalfToFloat(blk);
    const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2));
    nib[r] = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo_mask);
  }
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    const int64_t row = i0 + t;
    const __m256i a =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + row * cols + b * 32));
    const __m256i bias =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.nbias + (row * nb + b) * 8));
    const float d = x.d[row * nb + b];
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      const __m256 p = _mm256_cvtepi32_ps(DotU8S8(bias, nib[r], a));
      acc[t][r] = _mm256_fmadd_ps(p, _mm256_set1_ps(dw[r] * d), acc[t][r]);
    }
  }
}

template <int R, int NT>
HWY_INLINE void Q8Step(const uint8_t* w, size_t row_bytes, int64_t nb, int64_t cols,
                       const Q8Rows& x, int64_t i0, int64_t b, __m256 (&acc)[NT][R]) {
  const __m256i flip = _mm256_set1_epi8(char(0x80));
  __m256i wq[R];
  float dw[R];
  _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
    const uint8_t* blk = w + r * row_bytes + b * sizeof(BlockQ8_0);
    dw[r] = HalfToFloat(blk);
    wq[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
    // VNNI: w + 128 as unsigned (the bias removes 128 * sum(q)); maddubs
    // would saturate on that, so it takes |w| and moves the sign to q.
    wq[r] = kVnni ? _mm256_xor_si256(wq[r], flip) : wq[r];
  }
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    const int64_t row = i0 + t;
    const __m256i a =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + row * cols + b * 32));
    const float d = x.d[row * nb + b];
    __m256i seed = _mm256_setzero_si256();
    if (kVnni) {
      seed = _mm256_slli_epi32(
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.nbias + (row * nb + b) * 8)), 4);
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      const __m256i p =
          kVnni ? DotU8S8(seed, wq[r], a)
                : DotU8S8(seed, _mm256_sign_epi8(wq[r], wq[r]), _mm256_sign_epi8(a, wq[r]));
      acc[t][r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw[r] * d), acc[t][r]);
    }
  }
}

// One tile: two accumulator sets (even and odd blocks) so that even a 1 x 1
// tile has two independent FMA chains.
template <bool kQ4, int R, int NT>
HWY_INLINE void QTile(const uint8_t* w, size_t row_bytes, int64_t nb, const Q8Rows& x, int64_t i0,
                      float* out) {
  __m256 acc0[NT][R], acc1[NT][R];
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      acc0[t][r] = _mm256_setzero_ps();
      acc1[t][r] = _mm256_setzero_ps();
    }
  }
  const int64_t cols = nb * 32;
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    if (kQ4) {
      Q4Step<R, NT>(w, row_bytes, nb, cols, x, i0, b, acc0);
      Q4Step<R, NT>(w, row_bytes, nb, cols, x, i0, b + 1, acc1);
    } else {
      Q8Step<R, NT>(w, row_bytes, nb, cols, x, i0, b, acc0);
      Q8Step<R, NT>(w, row_bytes, nb, cols, x, i0, b + 1, acc1);
    }
  }
  if (b < nb) {
    if (kQ4) {
      Q4Step<R, NT>(w, row_bytes, nb, cols, x, i0, b, acc0);
    } else {
      Q8Step<R, NT>(w, row_bytes, nb, cols, x, i0, b, acc0);
    }
  }
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    _Pragma("GCC unroll 8") for (int r = 0; r < R; ++r) {
      out[t * R + r] = HSum8(_mm256_add_ps(acc0[t][r], acc1[t][r]));
    }
  }
}

#if defined(UNICORN_INT8_512)
// Decode rows with 512-bit vectors, two blocks per step (AVX-512 VNNI only):
// half the instructions of the 256-bit tile, which matters once the weights
// stream from memory on several cores. y = dot(W[r], x) for one activation row.
HWY_INLINE __m512 PairScale(const uint8_t* blk0, const uint8_t* blk1, const float* d) {
  uint16_t h0, h1;
  memcpy(&h0, blk0, 2);
  memcpy(&h1, blk1, 2);
  const __m128 dw = _mm_cvtph_ps(_mm_cvtsi32_si128(int(h0) | int(h1) << 16));
  const __m128 s =
      _mm_mul_ps(dw, _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(d))));
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               _mm512_castps128_ps512(s));
}

// dot(W row, x) over both activation planes when xr.q is set: each weight
// block is loaded and unpacked once for both.
HWY_INLINE float Q4Row512(const uint8_t* w, int64_t nb, const Q8Rows& x, const Q8Rows& xr) {
  const bool two = xr.q != nullptr;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
  int64_t b = 0;
  auto step = [&](int64_t b, __m512& acc) {
    const uint8_t* blk0 = w + b * sizeof(BlockQ4_0);
    const uint8_t* blk1 = blk0 + sizeof(BlockQ4_0);
    _mm_prefetch(reinterpret_cast<const char*>(blk0) + 1536, _MM_HINT_T0);
    const __m256i q01 = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk0 + 2))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk1 + 2)), 1);
    // [q0, q0, q1, q1] then >> 4 in lanes 1 and 3: [lo0, hi0, lo1, hi1].
    const __m512i v =
        _mm512_shuffle_i64x2(_mm512_castsi256_si512(q01), _mm512_castsi256_si512(q01), 0x50);
    const __m512i nib = _mm512_and_si512(_mm512_srlv_epi64(v, shift), mask);
    const __m512i a = _mm512_loadu_si512(x.q + b * 32);
    const __m512i bias = _mm512_loadu_si512(x.nbias + b * 8);
    const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(bias, nib, a));
    acc = _mm512_fmadd_ps(p, PairScale(blk0, blk1, x.d + b), acc);
    if (two) {
      const __m512i a2 = _mm512_loadu_si512(xr.q + b * 32);
      const __m512i bias2 = _mm512_loadu_si512(xr.nbias + b * 8);
      const __m512 p2 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(bias2, nib, a2));
      acc = _mm512_fmadd_ps(p2, PairScale(blk0, blk1, xr.d + b), acc);
    }
  };
  for (; b + 4 <= nb; b += 4) {
    step(b, acc0);
    step(b + 2, acc1);
  }
  for (; b + 2 <= nb; b += 2) step(b, acc0);
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  if (b < nb) {  // odd block count: the 256-bit step
    __m256 acc[1][1] = {{_mm256_setzero_ps()}};
    Q4Step<1, 1>(w, 0, nb, nb * 32, x, 0, b, acc);
    if (two) Q4Step<1, 1>(w, 0, nb, nb * 32, xr, 0, b, acc);
    sum += HSum8(acc[0][0]);
  }
  return sum;
}

HWY_INLINE float Q8Row512(const uint8_t* w, int64_t nb, const Q8Rows& x, const Q8Rows& xr) {
  const bool two = xr.q != nullptr;
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  int64_t b = 0;
  auto step = [&](int64_t b, __m512& acc) {
    const uint8_t* blk0 = w + b * sizeof(BlockQ8_0);
    const uint8_t* blk1 = blk0 + sizeof(BlockQ8_0);
    _mm_prefetch(reinterpret_cast<const char*>(blk0) + 1536, _MM_HINT_T0);
    const __m512i wq = _mm512_xor_si512(
        _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk0 + 2))),
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk1 + 2)), 1),
        flip);
    const __m512i a = _mm512_loadu_si512(x.q + b * 32);
    const __m512i seed = _mm512_slli_epi32(_mm512_loadu_si512(x.nbias + b * 8), 4);
    const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed, wq, a));
    acc = _mm512_fmadd_ps(p, PairScale(blk0, blk1, x.d + b), acc);
    if (two) {
      const __m512i a2 = _mm512_loadu_si512(xr.q + b * 32);
      const __m512i seed2 = _mm512_slli_epi32(_mm512_loadu_si512(xr.nbias + b * 8), 4);
      const __m512 p2 = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed2, wq, a2));
      acc = _mm512_fmadd_ps(p2, PairScale(blk0, blk1, xr.d + b), acc);
    }
  };
  for (; b + 4 <= nb; b += 4) {
    step(b, acc0);
    step(b + 2, acc1);
  }
  for (; b + 2 <= nb; b += 2) step(b, acc0);
  float sum = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
  if (b < nb) {
    __m256 acc[1][1] = {{_mm256_setzero_ps()}};
    Q8Step<1, 1>(w, 0, nb, nb * 32, x, 0, b, acc);
    if (two) Q8Step<1, 1>(w, 0, nb, nb * 32, xr, 0, b, acc);
    sum += HSum8(acc[0][0]);
  }
  return sum;
}

// Prefill tile with 512-bit vectors: R weight rows x NT activation rows, two
// blocks per step. Scales: per row a [dw_b x8, dw_b+1 x8] vector, per
// activation row the same of d, multiplied per pair.
HWY_INLINE __m512 PairBroadcast(__m128 two) {
  return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                               _mm512_castps128_ps512(two));
}

// One activation plane x (args.xq or args.xr); `add` adds to y (no bias).
template <bool kQ4, int R, int NT>
HWY_INLINE void Tile512(const MatMulArgs& args, const Q8Rows& x, bool add, int64_t r, int64_t i0) {
  const int64_t nb = args.cols / 32, cols = args.cols;
  const size_t bs = kQ4 ? sizeof(BlockQ4_0) : sizeof(BlockQ8_0);
  __m512 acc[NT][R];
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) acc[t][k] = _mm512_setzero_ps();
  }
  const __m512i mask = _mm512_set1_epi8(0x0F);
  const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
  const __m512i flip = _mm512_set1_epi8(char(0x80));
  int64_t b = 0;
  for (; b + 2 <= nb; b += 2) {
    __m512i wv[R];
    __m512 ws[R];
    _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) {
      const uint8_t* blk0 = args.w + (r + k) * args.w_row_bytes + b * bs;
      const uint8_t* blk1 = blk0 + bs;
      uint16_t h0, h1;
      memcpy(&h0, blk0, 2);
      memcpy(&h1, blk1, 2);
      ws[k] = PairBroadcast(_mm_cvtph_ps(_mm_cvtsi32_si128(int(h0) | int(h1) << 16)));
      if (kQ4) {
        const __m256i q01 = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk0 + 2))),
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk1 + 2)), 1);
        const __m512i v =
            _mm512_shuffle_i64x2(_mm512_castsi256_si512(q01), _mm512_castsi256_si512(q01), 0x50);
        wv[k] = _mm512_and_si512(_mm512_srlv_epi64(v, shift), mask);
      } else {
        wv[k] = _mm512_xor_si512(
            _mm512_inserti64x4(_mm512_castsi256_si512(
                                   _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk0 + 2))),
                               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk1 + 2)), 1),
            flip);
      }
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
      const int64_t row = i0 + t;
      const __m512i a = _mm512_loadu_si512(x.q + row * cols + b * 32);
      __m512i seed = _mm512_loadu_si512(x.nbias + (row * nb + b) * 8);
      if (!kQ4) seed = _mm512_slli_epi32(seed, 4);
      const __m512 ds = PairBroadcast(
          _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(x.d + row * nb + b))));
      _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) {
        const __m512 p = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(seed, wv[k], a));
        acc[t][k] = _mm512_fmadd_ps(p, _mm512_mul_ps(ws[k], ds), acc[t][k]);
      }
    }
  }
  float out[NT * R];
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) {
      out[t * R + k] = _mm512_reduce_add_ps(acc[t][k]);
    }
  }
  if (b < nb) {  // an odd last block: the 256-bit step
    __m256 tail[NT][R];
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
      _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) tail[t][k] = _mm256_setzero_ps();
    }
    const uint8_t* w = args.w + r * args.w_row_bytes;
    if (kQ4) {
      Q4Step<R, NT>(w, args.w_row_bytes, nb, cols, x, i0, b, tail);
    } else {
      Q8Step<R, NT>(w, args.w_row_bytes, nb, cols, x, i0, b, tail);
    }
    _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
      _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) out[t * R + k] += HSum8(tail[t][k]);
    }
  }
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) {
      float& y = args.y[(i0 + t) * args.y_stride + r + k];
      y = out[t * R + k] + (add ? y : args.bias ? args.bias[r + k] : 0.0f);
    }
  }
}

// Both planes of a tile back to back: the second reads the weights from L1.
template <bool kQ4, int R, int NT>
HWY_INLINE void Planes512(const MatMulArgs& a, int64_t r, int64_t i0) {
  Tile512<kQ4, R, NT>(a, a.xq, false, r, i0);
  if (a.xr.q != nullptr) Tile512<kQ4, R, NT>(a, a.xr, true, r, i0);
}

template <int R, int NT>
HWY_INLINE void Rows512(const MatMulArgs& a, int64_t r0, int64_t r1, int64_t i0) {
  int64_t r = r0;
  if (a.wtype == DType::kQ4_0) {
    for (; r + R <= r1; r += R) Planes512<true, R, NT>(a, r, i0);
    for (; r < r1; ++r) Planes512<true, 1, NT>(a, r, i0);
  } else {
    for (; r + R <= r1; r += R) Planes512<false, R, NT>(a, r, i0);
    for (; r < r1; ++r) Planes512<false, 1, NT>(a, r, i0);
  }
}

static void DecodeRows512(const MatMulArgs& a, int64_t r0, int64_t r1) {
  const int64_t nb = a.cols / 32;
  const bool q4 = a.wtype == DType::kQ4_0;
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* w = a.w + r * a.w_row_bytes;
    const float v = q4 ? Q4Row512(w, nb, a.xq, a.xr) : Q8Row512(w, nb, a.xq, a.xr);
    a.y[r] = v + (a.bias ? a.bias[r] : 0.0f);
  }
}
#endif  // UNICORN_INT8_512

// A tile over both activation planes (the second reads the weights from L1).
template <int R, int NT>
HWY_INLINE void QuantTile(const MatMulArgs& a, int64_t r, int64_t i0) {
  const uint8_t* w = a.w + r * a.w_row_bytes;
  const int64_t nb = a.cols / 32;
  auto tile = [&](const Q8Rows& x, float* o) {
    if (a.wtype == DType::kQ4_0) {
      QTile<true, R, NT>(w, a.w_row_bytes, nb, x, i0, o);
    } else {
      QTile<false, R, NT>(w, a.w_row_bytes, nb, x, i0, o);
    }
  };
  float out[NT * R], res[NT * R] = {};
  tile(a.xq, out);
  if (a.xr.q != nullptr) tile(a.xr, res);
  _Pragma("GCC unroll 8") for (int t = 0; t < NT; ++t) {
    _Pragma("GCC unroll 8") for (int k = 0; k < R; ++k) {
      a.y[(i0 + t) * a.y_stride + r + k] =
          out[t * R + k] + res[t * R + k] + (a.bias ? a.bias[r + k] : 0.0f);
    }
  }
}

// Rows [r0, r1) of one tile height NT of activation rows starting at i0.
template <int R, int NT>
HWY_INLINE void QuantRows(const MatMulArgs& a, int64_t r0, int64_t r1, int64_t i0) {
  int64_t r = r0;
  for (; r + R <= r1; r += R) QuantTile<R, NT>(a, r, i0);
  for (; r < r1; ++r) QuantTile<1, NT>(a, r, i0);
}

// y[i, r] for r in [r0, r1). Decode (n = 1): one weight row at a time (one
// sequential stream per thread: interleaving rows 2-4 at a time measured
// 2-3x slower from memory on Zen 4, the prefetchers lose track). Prefill:
// blocks of weight rows small enough to stay in L1 while every tile of 4
// activation rows passes over them, 4 x 4 tiles with AVX-512 VNNI (2 x 4 otherwise).
static void QuantMatMulRows(const MatMulArgs& a, int64_t r0, int64_t r1) {
#if defined(UNICORN_INT8_512)
  if (a.n == 1) return DecodeRows512(a, r0, r1);
#endif
  if (a.n == 1) return QuantRows<1, 1>(a, r0, r1, 0);
  const int64_t row_block = std::max<int64_t>(4, 16384 / int64_t(a.w_row_bytes) / 4 * 4);
  for (int64_t rb = r0; rb < r1; rb += row_block) {
    const int64_t re = std::min(r1, rb + row_block);
    int64_t i0 = 0;
#if defined(UNICORN_INT8_512)
    for (; i0 + 4 <= a.n; i0 += 4) Rows512<4, 4>(a, rb, re, i0);
    for (; i0 < a.n; ++i0) Rows512<4, 1>(a, rb, re, i0);
#else
    for (; i0 + 4 <= a.n; i0 += 4) QuantRows<2, 4>(a, rb, re, i0);
    for (; i0 < a.n; ++i0) QuantRows<4, 1>(a, rb, re, i0);
#endif
  }
}
