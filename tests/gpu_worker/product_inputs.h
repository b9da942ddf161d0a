// The inputs of a product kernel test, on the host (for the twin) and on the
// device: random weights W [rows, k] in a GGUF type (rows = 2m with GEGLU),
// x [n, k], bias [m] and y's prior values [n, m] (for UNICORN_MM_ACC).
#pragma once

#include <cstdint>
#include <vector>

#include "tests/gpu_worker/cpu_twins.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk::testing {

struct ProductInputs {
  TestMatrix w;
  std::vector<float> x, bias, y0;
  Buffer bw, bx, bb, by;
  Weight weight;  // W on the device
};

// W from seed w_seed (values scaled by 0.5); x, bias and y0 from seed,
// seed + 1 and seed + 2, uniform in [-1, 1].
inline ProductInputs MakeProductInputs(Device& d, DType t, int m, int k, int n, bool geglu,
                                       uint32_t w_seed, uint32_t seed) {
  const int rows = geglu ? 2 * m : m;
  ProductInputs p;
  p.w = MakeMatrix(t, rows, k, w_seed, 0.5f);
  p.x = Random(size_t(n) * size_t(k), seed, -1, 1);
  p.bias = Random(size_t(m), seed + 1, -1, 1);
  p.y0 = Random(size_t(n) * size_t(m), seed + 2, -1, 1);
  p.bw = Upload(d, p.w.bytes);
  p.bx = Upload(d, p.x);
  p.bb = Upload(d, p.bias);
  p.by = Upload(d, p.y0);
  p.weight = {p.bw.All(), t, uint32_t(rows), uint32_t(k)};
  return p;
}

}  // namespace unicorn::vk::testing
