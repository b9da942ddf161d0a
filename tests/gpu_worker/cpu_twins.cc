#include "tests/gpu_worker/cpu_twins.h"

#include <cmath>

namespace unicorn::vk::testing {

std::vector<float> RmsNormRef(const std::vector<float>& x, const std::vector<float>& w, int rows,
                              int n, float eps) {
  std::vector<float> y(size_t(rows) * n);
  for (int r = 0; r < rows; ++r) {
    double ss = 0;
    for (int i = 0; i < n; ++i) ss += double(x[size_t(r) * n + i]) * x[size_t(r) * n + i];
    double scale = 1.0 / std::sqrt(ss / n + eps);
    for (int i = 0; i < n; ++i) {
      y[size_t(r) * n + i] = float(x[size_t(r) * n + i] * scale * (1.0 + w[i]));
    }
  }
  return y;
}

}  // namespace unicorn::vk::testing
