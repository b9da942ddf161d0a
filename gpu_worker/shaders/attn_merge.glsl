// Merges the key-range splits of attn_decode.comp for token t, head h:
//   M = max_s m_s,  out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M).
//   o_part: [n, H, n_splits, D]   ml_part: [n, H, n_splits] vec2
//   out: [n, o_stride] F32 (head h at h * D)
// With UNICORN_ATTN_QUANT the head is also written as int8 blocks
// (q8_activations.glsl) for the int8 o product: needs D % 32 == 0 and
// o_stride = H * D. The including shader declares o_part, ml_part, out_
// (and q4, meta) and WG; every invocation of the workgroup calls it (it has
// barriers).
#ifdef UNICORN_ATTN_QUANT
shared float vals[UNICORN_MAX_HEAD_DIM];
#endif

void MergeHead(uint h, uint t) {
  const uint D = p.head_dim, tid = gl_LocalInvocationID.x;
  const uint base = (t * p.n_heads + h) * p.n_splits;
  float mx = -1.0e30;
  for (uint s = 0; s < p.n_splits; ++s) mx = max(mx, ml_part[base + s].x);
  float l = 0.0;
  for (uint s = 0; s < p.n_splits; ++s) l += ml_part[base + s].y * exp(ml_part[base + s].x - mx);
  const float inv = l > 0.0 ? 1.0 / l : 0.0;
  for (uint d = tid; d < D; d += WG) {
    float acc = 0.0;
    for (uint s = 0; s < p.n_splits; ++s) {
      acc += o_part[(base + s) * D + d] * exp(ml_part[base + s].x - mx);
    }
    out_[t * p.o_stride + h * D + d] = acc * inv;
#ifdef UNICORN_ATTN_QUANT
    vals[d] = acc * inv;
#endif
  }
#ifdef UNICORN_ATTN_QUANT
  // One invocation per block of 32: the head's blocks are whole (D % 32 == 0).
  barrier();
  const uint k = p.n_heads * D, nb = D / 32;
  for (uint b = tid; b < nb; b += WG) {
    vec4 v[8];
    [[unroll]] for (uint i = 0; i < 8; ++i) {
      const uint e = b * 32 + i * 4;
      v[i] = vec4(vals[e], vals[e + 1], vals[e + 2], vals[e + 3]);
    }
    const Q8Block e = Q8EncodeBlock(v);
    const uint blk = h * nb + b;  // the block's index in the token's k
    const uint q = Q8QuadIndex(t, blk, k);
    q4[q] = e.lo;
    q4[q + 1] = e.hi;
    meta[Q8MetaIndex(t, blk, p.n_tokens, k)] = e.meta;
  }
  barrier();  // vals is free for the next head
#endif
}
