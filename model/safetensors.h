// safetensors: the Hugging Face weight format.
//
// Layout: u64 header length N (little-endian) | N bytes of JSON | data.
// The JSON maps each tensor name to {"dtype": "BF16", "shape": [..],
// "data_offsets": [begin, end]} (offsets relative to the data section), plus
// an optional "__metadata__" object of strings. Sharded checkpoints add
// model.safetensors.index.json: {"weight_map": {tensor name: shard file}}.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/dtype.h"

namespace unicorn {

struct SafetensorsTensor {
  std::string name;  // Hugging Face name, as in the file
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;  // PyTorch order
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

struct SafetensorsFile {
  uint64_t data_start = 0;  // 8 + N
  std::map<std::string, std::string> metadata;
  std::vector<SafetensorsTensor> tensors;  // in data order
};

// Largest header we accept (the reference implementation's limit).
inline constexpr uint64_t kSafetensorsMaxHeader = 100 << 20;

// Parses a safetensors image; data are bounds-checked, never read. Errors
// start with "[safetensors] <name>: " and cover: a header length that is
// absurd or past the end, bad JSON, dtypes other than F32/F16/BF16, shape x
// dtype size != byte length, offsets out of the file, overlapping tensors.
StatusOr<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes, const std::string& name);

// Parses model.safetensors.index.json into tensor name -> shard file name.
// Shard names must be plain file names (no '/'), so an index cannot point
// outside its folder.
StatusOr<std::map<std::string, std::string>> ParseSafetensorsIndex(std::string_view json,
                                                                   const std::string& name);

}  // namespace unicorn
