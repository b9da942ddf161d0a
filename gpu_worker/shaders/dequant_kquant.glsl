// K-quant chunk loaders (model/kquant.h has the block layouts in full), for
// dequant.glsl's LoadChunk. A k-quant chunk c is 8 consecutive weights
// 8c .. 8c+7 of the row (XLo = 8c, XHi = 8c + 4): super-block b = c / 32,
// in-block chunk j = c % 32, weights 8j .. 8j+7, which always lie in one
// sub-block (16 or 32 weights) and, for every type, in 8 consecutive bytes of
// the packed codes at an even offset. Q4_K / Q5_K read them as one uvec2 (their
// blocks stay 16-byte aligned); the others as two little-endian u32 from the
// uint16 view of binding 0 (every block size is even, so blocks stay 2-byte
// aligned). Rows are k / 256 whole blocks.

// Byte o of the weight buffer.
uint WByte(uint o) { return (uint(w_u16[o >> 1]) >> ((o & 1u) * 8u)) & 0xFFu; }
// 4 bytes at the even byte offset o, little-endian.
uint WU32(uint o) { return uint(w_u16[o >> 1]) | (uint(w_u16[(o >> 1) + 1u]) << 16); }
float WHalf(uint o) { return unpackHalf2x16(uint(w_u16[o >> 1])).x; }

// The four bytes of v, each shifted right by s and masked.
vec4 Fields(uint v, uint s, uint mask) {
  return vec4((uvec4(v) >> (uvec4(0u, 8u, 16u, 24u) + s)) & mask);
}
uvec4 UFields(uint v, uint s, uint mask) { return (uvec4(v) >> (uvec4(0u, 8u, 16u, 24u) + s)) & mask; }

// Q4_K and Q5_K blocks (144 = 9 x 16 and 176 = 11 x 16 bytes) stay 16-byte
// aligned, so a chunk takes two wide loads: the block's first 16 bytes
// (f16 d, f16 dmin, scales[12]) as one uvec4, and its 8 code bytes as a uvec2.

// Byte i (0..11) of the packed scales in h.y, h.z, h.w.
uint ScaleByte(uvec4 h, uint i) { return (h[1u + (i >> 2)] >> ((i & 3u) * 8u)) & 0xFFu; }

// Q4_K / Q5_K: 6-bit scale and min of sub-block s (0..7), scale bytes in h.
void ScaleMin6(uvec4 h, uint s, out float sc, out float mn) {
  if (s < 4u) {
    sc = float(ScaleByte(h, s) & 63u);
    mn = float(ScaleByte(h, s + 4u) & 63u);
  } else {
    const uint b = ScaleByte(h, s + 4u);
    sc = float((b & 15u) | ((ScaleByte(h, s - 4u) >> 6) << 4));
    mn = float((b >> 4) | ((ScaleByte(h, s) >> 6) << 4));
  }
}

// Q4_K (144 B): f16 d, f16 dmin, scales[12], qs[128].
void LoadQ4K(uint r, uint k, uint c, out vec4 lo, out vec4 hi) {
  const uint blk = r * (k >> 8) + (c >> 5);
  const uint j = c & 31u, s = j >> 2;
  const uvec4 h = w_u4[blk * 9u];
  float sc, mn;
  ScaleMin6(h, s, sc, mn);
  const vec2 dm = unpackHalf2x16(h.x);
  const float a = dm.x * sc, m = dm.y * mn;
  const uvec2 q = w_u2[blk * 18u + 2u + (s >> 1) * 4u + (j & 3u)];
  const uint sh = (s & 1u) * 4u;
  lo = a * Fields(q.x, sh, 15u) - m;
  hi = a * Fields(q.y, sh, 15u) - m;
}

