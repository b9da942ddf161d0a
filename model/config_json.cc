#include "model/config_json.h"

namespace unicorn {

nlohmann::json ConfigToJson(const Gemma3Config& c) {
  using nlohmann::json;
  json layer_types = json::array();
  for (LayerType t : c.layer_types) {
    layer_types.push_back(t == LayerType::kGlobal ? "full_attention" : "sliding_attention");
  }
  json j = {
      {"architecture", c.architecture},
      {"hidden_size", c.hidden_size},
      {"num_hidden_layers", c.num_layers},
      {"num_attention_heads", c.num_heads},
      {"num_key_value_heads", c.num_kv_heads},
      {"head_dim", c.head_dim},
      {"intermediate_size", c.intermediate_size},
      {"vocab_size", c.vocab_size},
      {"rms_norm_eps", c.rms_norm_eps},
      {"query_pre_attn_scalar", c.query_pre_attn_scalar},
      {"sliding_window", c.sliding_window},
      {"layer_types", layer_types},
      {"rope_local",
       {{"theta", c.rope_local.theta}, {"linear_factor", c.rope_local.linear_factor}}},
      {"rope_global",
       {{"theta", c.rope_global.theta}, {"linear_factor", c.rope_global.linear_factor}}},
      {"final_logit_softcapping", c.final_logit_softcapping},
      {"attn_logit_softcapping", c.attn_logit_softcapping},
      {"max_position_embeddings", c.max_position_embeddings},
      {"tie_word_embeddings", c.tie_word_embeddings},
      {"bos_token_id", c.bos_token_id},
      {"eos_token_id", c.eos_token_id},
      {"eos_token_ids", c.eos_token_ids},
      {"pad_token_id", c.pad_token_id},
      {"has_vision", c.has_vision},
  };
  if (c.has_vision) {
    const VisionConfig& v = c.vision;
    j["vision"] = {
        {"image_size", v.image_size},
        {"patch_size", v.patch_size},
        {"num_channels", v.num_channels},
        {"hidden_size", v.hidden_size},
        {"intermediate_size", v.intermediate_size},
        {"num_hidden_layers", v.num_layers},
        {"num_attention_heads", v.num_heads},
        {"layer_norm_eps", v.layer_norm_eps},
        {"mm_tokens_per_image", v.mm_tokens_per_image},
        {"image_mean", v.image_mean},
        {"image_std", v.image_std},
    };
    j["image_token_id"] = c.image_token_id;
    j["boi_token_id"] = c.boi_token_id;
    j["eoi_token_id"] = c.eoi_token_id;
  }
  return j;
}

}  // namespace unicorn
