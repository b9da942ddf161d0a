// The published Gemma 3 sizes as Gemma3Configs (Google's config.json files,
// with transformers' defaults filled in), for benchmarks and random-weight
// models with exact real shapes.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "model/gemma3_config.h"

namespace unicorn {

// "gemma3-1b", "gemma3-4b", "gemma3-12b", "gemma3-27b", or "tiny" (a small
// model with every feature: 6 layers, one global, RoPE scaling, vision).
// vocab_size is 262144, the token count of Gemma 3's tokenizer and so the
// row count of llama.cpp's GGUFs (model/gguf_config.h, quirk 4); HF folders
// of 4B/12B/27B say 262208. 1B is text only; the others have the SigLIP
// tower (896x896, patch 14, 27 layers, width 1152, 256 image tokens).
std::optional<Gemma3Config> Gemma3Shape(std::string_view name);
std::vector<std::string_view> Gemma3ShapeNames();

}  // namespace unicorn
