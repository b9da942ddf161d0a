// Formatting of tensor shapes for messages and `unicorn inspect`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace unicorn {

// "[2560, 262144]" (PyTorch order, as stored in TensorInfo::shape).
inline std::string ShapeString(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t k = 0; k < shape.size(); ++k) {
    if (k) out += ", ";
    out += std::to_string(shape[k]);
  }
  return out + "]";
}

}  // namespace unicorn
