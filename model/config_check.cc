#include "model/config_check.h"

#include <cmath>

namespace unicorn {
namespace {

Status Range(const char* name, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " ", v, " is out of range [", lo, ", ", hi, "]"));
  }
  return absl::OkStatus();
}

Status Positive(const char* name, double v) {
  if (!std::isfinite(v) || v <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, " ", v, " must be a positive number"));
  }
  return absl::OkStatus();
}

Status NonNegative(const char* name, double v) {
  if (!std::isfinite(v) || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(name, " ", v, " must be >= 0"));
  }
  return absl::OkStatus();
}

Status ValidateVision(const Gemma3Config& c) {
  const VisionConfig& v = c.vision;
  UNICORN_RETURN_IF_ERROR(Range("vision image_size", v.image_size, 1, 1 << 14));
  UNICORN_RETURN_IF_ERROR(Range("vision patch_size", v.patch_size, 1, 1 << 10));
  UNICORN_RETURN_IF_ERROR(Range("vision num_channels", v.num_channels, 1, 16));
  UNICORN_RETURN_IF_ERROR(Range("vision hidden_size", v.hidden_size, 1, 1 << 16));
  UNICORN_RETURN_IF_ERROR(Range("vision intermediate_size", v.intermediate_size, 1, 1 << 18));
  UNICORN_RETURN_IF_ERROR(Range("vision num_hidden_layers", v.num_layers, 1, 1024));
  UNICORN_RETURN_IF_ERROR(Range("vision num_attention_heads", v.num_heads, 1, 1024));
  UNICORN_RETURN_IF_ERROR(Positive("vision layer_norm_eps", v.layer_norm_eps));
  for (int k = 0; k < 3; ++k) {
    if (!std::isfinite(v.image_mean[k])) {
      return absl::InvalidArgumentError("vision image_mean must be finite");
    }
    UNICORN_RETURN_IF_ERROR(Positive("vision image_std", v.image_std[k]));
  }
  if (v.image_size % v.patch_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "vision image_size ", v.image_size, " is not a multiple of patch_size ", v.patch_size));
  }
  if (v.hidden_size % v.num_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("vision num_attention_heads ", v.num_heads,
                                                   " does not divide hidden_size ", v.hidden_size));
  }
  const int per_side = v.image_size / v.patch_size;
  UNICORN_RETURN_IF_ERROR(
      Range("mm_tokens_per_image", v.mm_tokens_per_image, 1, int64_t(per_side) * per_side));
  const int tokens_side = int(std::lround(std::sqrt(double(v.mm_tokens_per_image))));
  if (tokens_side * tokens_side != v.mm_tokens_per_image || per_side % tokens_side != 0) {
    return absl::InvalidArgumentError(absl::StrCat("mm_tokens_per_image ", v.mm_tokens_per_image,
                                                   " is not a square that divides the ", per_side,
                                                   "x", per_side, " patch grid"));
  }
  for (int id : {c.image_token_id, c.boi_token_id, c.eoi_token_id}) {
    UNICORN_RETURN_IF_ERROR(Range("image token id", id, 0, INT32_MAX));
  }
  return absl::OkStatus();
}

}  // namespace

Status ValidateConfig(const Gemma3Config& c) {
  UNICORN_RETURN_IF_ERROR(Range("hidden_size", c.hidden_size, 1, 1 << 16));
  UNICORN_RETURN_IF_ERROR(Range("num_hidden_layers", c.num_layers, 1, 1024));
  UNICORN_RETURN_IF_ERROR(Range("num_attention_heads", c.num_heads, 1, 1024));
  UNICORN_RETURN_IF_ERROR(Range("num_key_value_heads", c.num_kv_heads, 1, c.num_heads));
  UNICORN_RETURN_IF_ERROR(Range("head_dim", c.head_dim, 2, 4096));
  UNICORN_RETURN_IF_ERROR(Range("intermediate_size", c.intermediate_size, 1, 1 << 20));
  UNICORN_RETURN_IF_ERROR(Range("vocab_size", c.vocab_size, 1, 1 << 22));
  UNICORN_RETURN_IF_ERROR(Range("max_position_embeddings", c.max_position_embeddings, 0, 1 << 30));
  if (c.num_heads % c.num_kv_heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat("num_key_value_heads ", c.num_kv_heads,
                                                   " does not divide num_attention_heads ",
                                                   c.num_heads));
  }
  if (c.head_dim % 2 != 0) {
    return absl::InvalidArgumentError(absl::StrCat("head_dim ", c.head_dim, " is odd (RoPE)"));
  }
  UNICORN_RETURN_IF_ERROR(Positive("rms_norm_eps", c.rms_norm_eps));
  UNICORN_RETURN_IF_ERROR(Positive("query_pre_attn_scalar", c.query_pre_attn_scalar));
  UNICORN_RETURN_IF_ERROR(Positive("rope theta (global)", c.rope_global.theta));
  UNICORN_RETURN_IF_ERROR(Positive("rope theta (sliding)", c.rope_local.theta));
  UNICORN_RETURN_IF_ERROR(Positive("rope factor (global)", c.rope_global.linear_factor));
  UNICORN_RETURN_IF_ERROR(Positive("rope factor (sliding)", c.rope_local.linear_factor));
  UNICORN_RETURN_IF_ERROR(NonNegative("final_logit_softcapping", c.final_logit_softcapping));
  UNICORN_RETURN_IF_ERROR(NonNegative("attn_logit_softcapping", c.attn_logit_softcapping));
  if (c.layer_types.size() != size_t(c.num_layers)) {
    return absl::InvalidArgumentError(
        absl::StrCat(c.layer_types.size(), " layer types for ", c.num_layers, " layers"));
  }
  bool any_sliding = false;
  for (LayerType t : c.layer_types) any_sliding |= t == LayerType::kSliding;
  if (any_sliding) UNICORN_RETURN_IF_ERROR(Range("sliding_window", c.sliding_window, 1, 1 << 30));
  for (int id : {c.bos_token_id, c.eos_token_id, c.pad_token_id}) {
    UNICORN_RETURN_IF_ERROR(Range("special token id", id, 0, INT32_MAX));
  }
  for (int id : c.eos_token_ids) UNICORN_RETURN_IF_ERROR(Range("eos token id", id, 0, INT32_MAX));
  if (c.has_vision) UNICORN_RETURN_IF_ERROR(ValidateVision(c));
  return absl::OkStatus();
}

}  // namespace unicorn
