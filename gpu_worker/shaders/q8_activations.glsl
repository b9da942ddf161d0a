// Int8 activations, as quantize_q8.comp and the norm_q8 variant of
// norm.comp write them and matvec_int8.comp reads them. Each block of 32
// floats becomes d = max|x| / 127 and q = round_half_even(x / d) (all zero
// for an all-zero block), so x ~= d * q: the CPU backend's QuantizeRowQ8.
// Layout for n tokens of k (k % 32 == 0):
//   qs: [n, k / 4] uint, 4 int8 each in element order;
//   from word n * k / 4, the blocks' meta [n, k / 32] uvec2:
//   (bits of d, Q8_FLOAT_BIAS - 8 * sum(q)), the second what a Q4_0 product
//   adds to its integer sum (matvec_int8.comp says why).

// The bits of the float 12582912 = 1.5 * 2^23: Q8_FLOAT_BIAS + s, read as a
// float, is Q8_FLOAT_BIAS_F + s exactly while |s| < 2^22.
const int Q8_FLOAT_BIAS = 0x4B400000;
const float Q8_FLOAT_BIAS_F = 12582912.0;

// 1 / d for a block whose largest magnitude is amax (0 for an all-zero block).
float Q8InverseScale(float amax) {
  const float d = amax / 127.0;
  return d != 0.0 ? 1.0 / d : 0.0;
}

// Four values to int8, packed in element order, and the sum of the four.
uint Q8Pack(vec4 v, float id, out int sum) {
  const ivec4 q = clamp(ivec4(roundEven(v * id)), -127, 127);
  sum = q.x + q.y + q.z + q.w;
  const uvec4 u = uvec4(q) & 0xFFu;
  return u.x | (u.y << 8) | (u.z << 16) | (u.w << 24);
}

// A block's meta from its largest magnitude and the sum of its q.
uvec2 Q8Meta(float amax, int sum) {
  return uvec2(floatBitsToUint(amax / 127.0), uint(Q8_FLOAT_BIAS - 8 * sum));
}

// Where block b of token t lives, for n tokens of k: its 32 int8 as the two
// uvec4 from Q8QuadIndex, its meta at uvec2 index Q8MetaIndex.
uint Q8QuadIndex(uint t, uint b, uint k) { return (t * k / 4 + b * 8) / 4; }
uint Q8MetaIndex(uint t, uint b, uint n, uint k) { return (n * k / 4) / 2 + t * (k / 32) + b; }

// One block of 32 values (v: 8 vec4 in element order), encoded.
struct Q8Block {
  uvec4 lo, hi;  // the int8 of values 0..15 and 16..31
  uvec2 meta;
};
Q8Block Q8EncodeBlock(vec4 v[8]) {
  float amax = 0.0;
  [[unroll]] for (uint i = 0; i < 8; ++i) {
    const vec4 a = abs(v[i]);
    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
  }
  const float id = Q8InverseScale(amax);
  int sum = 0;
  uint w[8];
  [[unroll]] for (uint i = 0; i < 8; ++i) {
    int s4;
    w[i] = Q8Pack(v[i], id, s4);
    sum += s4;
  }
  return Q8Block(uvec4(w[0], w[1], w[2], w[3]), uvec4(w[4], w[5], w[6], w[7]), Q8Meta(amax, sum));
}
