// Building and checking the TensorDesc that travels in a slot header.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>

#include "common/status.h"
#include "shared_mem/layout.h"

namespace unicorn::shm {

// A contiguous row-major tensor: strides and byte size are derived from the
// shape. Errors: rank 0 or > 4, a dimension <= 0, an unknown dtype, or a byte
// size that overflows 64 bits.
StatusOr<TensorDesc> RowMajor(TensorDType dtype, std::span<const int64_t> shape);
StatusOr<TensorDesc> RowMajor(TensorDType dtype, std::initializer_list<int64_t> shape);

// A strided tensor (e.g. rows padded to a pitch): `strides` are in elements,
// one per dimension; the byte size is the extent of the last element + 1.
StatusOr<TensorDesc> Strided(TensorDType dtype, std::span<const int64_t> shape,
                             std::span<const int64_t> strides);

// Checks a descriptor read from a header: known dtype and layout, rank 1..4,
// positive dimensions, consistent strides and byte size, byte size <= capacity.
Status ValidateTensor(const TensorDesc& t, uint64_t capacity);

// Number of elements (product of the shape).
int64_t NumElements(const TensorDesc& t);

// "f32[4, 2560] (40960 bytes)" or "bf16[2, 8] strides [16, 1] (62 bytes)".
std::string TensorString(const TensorDesc& t);

}  // namespace unicorn::shm
