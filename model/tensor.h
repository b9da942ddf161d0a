// Tensor metadata, kept apart from bytes. A TensorInfo points into a mapped
// model file (or into a small owned buffer for converted tensors); nothing is
// copied when a model is opened.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/dtype.h"

namespace unicorn {

struct TensorInfo {
  std::string name;  // internal name, see model/names.h
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order): Linear is [out, in]
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
  std::string file;  // where the bytes live (for errors and `unicorn inspect`)

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

}  // namespace unicorn
