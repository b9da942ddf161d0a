// Helpers for tests that need weights: tensors with owned bytes, filled with
// seeded random values and converted to any weight format.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "model/quant.h"
#include "model/tensor.h"

namespace unicorn::testing {

// Owns the bytes of the tensors it makes; TensorInfo pointers stay valid.
class TensorStore {
 public:
  // A tensor of `shape` holding `values` (row-major f32) converted to `dtype`.
  const TensorInfo& Add(const std::string& name, DType dtype, std::vector<int64_t> shape,
                        const std::vector<float>& values) {
    TensorInfo t;
    t.name = name;
    t.dtype = dtype;
    t.shape = std::move(shape);
    const int64_t rows = t.shape.size() == 1 ? 1 : t.shape[0];
    const int64_t cols = t.numel() / rows;
    bytes_.emplace_back(RowBytes(dtype, cols) * size_t(rows));
    std::vector<uint8_t>& b = bytes_.back();
    for (int64_t r = 0; r < rows; ++r) {
      QuantizeRow(dtype, values.data() + r * cols, b.data() + size_t(r) * RowBytes(dtype, cols),
                  cols);
    }
    t.data = b.data();
    t.nbytes = b.size();
    t.file = "test";
    return tensors_[name] = t;
  }
  const TensorInfo* Find(const std::string& name) const {
    auto it = tensors_.find(name);
    return it == tensors_.end() ? nullptr : &it->second;
  }
  // The values as the backend sees them (after conversion), row-major f32.
  static std::vector<float> Dequantized(const TensorInfo& t) {
    const int64_t rows = t.shape.size() == 1 ? 1 : t.shape[0];
    const int64_t cols = t.numel() / rows;
    std::vector<float> out(static_cast<size_t>(t.numel()));
    for (int64_t r = 0; r < rows; ++r) {
      DequantizeRow(t.dtype, t.data + size_t(r) * RowBytes(t.dtype, cols), out.data() + r * cols,
                    cols);
    }
    return out;
  }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }

 private:
  std::deque<std::vector<uint8_t>> bytes_;
  std::map<std::string, TensorInfo> tensors_;
};

inline std::vector<float> RandomVector(size_t n, float scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

}  // namespace unicorn::testing
