// Which keys a query token sees, and how decode attention divides them
// among its splits. The including shader declares spans[] (ivec2 per token)
// and the push constants p (AttnPush).

const float kNegBig = -1.0e30;  // "minus infinity" that keeps exp() and max() finite

// Keys [lo, end) that token t sees (an empty or inverted span sees none).
uvec2 KeyRange(uint t) {
  const int lo = max(spans[t].x, 0);
  return uvec2(uint(lo), uint(max(spans[t].y + 1, lo)));
}

// Keys per split for a token that sees len keys: the range over p.n_splits
// splits, but at least UNICORN_ATTN_MIN_CHUNK, so that a short context
// uses only the first ActiveSplits(len) splits (the rest do nothing, and
// the merge reads only the active ones).
uint SplitChunk(uint len) {
  return max((len + p.n_splits - 1) / p.n_splits, uint(UNICORN_ATTN_MIN_CHUNK));
}
uint ActiveSplits(uint len) {
  const uint chunk = SplitChunk(len);
  return max(1u, (len + chunk - 1) / chunk);
}
