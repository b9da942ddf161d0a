// Hugging Face config.json -> Gemma3Config.
//
// Both dialects give the same Gemma3Config:
//   Google's published configs (transformers 4.50):
//     rope_theta (global), rope_local_base_freq (sliding), rope_scaling
//     {"rope_type" or "type": "linear", "factor": 8} (global layers only),
//     sliding_window_pattern N: layer i is global iff (i + 1) % N == 0.
//   transformers 5:
//     rope_parameters {"sliding_attention": {"rope_type", "rope_theta"},
//                      "full_attention": {"rope_type", "rope_theta", "factor"}},
//     layer_types ["sliding_attention", ..., "full_attention"].
// Gemma3ForCausalLM keeps the text keys at the top level;
// Gemma3ForConditionalGeneration nests them in text_config, adds
// vision_config (SiglipVisionConfig) and mm_tokens_per_image,
// image_token_index, boi_token_index, eoi_token_index.
//
// Absent keys take the defaults of transformers' Gemma3TextConfig /
// SiglipVisionConfig / Gemma3Config (configuration_gemma3.py; Google's 4B
// config.json relies on them: it has no num_attention_heads, head_dim or
// vocab_size). hidden_size, num_hidden_layers and intermediate_size (and the
// vision tower's hidden_size, num_hidden_layers, image_size, patch_size) are
// required. JSON null counts as absent.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "model/gemma3_config.h"

namespace unicorn {

// Parses config.json text. Errors read "[config] <file>: <problem>", naming
// the key (e.g. "missing key text_config.hidden_size"). The result is
// validated (ValidateConfig).
StatusOr<Gemma3Config> ParseHfConfig(std::string_view json_text, const std::string& file);

// Reads <dir>/config.json, and <dir>/preprocessor_config.json when present
// (image_mean / image_std of the vision tower).
StatusOr<Gemma3Config> LoadHfConfig(const std::string& dir);

// Applies preprocessor_config.json's image_mean / image_std, if present.
Status ApplyHfPreprocessorConfig(std::string_view json_text, const std::string& file,
                                 Gemma3Config* config);

}  // namespace unicorn
