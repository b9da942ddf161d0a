// Gemma 3 hyper-parameters as plain data. Filled from config.json (either
// dialect) or GGUF metadata, then validated; every backend reads only this.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace unicorn {

enum class LayerType : uint8_t { kSliding, kGlobal };

struct RopeConfig {
  double theta = 10000.0;
  double linear_factor = 1.0;  // positions are divided by this (rope_scaling linear)

  friend bool operator==(const RopeConfig&, const RopeConfig&) = default;
};

struct VisionConfig {
  int image_size = 896;
  int patch_size = 14;
  int num_channels = 3;
  int hidden_size = 1152;
  int intermediate_size = 4304;
  int num_layers = 27;
  int num_heads = 16;
  double layer_norm_eps = 1e-6;
  int mm_tokens_per_image = 256;
  // Pixel normalisation, per channel: (x / 255 - mean) / std.
  std::array<double, 3> image_mean = {0.5, 0.5, 0.5};
  std::array<double, 3> image_std = {0.5, 0.5, 0.5};

  friend bool operator==(const VisionConfig&, const VisionConfig&) = default;
};

struct Gemma3Config {
  std::string architecture;  // Gemma3ForCausalLM | Gemma3ForConditionalGeneration
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  int intermediate_size = 0;
  int vocab_size = 0;
  double rms_norm_eps = 1e-6;
  double query_pre_attn_scalar = 256;  // attention scale = query_pre_attn_scalar^-0.5
  int sliding_window = 0;              // tokens a local layer attends to (incl. itself)
  std::vector<LayerType> layer_types;  // one per layer
  RopeConfig rope_local;               // sliding layers (theta 10k)
  RopeConfig rope_global;              // global layers (theta 1M, linear x8 on 4B+)
  double final_logit_softcapping = 0;  // 0 = none
  double attn_logit_softcapping = 0;   // 0 = none
  int max_position_embeddings = 0;
  bool tie_word_embeddings = true;

  // Special token ids (from the config or tokenizer metadata).
  int bos_token_id = 2;
  int eos_token_id = 1;
  std::vector<int> eos_token_ids;  // all ids that end generation
  int pad_token_id = 0;

  // Vision (Gemma3ForConditionalGeneration only).
  bool has_vision = false;
  VisionConfig vision;
  int image_token_id = 262144;  // <image_soft_token>
  int boi_token_id = 255999;    // <start_of_image>
  int eoi_token_id = 256000;    // <end_of_image>

  friend bool operator==(const Gemma3Config&, const Gemma3Config&) = default;
};

}  // namespace unicorn
