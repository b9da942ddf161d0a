// GGUF (versions 2 and 3, little-endian): metadata values and the parser.
//
// File layout (ggml/docs/gguf.md):
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   n_kv x      { string key | u32 value_type | value }
//   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32)
//   tensor data; each tensor at data_start + offset, offset % alignment == 0
// Strings are u64 length + bytes. An array value is u32 element type + u64
// count + elements (ggml rejects nested arrays; so do we). Version 1 (u32
// counts) is not supported; versions 2 and 3 share this layout (3 only added
// big-endian files, which we reject with a clear error).
//
// ne[] is innermost first (ggml order); GgufTensor::shape is reversed into the
// PyTorch order used everywhere in Unicorn: ne = [in, out] -> shape [out, in].
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"

namespace unicorn {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

std::string_view GgufTypeName(GgufType t);  // "u32", "string", ...

// The double nearest to the shortest decimal representation of `f`
// (std::to_chars); float(CanonicalF32(f)) == f for every finite f.
double CanonicalF32(float f);

// A metadata value: a scalar, or an array of one element type. Numbers are
// held in the widest C++ type of their kind; `type` keeps the stored width so
// that a value read from a file is written back byte for byte. A scalar is
// held as one element with is_array false. An f32 is held as the shortest
// decimal that rounds to it (CanonicalF32): the f32 1e-6f reads as the
// double 1e-6, the value its producer wrote, not 9.99999997e-07.
struct GgufValue {
  GgufType type = GgufType::kU32;  // element type, never kArray
  bool is_array = false;
  std::vector<uint64_t> u;     // kU8, kU16, kU32, kU64, kBool (0/1)
  std::vector<int64_t> i;      // kI8, kI16, kI32, kI64
  std::vector<double> f;       // kF32, kF64
  std::vector<std::string> s;  // kString

  size_t size() const;  // elements (1 for a scalar)

  static GgufValue U8(uint8_t v) { return Uint(GgufType::kU8, v); }
  static GgufValue U16(uint16_t v) { return Uint(GgufType::kU16, v); }
  static GgufValue U32(uint32_t v) { return Uint(GgufType::kU32, v); }
  static GgufValue U64(uint64_t v) { return Uint(GgufType::kU64, v); }
  static GgufValue Bool(bool v) { return Uint(GgufType::kBool, v ? 1 : 0); }
  static GgufValue I8(int8_t v) { return Int(GgufType::kI8, v); }
  static GgufValue I16(int16_t v) { return Int(GgufType::kI16, v); }
  static GgufValue I32(int32_t v) { return Int(GgufType::kI32, v); }
  static GgufValue I64(int64_t v) { return Int(GgufType::kI64, v); }
  static GgufValue F32(float v) { return Float(GgufType::kF32, v); }
  static GgufValue F64(double v) { return Float(GgufType::kF64, v); }
  static GgufValue Str(std::string v);

  static GgufValue Uint(GgufType t, uint64_t v);
  static GgufValue Int(GgufType t, int64_t v);
  static GgufValue Float(GgufType t, double v);
  static GgufValue UintArray(GgufType t, std::vector<uint64_t> v);
  static GgufValue IntArray(GgufType t, std::vector<int64_t> v);
  static GgufValue FloatArray(GgufType t, std::vector<double> v);
  static GgufValue StrArray(std::vector<std::string> v);

  friend bool operator==(const GgufValue&, const GgufValue&) = default;
};

// Ordered key/value metadata with typed getters. Getters fail (with the key
// named) when the key is present with the wrong type; the variants with a
// default return it when the key is absent. Integers of any width convert
// when the value fits; Float() also accepts integers.
class GgufMetadata {
 public:
  void Set(std::string key, GgufValue v);  // replaces an existing key, keeps its place
  const GgufValue* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  const std::vector<std::pair<std::string, GgufValue>>& entries() const { return entries_; }

  StatusOr<int64_t> Int(std::string_view key) const;
  StatusOr<int64_t> Int(std::string_view key, int64_t dflt) const;
  StatusOr<double> Float(std::string_view key) const;
  StatusOr<double> Float(std::string_view key, double dflt) const;
  StatusOr<std::string> String(std::string_view key) const;
  StatusOr<std::string> String(std::string_view key, std::string dflt) const;
  StatusOr<bool> Bool(std::string_view key, bool dflt) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::vector<std::pair<std::string, GgufValue>> entries_;
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> index_;
};

// A tensor as the file describes it. `data` points into the parsed bytes.
struct GgufTensor {
  std::string name;
  uint32_t ggml_type = 0;      // see model/ggml_types.h
  std::vector<int64_t> shape;  // PyTorch order (reversed ne)
  uint64_t offset = 0;         // from the start of the data section
  size_t nbytes = 0;
  const uint8_t* data = nullptr;
};

struct GgufFile {
  uint32_t version = 3;
  uint32_t alignment = 32;  // general.alignment
  uint64_t data_start = 0;  // file offset of the data section
  GgufMetadata metadata;
  std::vector<GgufTensor> tensors;
};

inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr int kGgufMaxDims = 4;      // GGML_MAX_DIMS
inline constexpr size_t kGgufMaxName = 63;  // GGML_MAX_NAME - 1 (NUL)

// Parses a whole GGUF image: header, metadata, tensor infos. Tensor data are
// bounds-checked but never read. Rejects, with an error that starts with
// "[gguf] <name>: ": wrong magic, unsupported version, truncation, counts
// that cannot fit in the file, unknown value or tensor types, bad dimensions,
// a non-power-of-two alignment, duplicate keys or tensor names, and tensor
// data that are misaligned, overlap or run past the end of the file.
StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> bytes, const std::string& name);

}  // namespace unicorn
