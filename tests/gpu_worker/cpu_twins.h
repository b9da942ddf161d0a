// Plain-loop CPU twins of the Vulkan kernels: the definitions the kernel
// tests hold the shaders to. Clarity over speed; F64 accumulation, so the
// twin is the more exact side. Layouts match the kernels' shape comments.
#pragma once

#include <cstdint>
#include <vector>

#include "model/dtype.h"

namespace unicorn::vk::testing {

// A random [rows, cols] matrix stored as `dtype` (GGUF bytes) and its exact
// dequantized values.
struct TestMatrix {
  std::vector<uint8_t> bytes;  // rows * RowBytes(dtype, cols)
  std::vector<float> values;   // [rows, cols]
};
TestMatrix MakeMatrix(DType dtype, int rows, int cols, uint32_t seed, float scale = 1.0f);

float GeluTanhRef(float x);

// y[t, r] = sum_i w[r, i] x[t, i], then the UNICORN_MM_* epilogue.
//   w: [m (2m with GEGLU), k]   x: [n, k]   bias: [m]   y_in: [n, m] (for ACC)
std::vector<float> MatMulRef(const std::vector<float>& w, const std::vector<float>& x, int m, int k,
                             int n, uint32_t flags, const std::vector<float>& bias = {},
                             float softcap = 0, const std::vector<float>& y_in = {});

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * (1 + w)   x, y: [rows, n]
std::vector<float> RmsNormRef(const std::vector<float>& x, const std::vector<float>& w, int rows,
                              int n, float eps);
// y = (x - mean) / sqrt(var + eps) * w + b
std::vector<float> LayerNormRef(const std::vector<float>& x, const std::vector<float>& w,
                                const std::vector<float>& b, int rows, int n, float eps);

// NeoX RoPE of one head vector x [D] at `pos` with the given inverse
// frequencies [D/2] (angle rounded to F32, as Hugging Face computes it).
std::vector<float> RopeRef(const std::vector<float>& x, int pos,
                           const std::vector<float>& inv_freq);

// Attention of n tokens over keys stored by position:
//   q: [n, H, D]   keys/values: [Hkv, n_pos, D] indexed by key position
//   token t sees keys [lo[t], end[t])   out: [n, H, D]
std::vector<float> AttentionRef(const std::vector<float>& q, const std::vector<float>& keys,
                                const std::vector<float>& values, const std::vector<int>& lo,
                                const std::vector<int>& end, int n_heads, int n_kv_heads,
                                int head_dim, int n_pos, float scale, float softcap);

// image [C, S, S] -> patches [(S/P)^2, C*P*P]
std::vector<float> PatchifyRef(const std::vector<float>& image, int image_size, int patch,
                               int channels);
// [grid_in^2, C] -> [grid_out^2, C] block means
std::vector<float> AvgPoolRef(const std::vector<float>& x, int grid_in, int grid_out, int channels);

}  // namespace unicorn::vk::testing
