#include "model/hf_config.h"

#include <cmath>
#include <filesystem>
#include <optional>

#include "model/config_check.h"
#include "model/text_file.h"
#include "nlohmann/json.hpp"

namespace unicorn {
namespace {

using nlohmann::json;

Status Bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

// Typed access to one JSON object; `path` ("text_config.") prefixes key names
// in errors. JSON null counts as absent.
class Obj {
 public:
  Obj(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  const json* Get(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }
  bool Has(const char* key) const { return Get(key) != nullptr; }
  std::string Name(const char* key) const { return path_ + key; }

  StatusOr<int> Int(const char* key, std::optional<int64_t> dflt = std::nullopt) const {
    const json* v = Get(key);
    if (v == nullptr) {
      if (!dflt) return Bad(absl::StrCat("missing key ", Name(key)));
      return int(*dflt);
    }
    return AsInt(*v, Name(key));
  }

  StatusOr<double> Num(const char* key, std::optional<double> dflt = std::nullopt) const {
    const json* v = Get(key);
    if (v == nullptr) {
      if (!dflt) return Bad(absl::StrCat("missing key ", Name(key)));
      return *dflt;
    }
    if (!v->is_number()) return Bad(absl::StrCat("key ", Name(key), ": expected a number"));
    return v->get<double>();
  }

  StatusOr<bool> Bool(const char* key, bool dflt) const {
    const json* v = Get(key);
    if (v == nullptr) return dflt;
    if (!v->is_boolean()) return Bad(absl::StrCat("key ", Name(key), ": expected true or false"));
    return v->get<bool>();
  }

  StatusOr<std::string> Str(const char* key, std::string dflt) const {
    const json* v = Get(key);
    if (v == nullptr) return dflt;
    if (!v->is_string()) return Bad(absl::StrCat("key ", Name(key), ": expected a string"));
    return v->get<std::string>();
  }

  static StatusOr<int> AsInt(const json& v, const std::string& name) {
    double d = 0;
    if (v.is_number_integer()) {
      const int64_t x = v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)
                            ? INT64_MAX
                            : v.get<int64_t>();
      if (x < INT32_MIN || x > INT32_MAX) return Bad(absl::StrCat("key ", name, ": out of range"));
      return int(x);
    }
    if (v.is_number_float() && std::modf(d = v.get<double>(), &d) == 0 && std::fabs(d) < 2e9) {
      return int(d);
    }
    return Bad(absl::StrCat("key ", name, ": expected an integer"));
  }

