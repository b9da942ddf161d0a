// Merges the key-range splits of attn_decode.comp for token t, head h:
//   M = max_s m_s,  out = sum_s o_s e^(m_s - M) / sum_s l_s e^(m_s - M),
// over the token's active splits only (attn_keys.glsl).
//   o_part: [n, H, n_splits, D]   ml_part: [n, H, n_splits] vec2
//   out: [n, o_stride] F32 (head h at h * D)
// One invocation per split derives the split's weight; then the outputs
// sum the splits four at a time (their loads in flight together).
// With UNICORN_ATTN_QUANT the head is also written as int8 blocks
// (q8_activations.glsl) for the int8 o product: needs D % 32 == 0 and
// o_stride = H * D. The including shader declares o_part, ml_part, out_
// (and q4, meta), spans and WG (>= UNICORN_ATTN_MAX_SPLITS), and includes
// reduce.glsl and attn_keys.glsl; every invocation of the workgroup calls
// it (it has barriers).
#ifdef UNICORN_ATTN_QUANT
shared float vals[UNICORN_MAX_HEAD_DIM];
#endif
shared float split_w[UNICORN_ATTN_MAX_SPLITS];

void MergeHead(uint h, uint t) {
  const uint D = p.head_dim, tid = gl_LocalInvocationID.x;
  const uint base = (t * p.n_heads + h) * p.n_splits;
  const uvec2 range = KeyRange(t);
  const uint act = ActiveSplits(range.y - range.x);
  const bool mine = tid < act;
  const vec2 ml = mine ? ml_part[base + tid] : vec2(kNegBig, 0.0);
  const float mx = WorkgroupMax(ml.x);
  const float e = mine ? exp(ml.x - mx) : 0.0;
  const float l = WorkgroupSum(ml.y * e);
  if (mine) split_w[tid] = l > 0.0 ? e / l : 0.0;
  barrier();
  for (uint d = tid; d < D; d += WG) {
    float acc = 0.0;
    uint s = 0;
    for (; s + 4 <= act; s += 4) {
      const float a0 = o_part[(base + s) * D + d], a1 = o_part[(base + s + 1) * D + d];
      const float a2 = o_part[(base + s + 2) * D + d], a3 = o_part[(base + s + 3) * D + d];
      acc += a0 * split_w[s] + a1 * split_w[s + 1] + a2 * split_w[s + 2] + a3 * split_w[s + 3];
    }
    for (; s < act; ++s) acc += o_part[(base + s) * D + d] * split_w[s];
    out_[t * p.o_stride + h * D + d] = acc;
#ifdef UNICORN_ATTN_QUANT
    vals[d] = acc;
#endif
  }
  barrier();  // split_w (and vals) are free for the next head after the next barrier
#ifdef UNICORN_ATTN_QUANT
  // One invocation per block of 32: the head's blocks are whole (D % 32 == 0).
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
