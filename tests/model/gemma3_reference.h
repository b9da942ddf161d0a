// A naive Gemma 3 forward pass for tests: whole sequence at once, explicit
// attention masks, double accumulation, no cache, no backend. Written
// directly from transformers' modeling_gemma3.py and masking_utils.py, and
// independent of model/gemma3.cc, so that the two check each other.
// Also builds small random Gemma 3 models in any weight format.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/gemma3_config.h"
#include "tests/model/test_tensors.h"

namespace unicorn::testing {

// A small config: 4 layers (sliding, global, sliding, global), GQA 4/2 heads,
// head_dim 16, hidden 64, intermediate 96, vocab 160, window 5.
Gemma3Config TinyConfig();

// Random weights for `config` in `matrix_dtype` (projections and embedding);
// norm weights in `norm_dtype`.
TensorStore MakeRandomGemma3(const Gemma3Config& config, DType matrix_dtype, DType norm_dtype,
                             uint32_t seed);

// Logits [n, vocab] for `tokens`; tokens equal to config.image_token_id take
// the rows of image_embeds [n_image_tokens, hidden] in order.
std::vector<float> ReferenceLogits(const Gemma3Config& config, const TensorStore& weights,
                                   const std::vector<int>& tokens,
                                   const std::vector<float>& image_embeds);

}  // namespace unicorn::testing
