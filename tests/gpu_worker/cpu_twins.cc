#include "tests/gpu_worker/cpu_twins.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "gpu_worker/shaders/push_constants.h"
#include "model/quant.h"

namespace unicorn::vk::testing {

TestMatrix MakeMatrix(DType dtype, int rows, int cols, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> src(size_t(rows) * cols);
  for (float& v : src) v = dist(rng);
  TestMatrix m;
  size_t rb = RowBytes(dtype, cols);
  m.bytes.resize(rb * rows);
  m.values.resize(src.size());
  for (int r = 0; r < rows; ++r) {
    QuantizeRow(dtype, &src[size_t(r) * cols], &m.bytes[rb * r], cols);
    DequantizeRow(dtype, &m.bytes[rb * r], &m.values[size_t(r) * cols], cols);
  }
  return m;
}

float GeluTanhRef(float x) {
  double d = x;
  return float(0.5 * d * (1.0 + std::tanh(0.7978845608028654 * (d + 0.044715 * d * d * d))));
}

std::vector<float> MatMulRef(const std::vector<float>& w, const std::vector<float>& x, int m, int k,
                             int n, uint32_t flags, const std::vector<float>& bias, float softcap,
                             const std::vector<float>& y_in) {
  auto dot = [&](int row, int t) {
    double s = 0;
    for (int i = 0; i < k; ++i) s += double(w[size_t(row) * k + i]) * x[size_t(t) * k + i];
    return s;
  };
  std::vector<float> y(size_t(n) * m);
  for (int t = 0; t < n; ++t) {
    for (int r = 0; r < m; ++r) {
      double v = dot(r, t);
      if (flags & UNICORN_MM_BIAS) v += bias[r];
      if (flags & UNICORN_MM_GELU) v = GeluTanhRef(float(v));
      if (flags & UNICORN_MM_GEGLU) v = GeluTanhRef(float(v)) * dot(m + r, t);
      if (flags & UNICORN_MM_SOFTCAP) v = softcap * std::tanh(v / softcap);
      if (flags & UNICORN_MM_ACC) v += y_in[size_t(t) * m + r];
      y[size_t(t) * m + r] = float(v);
    }
  }
  return y;
}

std::vector<float> RmsNormRef(const std::vector<float>& x, const std::vector<float>& w, int rows,
                              int n, float eps) {
  std::vector<float> y(size_t(rows) * n);
  for (int r = 0; r < rows; ++r) {
    const float* xr = &x[size_t(r) * n];
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(xr[i]) * xr[i];
    double scale = 1.0 / std::sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) y[size_t(r) * n + i] = float(xr[i] * scale * (1.0 + w[i]));
  }
  return y;
}

std::vector<float> LayerNormRef(const std::vector<float>& x, const std::vector<float>& w,
                                const std::vector<float>& b, int rows, int n, float eps) {
  std::vector<float> y(size_t(rows) * n);
  for (int r = 0; r < rows; ++r) {
    const float* xr = &x[size_t(r) * n];
    double mean = 0, var = 0;
    for (int i = 0; i < n; ++i) mean += xr[i];
    mean /= n;
    for (int i = 0; i < n; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    double rstd = 1.0 / std::sqrt(var / n + eps);
    for (int i = 0; i < n; ++i) y[size_t(r) * n + i] = float((xr[i] - mean) * rstd * w[i] + b[i]);
  }
  return y;
}

std::vector<float> RopeRef(const std::vector<float>& x, int pos,
                           const std::vector<float>& inv_freq) {
  const size_t half = x.size() / 2;
  std::vector<float> y(x.size());
  for (size_t i = 0; i < half; ++i) {
    float angle = float(pos) * inv_freq[i];  // F32, like Hugging Face
    double c = std::cos(double(angle)), s = std::sin(double(angle));
    y[i] = float(x[i] * c - x[i + half] * s);
    y[i + half] = float(x[i + half] * c + x[i] * s);
  }
  return y;
}

std::vector<float> AttentionRef(const std::vector<float>& q, const std::vector<float>& keys,
                                const std::vector<float>& values, const std::vector<int>& lo_of,
                                const std::vector<int>& end, int n_heads, int n_kv_heads,
                                int head_dim, int n_pos, float scale, float softcap) {
  const int n = int(lo_of.size()), D = head_dim, group = n_heads / n_kv_heads;
  std::vector<float> out(size_t(n) * n_heads * D, 0.0f);
  for (int t = 0; t < n; ++t) {
    const int lo = lo_of[t];
    for (int h = 0; h < n_heads; ++h) {
      const int g = h / group;
      const float* qv = &q[(size_t(t) * n_heads + h) * D];
      std::vector<double> s;
      double mx = -1e300;
      for (int j = lo; j < end[t]; ++j) {
        const float* kv = &keys[(size_t(g) * n_pos + j) * D];
        double d = 0;
        for (int i = 0; i < D; ++i) d += double(qv[i]) * scale * kv[i];
        if (softcap > 0) d = softcap * std::tanh(d / softcap);
        s.push_back(d);
        mx = std::max(mx, d);
      }
      double sum = 0;
      for (double& v : s) sum += (v = std::exp(v - mx));
      for (int i = 0; i < D; ++i) {
        double acc = 0;
        for (int j = lo; j < end[t]; ++j) {
          acc += s[j - lo] * values[(size_t(g) * n_pos + j) * D + i];
        }
        out[(size_t(t) * n_heads + h) * D + i] = s.empty() ? 0.0f : float(acc / sum);
      }
    }
  }
  return out;
}

std::vector<float> PatchifyRef(const std::vector<float>& image, int image_size, int patch,
                               int channels) {
  const int grid = image_size / patch, row = channels * patch * patch;
  std::vector<float> out(size_t(grid) * grid * row);
  for (int py = 0; py < grid; ++py)
    for (int px = 0; px < grid; ++px)
      for (int c = 0; c < channels; ++c)
        for (int ky = 0; ky < patch; ++ky)
          for (int kx = 0; kx < patch; ++kx) {
            out[size_t(py * grid + px) * row + (c * patch + ky) * patch + kx] =
                image[(size_t(c) * image_size + py * patch + ky) * image_size + px * patch + kx];
          }
  return out;
}

std::vector<float> AvgPoolRef(const std::vector<float>& x, int grid_in, int grid_out,
                              int channels) {
  const int k = grid_in / grid_out;
  std::vector<float> y(size_t(grid_out) * grid_out * channels);
  for (int oy = 0; oy < grid_out; ++oy)
    for (int ox = 0; ox < grid_out; ++ox)
      for (int c = 0; c < channels; ++c) {
        double s = 0;
        for (int dy = 0; dy < k; ++dy)
          for (int dx = 0; dx < k; ++dx)
            s += x[size_t((oy * k + dy) * grid_in + ox * k + dx) * channels + c];
        y[size_t(oy * grid_out + ox) * channels + c] = float(s / (k * k));
      }
  return y;
}

}  // namespace unicorn::vk::testing
