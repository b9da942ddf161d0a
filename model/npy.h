// NumPy .npy files (format versions 1.0 to 3.0): reading arrays written by
// numpy.save, and writing float32 arrays as v1.0 files numpy.load reads.
// Used by the fidelity tests (reference logits from Hugging Face) and by
// `unicorn logits --out FILE.npy`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn {

struct NpyArray {
  std::string descr;           // NumPy dtype string as stored: "<f4", "<i8", "|u1", ...
  std::vector<int64_t> shape;  // C order, outermost first; {} for a scalar
  std::vector<uint8_t> data;   // raw little-endian elements, C order

  int64_t numel() const;
  // Elements converted to float / int64 (f2, f4, f8, i1..i8, u1..u8, b1).
  // Errors for other dtypes.
  StatusOr<std::vector<float>> ToFloat() const;
  StatusOr<std::vector<int64_t>> ToInt64() const;
};

// Parses .npy bytes; `what` names the source in errors. Rejects Fortran order,
// big-endian dtypes and truncated data.
StatusOr<NpyArray> ParseNpy(const uint8_t* bytes, size_t size, const std::string& what);
StatusOr<NpyArray> ReadNpy(const std::string& path);

// The bytes of a v1.0 .npy file holding float32 `data` ('<f4', C order).
std::string EncodeNpyF32(const float* data, const std::vector<int64_t>& shape);
Status WriteNpyF32(const std::string& path, const float* data, const std::vector<int64_t>& shape);

}  // namespace unicorn
