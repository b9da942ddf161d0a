#include "model/gguf_config.h"

#include <algorithm>
#include <cmath>
#include <optional>

namespace unicorn {

// Unicorn's extension key (see TextConfigToGguf).
constexpr const char* kUnicornQpasKey = "unicorn.query_pre_attn_scalar";
namespace {

Status Bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

constexpr char kArch[] = "gemma3";

std::string K(const char* suffix) { return absl::StrCat(kArch, ".", suffix); }

// A u32-sized count, which llama.cpp may also store per layer as an array
// (get_key_or_arr): the array must then hold one equal value per layer.
StatusOr<int> Count(const GgufMetadata& md, const std::string& key, std::optional<int> dflt,
                    int n_layers) {
  const GgufValue* v = md.Find(key);
  if (v == nullptr) {
    if (!dflt) return absl::NotFoundError(absl::StrCat("missing metadata key ", key));
    return *dflt;
  }
  int64_t x = 0;
  if (v->is_array) {
    if (v->size() != size_t(n_layers) || (v->u.empty() && v->i.empty())) {
      return Bad(absl::StrCat("metadata key ", key, ": expected ", n_layers, " integers"));
    }
    for (size_t k = 0; k < v->size(); ++k) {
      const int64_t e = v->u.empty() ? v->i[k] : int64_t(std::min<uint64_t>(v->u[k], INT64_MAX));
      if (k > 0 && e != x) {
        return Bad(absl::StrCat("metadata key ", key, ": differs between layers (unsupported)"));
      }
      x = e;
    }
  } else {
    UNICORN_ASSIGN_OR_RETURN(x, md.Int(key));
  }
  if (x < 0 || x > INT32_MAX)
    return Bad(absl::StrCat("metadata key ", key, ": ", x, " is out of range"));
  return int(x);
}

Status ReadLayerTypes(const GgufMetadata& md, Gemma3Config* c) {
  c->layer_types.assign(c->num_layers, LayerType::kGlobal);
  if (c->sliding_window <= 0) {  // no SWA: every layer global
    c->sliding_window = 0;
    return absl::OkStatus();
  }
  const std::string key = K("attention.sliding_window_pattern");
  const GgufValue* v = md.Find(key);
  if (v && v->is_array) {
    if (v->type != GgufType::kBool || v->size() != size_t(c->num_layers)) {
      return Bad(absl::StrCat("metadata key ", key, ": expected ", c->num_layers, " bools"));
    }
    for (int i = 0; i < c->num_layers; ++i) {
      c->layer_types[i] = v->u[i] ? LayerType::kSliding : LayerType::kGlobal;
    }
    return absl::OkStatus();
  }
  UNICORN_ASSIGN_OR_RETURN(int64_t n, md.Int(key, 6));
  if (n < 0) return Bad(absl::StrCat("metadata key ", key, ": negative"));
  for (int i = 0; i < c->num_layers; ++i) {
    const bool swa = n == 0 || (i % n < n - 1);
    c->layer_types[i] = swa ? LayerType::kSliding : LayerType::kGlobal;
  }
  return absl::OkStatus();
}

Status ReadRope(const GgufMetadata& md, Gemma3Config* c) {
  UNICORN_ASSIGN_OR_RETURN(c->rope_global.theta, md.Float(K("rope.freq_base"), 10000.0));
  UNICORN_ASSIGN_OR_RETURN(c->rope_local.theta, md.Float(K("rope.freq_base_swa"), 10000.0));
  UNICORN_ASSIGN_OR_RETURN(std::string type, md.String(K("rope.scaling.type"), "linear"));
  double factor = 0;
  if (md.Has(K("rope.scaling.factor"))) {
    UNICORN_ASSIGN_OR_RETURN(factor, md.Float(K("rope.scaling.factor")));
  } else {
    UNICORN_ASSIGN_OR_RETURN(factor, md.Float(K("rope.scale_linear"), 0.0));
  }
  if (type == "none") factor = 0;
  if (type != "none" && type != "linear") {
    return Bad(absl::StrCat("metadata key ", K("rope.scaling.type"), ": unsupported RoPE scaling ",
                            type, " (none and linear are supported)"));
  }
  c->rope_global.linear_factor = factor == 0 ? 1.0 : factor;
  c->rope_local.linear_factor = 1.0;
  return absl::OkStatus();
}

// Special ids (quirk 6 in the header): the token list, when present, names
// Gemma's <eos>, <end_of_turn> and image tokens.
Status ReadTokenIds(const GgufMetadata& md, Gemma3Config* c) {
  auto id = [&](const char* key, int dflt) -> StatusOr<int> {
    UNICORN_ASSIGN_OR_RETURN(int64_t x, md.Int(key, dflt));
    if (x < 0 || x > INT32_MAX) return Bad(absl::StrCat("metadata key ", key, ": out of range"));
    return int(x);
  };
  UNICORN_ASSIGN_OR_RETURN(c->bos_token_id, id("tokenizer.ggml.bos_token_id", 2));
  UNICORN_ASSIGN_OR_RETURN(const int eos, id("tokenizer.ggml.eos_token_id", 1));
  UNICORN_ASSIGN_OR_RETURN(c->pad_token_id, id("tokenizer.ggml.padding_token_id", 0));
  std::optional<int> eot;
  if (md.Has("tokenizer.ggml.eot_token_id")) {
    UNICORN_ASSIGN_OR_RETURN(eot, id("tokenizer.ggml.eot_token_id", 0));
  }
  int piece_eos = -1, piece_eot = -1;
  if (const GgufValue* t = md.Find("tokenizer.ggml.tokens"); t && t->type == GgufType::kString) {
    for (size_t i = 0; i < t->s.size() && i <= size_t(INT32_MAX); ++i) {
      const std::string& p = t->s[i];
      if (p.empty() || p[0] != '<') continue;
      if (p == "<eos>") piece_eos = int(i);
      if (p == "<end_of_turn>") piece_eot = int(i);
      if (p == "<image_soft_token>") c->image_token_id = int(i);
      if (p == "<start_of_image>") c->boi_token_id = int(i);
      if (p == "<end_of_image>") c->eoi_token_id = int(i);
    }
  }
  c->eos_token_id = piece_eos >= 0 ? piece_eos : eos;
  c->eos_token_ids.clear();
  for (std::optional<int> e : {std::optional<int>(c->eos_token_id), std::optional<int>(eos), eot,
                               piece_eot >= 0 ? std::optional<int>(piece_eot) : std::nullopt}) {
    if (e &&
        std::find(c->eos_token_ids.begin(), c->eos_token_ids.end(), *e) == c->eos_token_ids.end()) {
      c->eos_token_ids.push_back(*e);
    }
  }
  return absl::OkStatus();
}

StatusOr<float> FiniteF32(const char* what, double v) {
  if (!std::isfinite(v)) return Bad(absl::StrCat(what, " is not finite"));
  return float(v);
}

}  // namespace

double LlamaCppQueryPreAttnScalar(int block_count, int hidden_size, int num_heads, int head_dim) {
  // Integer division, as llama.cpp's n_embd / n_head(0) (uint32 operands).
  return block_count == 62 ? double(hidden_size / num_heads) : double(head_dim);
}

StatusOr<Gemma3Config> TextConfigFromGguf(const GgufMetadata& md, int64_t token_embd_rows) {
  UNICORN_ASSIGN_OR_RETURN(std::string arch, md.String("general.architecture"));
  if (arch == "clip") {
    return Bad(
        "this is a vision projector (mmproj) file; open the text model and pass this "
        "file as its mmproj");
  }
  if (arch != kArch) return Bad(absl::StrCat("architecture ", arch, " is not gemma3"));
  Gemma3Config c;
  c.architecture = "Gemma3ForCausalLM";
  UNICORN_ASSIGN_OR_RETURN(c.num_layers, Count(md, K("block_count"), std::nullopt, 0));
  if (c.num_layers < 1 || c.num_layers > 1024) {
    return Bad(absl::StrCat("metadata key ", K("block_count"), ": ", c.num_layers,
                            " is out of range [1, 1024]"));
  }
  const int L = c.num_layers;
  UNICORN_ASSIGN_OR_RETURN(c.hidden_size, Count(md, K("embedding_length"), std::nullopt, L));
  UNICORN_ASSIGN_OR_RETURN(c.intermediate_size,
                           Count(md, K("feed_forward_length"), std::nullopt, L));
  UNICORN_ASSIGN_OR_RETURN(c.num_heads, Count(md, K("attention.head_count"), std::nullopt, L));
  UNICORN_ASSIGN_OR_RETURN(c.num_kv_heads, Count(md, K("attention.head_count_kv"), c.num_heads, L));
  if (c.num_heads == 0) return Bad(absl::StrCat("metadata key ", K("attention.head_count"), ": 0"));
  UNICORN_ASSIGN_OR_RETURN(c.head_dim,
                           Count(md, K("attention.key_length"), c.hidden_size / c.num_heads, L));
  UNICORN_ASSIGN_OR_RETURN(int value_length, Count(md, K("attention.value_length"), c.head_dim, L));
  if (value_length != c.head_dim) {
    return Bad(absl::StrCat("attention.value_length ", value_length, " != key_length ", c.head_dim,
                            " (unsupported)"));
  }
  UNICORN_ASSIGN_OR_RETURN(c.rms_norm_eps, md.Float(K("attention.layer_norm_rms_epsilon")));
  UNICORN_ASSIGN_OR_RETURN(c.max_position_embeddings,
                           Count(md, K("context_length"), std::nullopt, L));
  UNICORN_ASSIGN_OR_RETURN(c.sliding_window, Count(md, K("attention.sliding_window"), 0, L));
  UNICORN_RETURN_IF_ERROR(ReadLayerTypes(md, &c));
  UNICORN_RETURN_IF_ERROR(ReadRope(md, &c));
  UNICORN_ASSIGN_OR_RETURN(c.final_logit_softcapping, md.Float(K("final_logit_softcapping"), 0.0));
  c.attn_logit_softcapping = 0;  // removed in Gemma 3 (the converter asserts it is absent)
  c.query_pre_attn_scalar =
      LlamaCppQueryPreAttnScalar(c.num_layers, c.hidden_size, c.num_heads, c.head_dim);
  if (md.Find(kUnicornQpasKey) != nullptr) {
    UNICORN_ASSIGN_OR_RETURN(c.query_pre_attn_scalar, md.Float(kUnicornQpasKey));
  }

  if (const GgufValue* t = md.Find("tokenizer.ggml.tokens")) {
    if (!t->is_array || t->type != GgufType::kString) {
      return Bad("metadata key tokenizer.ggml.tokens: expected an array of strings");
    }
    if (t->size() > size_t(INT32_MAX)) return Bad("too many tokens");
    c.vocab_size = int(t->size());
  } else if (token_embd_rows >= 0 && token_embd_rows <= INT32_MAX) {
    c.vocab_size = int(token_embd_rows);
  } else {
    return Bad("no tokenizer.ggml.tokens and no token_embd.weight: unknown vocabulary size");
  }
  UNICORN_RETURN_IF_ERROR(ReadTokenIds(md, &c));
  c.tie_word_embeddings = true;
  c.has_vision = false;
  return c;
}

Status VisionConfigFromGguf(const GgufMetadata& md, Gemma3Config* c) {
  UNICORN_ASSIGN_OR_RETURN(std::string arch, md.String("general.architecture", "clip"));
  if (arch != "clip") return Bad(absl::StrCat("architecture ", arch, " is not an mmproj (clip)"));
  std::string proj;
  if (md.Has("clip.projector_type")) {
    UNICORN_ASSIGN_OR_RETURN(proj, md.String("clip.projector_type"));
  } else {
    UNICORN_ASSIGN_OR_RETURN(proj, md.String("clip.vision.projector_type", ""));
  }
  if (proj != "gemma3") {
    return Bad(absl::StrCat("clip.projector_type \"", proj, "\" is not gemma3"));
  }
  UNICORN_ASSIGN_OR_RETURN(bool has_vision, md.Bool("clip.has_vision_encoder", true));
  if (!has_vision) return Bad("clip.has_vision_encoder is false");
  VisionConfig& v = c->vision;
  auto count = [&](const char* key, std::optional<int> dflt) { return Count(md, key, dflt, 0); };
  UNICORN_ASSIGN_OR_RETURN(v.image_size, count("clip.vision.image_size", std::nullopt));
  UNICORN_ASSIGN_OR_RETURN(v.patch_size, count("clip.vision.patch_size", std::nullopt));
  UNICORN_ASSIGN_OR_RETURN(v.hidden_size, count("clip.vision.embedding_length", std::nullopt));
  UNICORN_ASSIGN_OR_RETURN(v.intermediate_size,
                           count("clip.vision.feed_forward_length", std::nullopt));
  UNICORN_ASSIGN_OR_RETURN(v.num_layers, count("clip.vision.block_count", std::nullopt));
  UNICORN_ASSIGN_OR_RETURN(v.num_heads, count("clip.vision.attention.head_count", std::nullopt));
  UNICORN_ASSIGN_OR_RETURN(v.layer_norm_eps,
                           md.Float("clip.vision.attention.layer_norm_epsilon", 1e-6));
  UNICORN_ASSIGN_OR_RETURN(int proj_dim, count("clip.vision.projection_dim", c->hidden_size));
  if (proj_dim != c->hidden_size) {
    return Bad(absl::StrCat("clip.vision.projection_dim ", proj_dim,
                            " != the text model's hidden size ", c->hidden_size));
  }
  for (auto [key, dst] : {std::pair{"clip.vision.image_mean", &v.image_mean},
                          std::pair{"clip.vision.image_std", &v.image_std}}) {
    const GgufValue* a = md.Find(key);
    if (a == nullptr) continue;
    if (!a->is_array || a->f.size() != 3) {
      return Bad(absl::StrCat("metadata key ", key, ": expected 3 floats"));
    }
    for (int k = 0; k < 3; ++k) (*dst)[k] = a->f[k];
  }
  v.num_channels = 3;
  UNICORN_ASSIGN_OR_RETURN(int n_merge, count("clip.vision.projector.scale_factor", 4));
  if (n_merge < 1 || v.patch_size < 1 || v.image_size / v.patch_size / n_merge < 1) {
    return Bad(absl::StrCat("clip.vision.projector.scale_factor ", n_merge,
                            " does not fit the patch grid"));
  }
  const int side = v.image_size / v.patch_size / n_merge;
  v.mm_tokens_per_image = side * side;
  c->has_vision = true;
  c->architecture = "Gemma3ForConditionalGeneration";
  return absl::OkStatus();
}

Status TextConfigToGguf(const Gemma3Config& c, GgufMetadata* md, bool unicorn_extensions) {
  const double qpas =
      LlamaCppQueryPreAttnScalar(c.num_layers, c.hidden_size, c.num_heads, c.head_dim);
  if (c.query_pre_attn_scalar != qpas && unicorn_extensions) {
    md->Set(kUnicornQpasKey, GgufValue::F32(float(c.query_pre_attn_scalar)));
  } else if (c.query_pre_attn_scalar != qpas) {
    return Bad(absl::StrCat("query_pre_attn_scalar ", c.query_pre_attn_scalar,
                            " cannot be stored in GGUF: llama.cpp derives ", qpas,
                            " for this shape"));
  }
  if (c.rope_local.linear_factor != 1.0) {
    return Bad("a RoPE scale on sliding layers cannot be stored in GGUF");
  }
  if (c.attn_logit_softcapping != 0) return Bad("Gemma 3 GGUFs have no attn_logit_softcapping");
  auto u32 = [&](const char* k, int v) { md->Set(K(k), GgufValue::U32(uint32_t(v))); };
  md->Set("general.architecture", GgufValue::Str(kArch));
  u32("context_length", c.max_position_embeddings);
  u32("embedding_length", c.hidden_size);
  u32("block_count", c.num_layers);
  u32("feed_forward_length", c.intermediate_size);
  u32("attention.head_count", c.num_heads);
  u32("attention.head_count_kv", c.num_kv_heads);
  u32("attention.key_length", c.head_dim);
  u32("attention.value_length", c.head_dim);
  UNICORN_ASSIGN_OR_RETURN(float eps, FiniteF32("rms_norm_eps", c.rms_norm_eps));
  md->Set(K("attention.layer_norm_rms_epsilon"), GgufValue::F32(eps));
  UNICORN_ASSIGN_OR_RETURN(float base, FiniteF32("rope theta", c.rope_global.theta));
  UNICORN_ASSIGN_OR_RETURN(float base_swa, FiniteF32("rope theta", c.rope_local.theta));
  md->Set(K("rope.freq_base"), GgufValue::F32(base));
  md->Set(K("rope.freq_base_swa"), GgufValue::F32(base_swa));
  if (c.rope_global.linear_factor != 1.0) {
    UNICORN_ASSIGN_OR_RETURN(float f, FiniteF32("rope factor", c.rope_global.linear_factor));
    md->Set(K("rope.scaling.type"), GgufValue::Str("linear"));
    md->Set(K("rope.scaling.factor"), GgufValue::F32(f));
  }
  if (c.final_logit_softcapping > 0) {
    UNICORN_ASSIGN_OR_RETURN(float f,
                             FiniteF32("final_logit_softcapping", c.final_logit_softcapping));
    md->Set(K("final_logit_softcapping"), GgufValue::F32(f));
  }
  bool any_sliding = false, pattern6 = true;
  for (int i = 0; i < c.num_layers && i < int(c.layer_types.size()); ++i) {
    const bool sliding = c.layer_types[i] == LayerType::kSliding;
    any_sliding |= sliding;
    pattern6 &= sliding == (i % 6 < 5);
  }
  if (any_sliding) {
    u32("attention.sliding_window", c.sliding_window);
    if (!pattern6) {
      std::vector<uint64_t> swa(c.layer_types.size());
      for (size_t i = 0; i < swa.size(); ++i) swa[i] = c.layer_types[i] == LayerType::kSliding;
      md->Set(K("attention.sliding_window_pattern"), GgufValue::UintArray(GgufType::kBool, swa));
    }
  }
  return absl::OkStatus();
}

Status VisionConfigToGguf(const Gemma3Config& c, GgufMetadata* md) {
  const VisionConfig& v = c.vision;
  auto u32 = [&](const char* k, int x) { md->Set(k, GgufValue::U32(uint32_t(x))); };
  md->Set("general.architecture", GgufValue::Str("clip"));
  md->Set("general.type", GgufValue::Str("mmproj"));
  md->Set("clip.projector_type", GgufValue::Str("gemma3"));
  md->Set("clip.has_vision_encoder", GgufValue::Bool(true));
  md->Set("clip.use_gelu", GgufValue::Bool(true));
  u32("clip.vision.image_size", v.image_size);
  u32("clip.vision.patch_size", v.patch_size);
  u32("clip.vision.embedding_length", v.hidden_size);
  u32("clip.vision.feed_forward_length", v.intermediate_size);
  u32("clip.vision.block_count", v.num_layers);
  u32("clip.vision.projection_dim", c.hidden_size);
  u32("clip.vision.attention.head_count", v.num_heads);
  UNICORN_ASSIGN_OR_RETURN(float eps, FiniteF32("vision layer_norm_eps", v.layer_norm_eps));
  md->Set("clip.vision.attention.layer_norm_epsilon", GgufValue::F32(eps));
  md->Set("clip.vision.image_mean",
          GgufValue::FloatArray(GgufType::kF32, {v.image_mean.begin(), v.image_mean.end()}));
  md->Set("clip.vision.image_std",
          GgufValue::FloatArray(GgufType::kF32, {v.image_std.begin(), v.image_std.end()}));
  const int per_side = v.image_size / v.patch_size;
  const int tokens_side = int(std::lround(std::sqrt(double(v.mm_tokens_per_image))));
  if (tokens_side <= 0 || per_side % tokens_side != 0) {
    return Bad("mm_tokens_per_image does not divide the patch grid");
  }
  if (per_side / tokens_side != 4)
    u32("clip.vision.projector.scale_factor", per_side / tokens_side);
  return absl::OkStatus();
}

}  // namespace unicorn
