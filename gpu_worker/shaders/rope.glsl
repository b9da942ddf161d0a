// Rotary position embedding, NeoX / rotate_half style (as Hugging Face
// Gemma): for i < D/2, with angle a = pos * inv_freq[i],
//   out[i] = x[i] cos a - x[i + D/2] sin a,  out[i + D/2] = x[i + D/2] cos a + x[i] sin a.
// inv_freq comes from the host (1 / theta^(2i/D) / linear_factor in F32, as
// Hugging Face computes it); the angle is rounded to F32 like there, then
// reduced to [-pi, pi] exactly enough (Cody-Waite) for the GPU's sin/cos.

vec2 RopeCosSin(float angle) {
  const float k = round(angle * 0.15915494309189535);  // 1 / (2 pi)
  float a = angle - k * 6.28125;                       // exact: few bits in the constant
  a -= k * 1.9353071795864769e-3;                      // 2 pi - 6.28125
  return vec2(cos(a), sin(a));
}

// The pair (x[i], x[i + D/2]) rotated at `position` by frequency `inv_freq`.
vec2 RotatePair(float x0, float x1, int position, float inv_freq) {
  const vec2 cs = RopeCosSin(float(position) * inv_freq);
  return vec2(x0 * cs.x - x1 * cs.y, x1 * cs.x + x0 * cs.y);
}
