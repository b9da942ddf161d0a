// The int8 output of the int8 product kernels built with
// UNICORN_MM_QUANT_OUT: y is also written as int8 blocks into xq_out, as
// quantize_q8.comp would write it, for the next int8 product (m % 32 == 0).
// The workgroups that write a block of 32 outputs count themselves on
// counters[block] (zero before, zero after); the last to finish quantizes
// the block for all n tokens.
// The including shader declares WG, p (MatMulPush) and includes
// q8_activations.glsl.

layout(std430, binding = 2) coherent buffer Y { float y[]; };  // read back by other workgroups
layout(std430, binding = 4) writeonly buffer QOut { uvec4 qo4[]; };
layout(std430, binding = 4) writeonly buffer QOutMeta { uvec2 qo_meta[]; };
layout(std430, binding = 5) coherent buffer Counters { uint counters[]; };
shared bool last_of_block;

// Called by every invocation after this workgroup stored its outputs: rows
// [row0, row0 + rows) of one column group of col_groups. rows divides 32 or
// is a multiple of it, and row0 is a multiple of rows.
void QuantizeFinishedBlocks(uint row0, uint rows, uint col_groups) {
  const uint tid = gl_LocalInvocationID.x;
  memoryBarrierBuffer();  // publish this workgroup's outputs
  barrier();
  const uint writers = col_groups * max(1u, 32 / rows);  // workgroups per block
  const uint end = (min(row0 + rows, p.m) + 31) / 32;  // past the last block written
  for (uint blk = row0 / 32; blk < end; ++blk) {
    if (tid == 0) last_of_block = atomicAdd(counters[blk], 1u) + 1 == writers;
    barrier();
    const bool finish = last_of_block;
    barrier();
    if (!finish) continue;
    memoryBarrierBuffer();
    if (tid == 0) counters[blk] = 0;
    for (uint t = tid; t < p.n; t += WG) {
      const uint yb = t * p.y_stride + blk * 32;
      vec4 v[8];
      [[unroll]] for (uint i = 0; i < 8; ++i) {
        v[i] = vec4(y[yb + 4 * i], y[yb + 4 * i + 1], y[yb + 4 * i + 2], y[yb + 4 * i + 3]);
      }
      const Q8Block e = Q8EncodeBlock(v);
      const uint q = Q8QuadIndex(t, blk, p.m);
      qo4[q] = e.lo;
      qo4[q + 1] = e.hi;
      qo_meta[Q8MetaIndex(t, blk, p.n, p.m)] = e.meta;
    }
  }
}
