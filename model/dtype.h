// Element and block formats of weight tensors, laid out exactly as GGUF
// stores them (ggml's block layouts), so a file's bytes are used in place.
//   Q8_0: blocks of 32 weights: f16 scale d, then 32 x int8 q;  w = d * q
//   Q4_0: blocks of 32 weights: f16 scale d, then 16 bytes; byte j holds
//         weight j in its low nibble and weight j+16 in its high nibble;
//         w = d * (nibble - 8)
//   Q2_K..Q6_K: ggml's k-quants, super-blocks of 256 weights; the layouts
//         are described in model/kquant.h.
//   NF4:  a Unicorn extension (not a GGUF type): blocks of 32 weights laid
//         out as Q4_0 (f16 absmax d, 16 bytes of nibbles, weight j low,
//         j+16 high); w = d * kNf4Levels[nibble] (model/kquant.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace unicorn {

enum class DType : uint8_t {
  kF32,
  kF16,
  kBF16,
  kQ8_0,
  kQ4_0,
  kQ2_K,
  kQ3_K,
  kQ4_K,
  kQ5_K,
  kQ6_K,
  kNF4,
};

struct DTypeTraits {
  std::string_view name;  // "f32", "q4_0", ...
  int block_elems;        // weights per block (1 for plain types)
  int block_bytes;        // bytes per block
};

const DTypeTraits& Traits(DType t);

// Bytes of a row of `n` elements; n must be a multiple of the block size.
inline size_t RowBytes(DType t, int64_t n) {
  const DTypeTraits& tr = Traits(t);
  return static_cast<size_t>(n / tr.block_elems) * tr.block_bytes;
}

struct BlockQ8_0 {
  uint16_t d;  // f16 bits
  int8_t qs[32];
};
static_assert(sizeof(BlockQ8_0) == 34, "GGUF Q8_0 block is 34 bytes");

struct BlockQ4_0 {
  uint16_t d;  // f16 bits
  uint8_t qs[16];
};
static_assert(sizeof(BlockQ4_0) == 18, "GGUF Q4_0 block is 18 bytes");

}  // namespace unicorn