 private:
  const json& j_;
  std::string path_;
};

// One rope_parameters / rope_scaling entry into `rope`. `theta_key` may be
// absent from the entry (Google's rope_scaling has no theta).
Status ReadRope(const Obj& o, RopeConfig* rope) {
  UNICORN_ASSIGN_OR_RETURN(rope->theta, o.Num("rope_theta", rope->theta));
  std::string type;
  UNICORN_ASSIGN_OR_RETURN(type, o.Str("rope_type", ""));
  if (type.empty()) {
    UNICORN_ASSIGN_OR_RETURN(type, o.Str("type", "default"));
  }
  if (type == "default") {
    rope->linear_factor = 1.0;
  } else if (type == "linear") {
    UNICORN_ASSIGN_OR_RETURN(rope->linear_factor, o.Num("factor"));
  } else {
    return Bad(absl::StrCat("key ", o.Name("rope_type"), ": unsupported RoPE type \"", type,
                            "\" (default and linear are supported)"));
  }
  return absl::OkStatus();
}

Status ReadRopeAll(const Obj& t, Gemma3Config* c) {
  // transformers' defaults (default_theta): 1e6 global, 1e4 local.
  c->rope_global = RopeConfig{1'000'000.0, 1.0};
  c->rope_local = RopeConfig{10'000.0, 1.0};
  if (const json* rp = t.Get("rope_parameters")) {  // transformers 5
    if (!rp->is_object())
      return Bad(absl::StrCat("key ", t.Name("rope_parameters"), ": not an object"));
    const bool per_type = rp->contains("full_attention") || rp->contains("sliding_attention");
    if (per_type) {
      for (const char* k : {"full_attention", "sliding_attention"}) {
        auto it = rp->find(k);
        if (it == rp->end() || it->is_null()) continue;
        if (!it->is_object())
          return Bad(absl::StrCat("key rope_parameters.", k, ": not an object"));
        RopeConfig* r = std::string(k) == "full_attention" ? &c->rope_global : &c->rope_local;
        UNICORN_RETURN_IF_ERROR(ReadRope(Obj(*it, t.Name("rope_parameters.") + k + "."), r));
      }
    } else {  // one entry for the global layers
      UNICORN_RETURN_IF_ERROR(ReadRope(Obj(*rp, t.Name("rope_parameters.")), &c->rope_global));
      UNICORN_ASSIGN_OR_RETURN(c->rope_local.theta, t.Num("rope_local_base_freq", 10'000.0));
    }
  } else {  // Google's dialect
    UNICORN_ASSIGN_OR_RETURN(c->rope_global.theta, t.Num("rope_theta", 1'000'000.0));
    UNICORN_ASSIGN_OR_RETURN(c->rope_local.theta, t.Num("rope_local_base_freq", 10'000.0));
  }
  if (const json* rs = t.Get("rope_scaling")) {  // scales the global layers only
    if (!rs->is_object())
      return Bad(absl::StrCat("key ", t.Name("rope_scaling"), ": not an object"));
    const double theta = c->rope_global.theta;
    UNICORN_RETURN_IF_ERROR(ReadRope(Obj(*rs, t.Name("rope_scaling.")), &c->rope_global));
    c->rope_global.theta = theta;
  }
  return absl::OkStatus();
}

Status ReadLayerTypes(const Obj& t, Gemma3Config* c) {
  c->layer_types.clear();
  if (const json* lt = t.Get("layer_types")) {  // transformers 5
    if (!lt->is_array() || lt->size() != size_t(c->num_layers)) {
      return Bad(absl::StrCat("key ", t.Name("layer_types"), ": expected a list of ", c->num_layers,
                              " layer types"));
    }
    for (const json& e : *lt) {
      if (e == "sliding_attention") {
        c->layer_types.push_back(LayerType::kSliding);
      } else if (e == "full_attention") {
        c->layer_types.push_back(LayerType::kGlobal);
      } else {
        return Bad(absl::StrCat("key ", t.Name("layer_types"), ": unknown layer type ", e.dump()));
      }
    }
    return absl::OkStatus();
  }
  UNICORN_ASSIGN_OR_RETURN(int pattern, t.Int("sliding_window_pattern", 6));
  if (pattern < 1) {
    return Bad(absl::StrCat("key ", t.Name("sliding_window_pattern"), ": must be >= 1"));
  }
  for (int i = 0; i < c->num_layers; ++i) {
    c->layer_types.push_back((i + 1) % pattern == 0 ? LayerType::kGlobal : LayerType::kSliding);
  }
  return absl::OkStatus();
}

// Special token ids: from the top level (Google's multimodal configs keep
// eos_token_id [1, 106] there) or else the text config.
Status ReadTokenIds(const Obj& top, const Obj& text, Gemma3Config* c) {
  auto pick = [&](const char* k) -> const Obj& { return top.Has(k) ? top : text; };
  UNICORN_ASSIGN_OR_RETURN(c->bos_token_id, pick("bos_token_id").Int("bos_token_id", 2));
  UNICORN_ASSIGN_OR_RETURN(c->pad_token_id, pick("pad_token_id").Int("pad_token_id", 0));
  const Obj& eo = pick("eos_token_id");
  c->eos_token_ids.clear();
  if (const json* e = eo.Get("eos_token_id"); e && e->is_array()) {
    if (e->empty()) return Bad(absl::StrCat("key ", eo.Name("eos_token_id"), ": empty list"));
    for (const json& x : *e) {
      UNICORN_ASSIGN_OR_RETURN(int id, Obj::AsInt(x, eo.Name("eos_token_id")));
      c->eos_token_ids.push_back(id);
    }
  } else {
    UNICORN_ASSIGN_OR_RETURN(int id, eo.Int("eos_token_id", 1));
    c->eos_token_ids.push_back(id);
  }
  c->eos_token_id = c->eos_token_ids[0];
  return absl::OkStatus();
}

Status ReadText(const Obj& t, Gemma3Config* c) {
  // Required: Google's configs always carry these.
  UNICORN_ASSIGN_OR_RETURN(c->hidden_size, t.Int("hidden_size"));
  UNICORN_ASSIGN_OR_RETURN(c->num_layers, t.Int("num_hidden_layers"));
  UNICORN_ASSIGN_OR_RETURN(c->intermediate_size, t.Int("intermediate_size"));
  if (c->num_layers < 1 || c->num_layers > 1024) {
    return Bad(absl::StrCat("key ", t.Name("num_hidden_layers"), ": ", c->num_layers,
                            " is out of range [1, 1024]"));
  }
  // Gemma3TextConfig defaults.
  UNICORN_ASSIGN_OR_RETURN(c->num_heads, t.Int("num_attention_heads", 8));
  UNICORN_ASSIGN_OR_RETURN(c->num_kv_heads, t.Int("num_key_value_heads", 4));
  UNICORN_ASSIGN_OR_RETURN(c->head_dim, t.Int("head_dim", 256));
  UNICORN_ASSIGN_OR_RETURN(c->vocab_size, t.Int("vocab_size", 262'208));
  UNICORN_ASSIGN_OR_RETURN(c->rms_norm_eps, t.Num("rms_norm_eps", 1e-6));
  UNICORN_ASSIGN_OR_RETURN(c->query_pre_attn_scalar, t.Num("query_pre_attn_scalar", 256));
  UNICORN_ASSIGN_OR_RETURN(c->sliding_window, t.Int("sliding_window", 4096));
  UNICORN_ASSIGN_OR_RETURN(c->max_position_embeddings, t.Int("max_position_embeddings", 131'072));
  UNICORN_ASSIGN_OR_RETURN(c->final_logit_softcapping, t.Num("final_logit_softcapping", 0.0));
  UNICORN_ASSIGN_OR_RETURN(c->attn_logit_softcapping, t.Num("attn_logit_softcapping", 0.0));
  UNICORN_ASSIGN_OR_RETURN(std::string act, t.Str("hidden_activation", "gelu_pytorch_tanh"));
  if (act != "gelu_pytorch_tanh") {
    return Bad(absl::StrCat("key ", t.Name("hidden_activation"), ": unsupported activation ", act));
  }
  UNICORN_ASSIGN_OR_RETURN(bool bias, t.Bool("attention_bias", false));
  if (bias) return Bad(absl::StrCat("key ", t.Name("attention_bias"), ": true is not supported"));
  UNICORN_ASSIGN_OR_RETURN(bool bidi, t.Bool("use_bidirectional_attention", false));
  if (bidi) {
    return Bad(absl::StrCat("key ", t.Name("use_bidirectional_attention"),
                            ": true (EmbeddingGemma) is not supported"));
  }
  UNICORN_RETURN_IF_ERROR(ReadRopeAll(t, c));
  return ReadLayerTypes(t, c);
}

Status ReadVision(const Obj& v, Gemma3Config* c) {
  VisionConfig& vc = c->vision;
  // Required, then SiglipVisionConfig's defaults.
  UNICORN_ASSIGN_OR_RETURN(vc.hidden_size, v.Int("hidden_size"));
  UNICORN_ASSIGN_OR_RETURN(vc.num_layers, v.Int("num_hidden_layers"));
  UNICORN_ASSIGN_OR_RETURN(vc.image_size, v.Int("image_size"));
  UNICORN_ASSIGN_OR_RETURN(vc.patch_size, v.Int("patch_size"));
  UNICORN_ASSIGN_OR_RETURN(vc.intermediate_size, v.Int("intermediate_size", 3072));
  UNICORN_ASSIGN_OR_RETURN(vc.num_heads, v.Int("num_attention_heads", 12));
  UNICORN_ASSIGN_OR_RETURN(vc.num_channels, v.Int("num_channels", 3));
  UNICORN_ASSIGN_OR_RETURN(vc.layer_norm_eps, v.Num("layer_norm_eps", 1e-6));
  return absl::OkStatus();
}

StatusOr<Gemma3Config> ParseImpl(std::string_view json_text) {
  json j = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Bad("not valid JSON");
  if (!j.is_object()) return Bad("not a JSON object");
  const Obj top(j, "");

  Gemma3Config c;
  std::string model_type;
  UNICORN_ASSIGN_OR_RETURN(model_type, top.Str("model_type", ""));
  if (const json* a = top.Get("architectures")) {
    if (!a->is_array() || a->empty() || !(*a)[0].is_string()) {
      return Bad("key architectures: expected a list of names");
    }
    c.architecture = (*a)[0].get<std::string>();
  } else if (model_type == "gemma3" || top.Has("text_config")) {
    c.architecture = "Gemma3ForConditionalGeneration";
  } else {
    c.architecture = "Gemma3ForCausalLM";
  }
  if (c.architecture != "Gemma3ForCausalLM" && c.architecture != "Gemma3ForConditionalGeneration") {
    return Bad(absl::StrCat("key architectures: unsupported architecture ", c.architecture,
                            " (Gemma3ForCausalLM or Gemma3ForConditionalGeneration)"));
  }

  if (c.architecture == "Gemma3ForCausalLM") {
    UNICORN_RETURN_IF_ERROR(ReadText(top, &c));
    UNICORN_ASSIGN_OR_RETURN(c.tie_word_embeddings, top.Bool("tie_word_embeddings", true));
    UNICORN_RETURN_IF_ERROR(ReadTokenIds(top, top, &c));
    c.has_vision = false;
    return c;
  }

  const json* tc = top.Get("text_config");
  if (tc == nullptr) return Bad("missing key text_config");
  if (!tc->is_object()) return Bad("key text_config: not an object");
  const Obj text(*tc, "text_config.");
  UNICORN_RETURN_IF_ERROR(ReadText(text, &c));
  UNICORN_ASSIGN_OR_RETURN(bool text_tie, text.Bool("tie_word_embeddings", true));
  UNICORN_ASSIGN_OR_RETURN(c.tie_word_embeddings, top.Bool("tie_word_embeddings", text_tie));
  UNICORN_RETURN_IF_ERROR(ReadTokenIds(top, text, &c));

  const json* vc = top.Get("vision_config");
  if (vc == nullptr) return Bad("missing key vision_config");
  if (!vc->is_object()) return Bad("key vision_config: not an object");
  UNICORN_RETURN_IF_ERROR(ReadVision(Obj(*vc, "vision_config."), &c));
  c.has_vision = true;
  UNICORN_ASSIGN_OR_RETURN(c.vision.mm_tokens_per_image, top.Int("mm_tokens_per_image", 256));
  // Gemma3Config's attribute_map lets *_token_id stand for *_token_index.
  auto id = [&](const char* index_key, const char* id_key, int dflt) -> StatusOr<int> {
    return top.Has(index_key) ? top.Int(index_key) : top.Int(id_key, dflt);
  };
  UNICORN_ASSIGN_OR_RETURN(c.image_token_id, id("image_token_index", "image_token_id", 262'144));
  UNICORN_ASSIGN_OR_RETURN(c.boi_token_id, id("boi_token_index", "boi_token_id", 255'999));
  UNICORN_ASSIGN_OR_RETURN(c.eoi_token_id, id("eoi_token_index", "eoi_token_id", 256'000));
  return c;
}

}  // namespace

StatusOr<Gemma3Config> ParseHfConfig(std::string_view json_text, const std::string& file) {
  StatusOr<Gemma3Config> c;
  try {
    c = ParseImpl(json_text);
  } catch (const json::exception& e) {  // defensive: every access above is type-checked
    c = Bad(e.what());
  }
  if (c.ok()) {
    Status s = ValidateConfig(*c);
    if (!s.ok()) c = s;
  }
  if (!c.ok()) return Annotate(c.status(), absl::StrCat("[config] ", file));
  return c;
}

Status ApplyHfPreprocessorConfig(std::string_view text, const std::string& file, Gemma3Config* c) {
  const std::string ctx = absl::StrCat("[config] ", file);
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad(absl::StrCat(ctx, ": not a JSON object"));
  for (auto [key, dst] : {std::pair{"image_mean", &c->vision.image_mean},
                          std::pair{"image_std", &c->vision.image_std}}) {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_array() || it->size() != 3) {
      return Bad(absl::StrCat(ctx, ": key ", key, ": expected 3 numbers"));
    }
    for (int k = 0; k < 3; ++k) {
      if (!(*it)[k].is_number()) return Bad(absl::StrCat(ctx, ": key ", key, ": not a number"));
      (*dst)[k] = (*it)[k].get<double>();
    }
  }
  return Annotate(ValidateConfig(*c), ctx);
}

StatusOr<Gemma3Config> LoadHfConfig(const std::string& dir) {
  const std::string path = dir + "/config.json";
  UNICORN_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path, "config"));
  UNICORN_ASSIGN_OR_RETURN(Gemma3Config c, ParseHfConfig(text, path));
  const std::string pre = dir + "/preprocessor_config.json";
  if (c.has_vision && std::filesystem::exists(pre)) {
    UNICORN_ASSIGN_OR_RETURN(std::string ptext, ReadTextFile(pre, "config"));
    UNICORN_RETURN_IF_ERROR(ApplyHfPreprocessorConfig(ptext, pre, &c));
  }
  return c;
}

}  // namespace unicorn
