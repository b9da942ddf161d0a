// The tensors a Gemma3Config needs, with their shapes (model/names.h). One
// list serves validation after opening a model, the random-weight GGUF tool
// and tests, so they cannot drift apart.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/gemma3_config.h"

namespace unicorn {

enum class TensorRole : uint8_t {
  kEmbedding,  // token_embd
  kMatrix,     // a projection [out, in]
  kNorm,       // a Gemma RMSNorm weight (x * (1 + w))
  kVector,     // a bias or LayerNorm weight/bias (vision)
  kOther,      // vision patch/position embeddings
};

struct ExpectedTensor {
  std::string name;
  std::vector<int64_t> shape;  // PyTorch order
  TensorRole role;
};

// Text tensors in llama.cpp's file order (token_embd, blk.0..n-1,
// output_norm; output.weight when the embeddings are not tied).
std::vector<ExpectedTensor> ExpectedTextTensors(const Gemma3Config& c);
// Vision tower and projector tensors (empty unless c.has_vision).
std::vector<ExpectedTensor> ExpectedVisionTensors(const Gemma3Config& c);

}  // namespace unicorn
