#include "shared_mem/tensor_desc.h"

#include <vector>

#include "absl/strings/str_join.h"

namespace unicorn::shm {

int DTypeBytes(TensorDType t) {
  switch (t) {
    case TensorDType::kF32:
    case TensorDType::kI32:
      return 4;
    case TensorDType::kF16:
    case TensorDType::kBF16:
      return 2;
    case TensorDType::kU8:
      return 1;
  }
  return 0;
}

const char* DTypeName(TensorDType t) {
  switch (t) {
    case TensorDType::kF32:
      return "f32";
    case TensorDType::kF16:
      return "f16";
    case TensorDType::kBF16:
      return "bf16";
    case TensorDType::kI32:
      return "i32";
    case TensorDType::kU8:
      return "u8";
  }
  return "unknown";
}

namespace {

constexpr const char* kCtx = "[shm] tensor";

Status CheckShape(TensorDType dtype, std::span<const int64_t> shape) {
  if (DTypeBytes(dtype) == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCtx, ": unknown dtype ", static_cast<int>(dtype)));
  }
  if (shape.empty() || shape.size() > static_cast<size_t>(kMaxRank)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCtx, ": rank ", shape.size(), " outside 1..", kMaxRank));
  }
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(kCtx, ": dimension ", i, " is ", shape[i], ", must be > 0"));
    }
  }
  return absl::OkStatus();
}

// Bytes spanned by the tensor: (sum of (dim-1)*stride + 1) * element bytes.
// Returns false on overflow.
bool Extent(TensorDType dtype, int rank, const int64_t* shape, const int64_t* strides,
            uint64_t* bytes) {
  unsigned __int128 last = 0;
  for (int i = 0; i < rank; ++i) {
    last += static_cast<unsigned __int128>(shape[i] - 1) * static_cast<uint64_t>(strides[i]);
  }
  unsigned __int128 total = (last + 1) * static_cast<unsigned>(DTypeBytes(dtype));
  if (total > UINT64_MAX) return false;
  *bytes = static_cast<uint64_t>(total);
  return true;
}

}  // namespace

StatusOr<TensorDesc> RowMajor(TensorDType dtype, std::span<const int64_t> shape) {
  UNICORN_RETURN_IF_ERROR(CheckShape(dtype, shape));
  TensorDesc t;
  t.dtype = dtype;
  t.rank = static_cast<uint8_t>(shape.size());
  t.layout = TensorLayout::kRowMajor;
  unsigned __int128 stride = 1;
  for (int i = t.rank - 1; i >= 0; --i) {
    t.shape[i] = shape[i];
    t.strides[i] = static_cast<int64_t>(stride);
    stride *= static_cast<uint64_t>(shape[i]);
    if (stride > INT64_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat(kCtx, ": shape [", absl::StrJoin(shape, ", "), "] has too many elements"));
    }
  }
  if (!Extent(dtype, t.rank, t.shape, t.strides, &t.byte_size)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCtx, ": shape [", absl::StrJoin(shape, ", "), "] overflows 64 bits"));
  }
  return t;
}

StatusOr<TensorDesc> RowMajor(TensorDType dtype, std::initializer_list<int64_t> shape) {
  return RowMajor(dtype, std::span<const int64_t>(shape.begin(), shape.size()));
}

StatusOr<TensorDesc> Strided(TensorDType dtype, std::span<const int64_t> shape,
                             std::span<const int64_t> strides) {
  UNICORN_RETURN_IF_ERROR(CheckShape(dtype, shape));
  if (strides.size() != shape.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCtx, ": ", strides.size(), " strides for rank ", shape.size()));
  }
  TensorDesc t;
  t.dtype = dtype;
  t.rank = static_cast<uint8_t>(shape.size());
  t.layout = TensorLayout::kStrided;
  for (int i = 0; i < t.rank; ++i) {
    if (strides[i] <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(kCtx, ": stride ", i, " is ", strides[i], ", must be > 0"));
    }
    t.shape[i] = shape[i];
    t.strides[i] = strides[i];
  }
  if (!Extent(dtype, t.rank, t.shape, t.strides, &t.byte_size)) {
    return absl::InvalidArgumentError(absl::StrCat(kCtx, ": strided extent overflows 64 bits"));
  }
  return t;
}

Status ValidateTensor(const TensorDesc& t, uint64_t capacity) {
  if (t.layout != TensorLayout::kRowMajor && t.layout != TensorLayout::kStrided) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCtx, ": unknown layout ", static_cast<int>(t.layout)));
  }
  if (t.rank > kMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat(kCtx, ": rank ", t.rank, " outside 1..", kMaxRank));
  }
  StatusOr<TensorDesc> expect = t.layout == TensorLayout::kRowMajor
                                    ? RowMajor(t.dtype, std::span<const int64_t>(t.shape, t.rank))
                                    : Strided(t.dtype, std::span<const int64_t>(t.shape, t.rank),
                                              std::span<const int64_t>(t.strides, t.rank));
  UNICORN_RETURN_IF_ERROR(expect.status());
  for (int i = 0; i < t.rank; ++i) {
    if (expect->strides[i] != t.strides[i]) {
      return absl::InvalidArgumentError(
          absl::StrCat(kCtx, ": ", TensorString(t), ": strides are not row-major"));
    }
  }
  if (expect->byte_size != t.byte_size) {
    return absl::InvalidArgumentError(absl::StrCat(
        kCtx, ": byte size ", t.byte_size, " does not match the shape (", expect->byte_size, ")"));
  }
  if (t.byte_size > capacity) {
    return absl::OutOfRangeError(absl::StrCat(
        kCtx, ": ", TensorString(t), " exceeds the slot capacity of ", capacity, " bytes"));
  }
  return absl::OkStatus();
}

int64_t NumElements(const TensorDesc& t) {
  int64_t n = t.rank == 0 ? 0 : 1;
  for (int i = 0; i < t.rank && i < kMaxRank; ++i) n *= t.shape[i];
  return n;
}

std::string TensorString(const TensorDesc& t) {
  int rank = t.rank <= kMaxRank ? t.rank : kMaxRank;
  std::string s = absl::StrCat(DTypeName(t.dtype), "[",
                               absl::StrJoin(std::span<const int64_t>(t.shape, rank), ", "), "]");
  if (t.layout == TensorLayout::kStrided) {
    absl::StrAppend(&s, " strides [",
                    absl::StrJoin(std::span<const int64_t>(t.strides, rank), ", "), "]");
  }
  absl::StrAppend(&s, " (", t.byte_size, " bytes)");
  return s;
}

}  // namespace unicorn::shm
