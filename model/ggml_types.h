// ggml tensor types as GGUF stores them (the `type` field of a tensor info:
// ggml.h's enum ggml_type, also gguf-py's GGMLQuantizationType). Every type
// llama.cpp knows is listed with its block geometry, so a file with a type we
// cannot run yet (IQ4_XS, ...) is still parsed and bounds-checked and gets a
// clear "unsupported tensor type" error, never a misread. Adding a runnable
// type means adding a DType (model/dtype.h) and its `dtype` entry here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "model/dtype.h"

namespace unicorn {

struct GgmlTypeInfo {
  uint32_t id;
  const char* name;            // "q4_k": ggml_type_name() spelling
  int block_elems;             // weights per block
  int block_bytes;             // bytes per block
  std::optional<DType> dtype;  // set when Unicorn can run this type
};

// The entry for a ggml type id, or nullptr for an id ggml does not define.
const GgmlTypeInfo* FindGgmlType(uint32_t id);

// "q4_k" for a known id, "type 77" otherwise (for error messages).
std::string GgmlTypeName(uint32_t id);

// The ggml id of a DType (F32 -> 0, F16 -> 1, Q4_0 -> 2, Q8_0 -> 8, BF16 -> 30).
uint32_t GgmlTypeOf(DType t);

inline constexpr uint32_t kGgmlQ4_K = 12;
inline constexpr uint32_t kGgmlIQ4_XS = 23;  // used in tests of unsupported types
// Unicorn's extension type id for NF4 (not part of GGUF; 0x4E46 = "NF").
inline constexpr uint32_t kGgmlUnicornNF4 = 0x4E46;

}  // namespace unicorn