// Q5_K (176 B): f16 d, f16 dmin, scales[12], qh[32], qs[128]; bit s of qh[l]
// is the fifth bit of the weight at position l of sub-block s.
void LoadQ5K(uint r, uint k, uint c, out vec4 lo, out vec4 hi) {
  const uint blk = r * (k >> 8) + (c >> 5);
  const uint j = c & 31u, s = j >> 2;
  const uvec4 h = w_u4[blk * 11u];
  float sc, mn;
  ScaleMin6(h, s, sc, mn);
  const vec2 dm = unpackHalf2x16(h.x);
  const float a = dm.x * sc, m = dm.y * mn;
  const uvec2 q = w_u2[blk * 22u + 6u + (s >> 1) * 4u + (j & 3u)];
  const uvec2 qh = w_u2[blk * 22u + 2u + (j & 3u)];
  const uint sh = (s & 1u) * 4u;
  lo = a * vec4(UFields(q.x, sh, 15u) | (UFields(qh.x, s, 1u) << 4)) - m;
  hi = a * vec4(UFields(q.y, sh, 15u) | (UFields(qh.y, s, 1u) << 4)) - m;
}

// Q6_K (210 B): ql[128], qh[64], int8 scales[16], f16 d. Weights 8j.. lie in
// half h = j / 16, quarter q = (j / 4) % 4 (see kquant.h), sub-block j / 2.
void LoadQ6K(uint r, uint k, uint c, out vec4 lo, out vec4 hi) {
  const uint bb = (r * (k >> 8) + (c >> 5)) * 210u;
  const uint j = c & 31u, h = j >> 4, q = (j >> 2) & 3u, l0 = (j & 3u) * 8u;
  const uint lo_off = bb + 64u * h + 32u * (q & 1u) + l0, ls = (q >> 1) * 4u;
  const uint hi_off = bb + 128u + 32u * h + l0, hs = 2u * q;
  const int sc = (int(WByte(bb + 192u + (j >> 1))) << 24) >> 24;
  const float a = WHalf(bb + 208u) * float(sc);
  lo = a * (vec4(UFields(WU32(lo_off), ls, 15u) | (UFields(WU32(hi_off), hs, 3u) << 4)) - 32.0);
  hi = a * (vec4(UFields(WU32(lo_off + 4u), ls, 15u) | (UFields(WU32(hi_off + 4u), hs, 3u) << 4)) -
            32.0);
}

// Q2_K (84 B): scales[16] (low nibble scale, high nibble min), qs[64], f16 d,
// f16 dmin. 2-bit field jj = (j / 4) % 4 of qs[32h + l], sub-block j / 2.
void LoadQ2K(uint r, uint k, uint c, out vec4 lo, out vec4 hi) {
  const uint bb = (r * (k >> 8) + (c >> 5)) * 84u;
  const uint j = c & 31u, h = j >> 4, jj = (j >> 2) & 3u, l0 = (j & 3u) * 8u;
  const uint sb = WByte(bb + (j >> 1));
  const float a = WHalf(bb + 80u) * float(sb & 15u), m = WHalf(bb + 82u) * float(sb >> 4);
  const uint qo = bb + 16u + 32u * h + l0;
  lo = a * Fields(WU32(qo), 2u * jj, 3u) - m;
  hi = a * Fields(WU32(qo + 4u), 2u * jj, 3u) - m;
}

// Q3_K (110 B): hmask[32], qs[64], scales[12] (6-bit, stored + 32), f16 d.
// Low 2 bits as Q2_K; bit 4h + jj of hmask[l] is the third.
void LoadQ3K(uint r, uint k, uint c, out vec4 lo, out vec4 hi) {
  const uint bb = (r * (k >> 8) + (c >> 5)) * 110u;
  const uint j = c & 31u, h = j >> 4, jj = (j >> 2) & 3u, l0 = (j & 3u) * 8u;
  const uint s = j >> 1;
  const uint low = s < 8u ? WByte(bb + 96u + s) & 15u : WByte(bb + 88u + s) >> 4;
  const uint high = (WByte(bb + 104u + (s & 3u)) >> (2u * (s >> 2))) & 3u;
  const float a = WHalf(bb + 108u) * float(int(low | (high << 4)) - 32);
  const uint qo = bb + 32u + 32u * h + l0, ho = bb + l0, sh = 2u * jj, hb = 4u * h + jj;
  lo = a * (vec4(UFields(WU32(qo), sh, 3u) | (UFields(WU32(ho), hb, 1u) << 2)) - 4.0);
  hi = a * (vec4(UFields(WU32(qo + 4u), sh, 3u) | (UFields(WU32(ho + 4u), hb, 1u) << 2)) - 4.0);
}
