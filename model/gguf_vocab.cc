#include "model/gguf_vocab.h"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <unordered_map>

#include "nlohmann/json.hpp"

namespace unicorn {
namespace {

Status Bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

StatusOr<std::vector<std::string>> StrArray(const GgufMetadata& md, const char* key) {
  const GgufValue* v = md.Find(key);
  if (v == nullptr) return std::vector<std::string>();
  if (!v->is_array || v->type != GgufType::kString) {
    return Bad(absl::StrCat("metadata key ", key, ": expected an array of strings"));
  }
  return v->s;
}

StatusOr<int32_t> Id(const GgufMetadata& md, const char* key, size_t n_tokens) {
  if (!md.Has(key)) return -1;
  UNICORN_ASSIGN_OR_RETURN(int64_t id, md.Int(key));
  if (id < 0 || uint64_t(id) >= n_tokens) {
    return Bad(absl::StrCat("metadata key ", key, ": token id ", id, " is out of range (", n_tokens,
                            " tokens)"));
  }
  return int32_t(id);
}

StatusOr<std::optional<bool>> OptBool(const GgufMetadata& md, const char* key) {
  if (!md.Has(key)) return std::optional<bool>();
  UNICORN_ASSIGN_OR_RETURN(bool b, md.Bool(key, false));
  return std::optional<bool>(b);
}

}  // namespace

StatusOr<std::optional<GgufVocab>> VocabFromGguf(const GgufMetadata& md) {
  if (!md.Has("tokenizer.ggml.model")) return std::optional<GgufVocab>();
  GgufVocab v;
  UNICORN_ASSIGN_OR_RETURN(v.model, md.String("tokenizer.ggml.model"));
  UNICORN_ASSIGN_OR_RETURN(v.pre, md.String("tokenizer.ggml.pre", ""));
  UNICORN_ASSIGN_OR_RETURN(v.tokens, StrArray(md, "tokenizer.ggml.tokens"));
  UNICORN_ASSIGN_OR_RETURN(v.merges, StrArray(md, "tokenizer.ggml.merges"));
  const size_t n = v.tokens.size();
  if (const GgufValue* s = md.Find("tokenizer.ggml.scores")) {
    if (!s->is_array || s->f.size() != n) {
      return Bad(absl::StrCat("metadata key tokenizer.ggml.scores: expected ", n, " numbers"));
    }
    v.scores.assign(s->f.begin(), s->f.end());
  }
  if (const GgufValue* t = md.Find("tokenizer.ggml.token_type")) {
    if (!t->is_array || (t->i.size() != n && t->u.size() != n)) {
      return Bad(absl::StrCat("metadata key tokenizer.ggml.token_type: expected ", n, " integers"));
    }
    v.token_types.resize(n);
    for (size_t k = 0; k < n; ++k) {
      v.token_types[k] = int32_t(t->i.empty() ? int64_t(t->u[k]) : t->i[k]);
    }
  }
  UNICORN_ASSIGN_OR_RETURN(v.bos_id, Id(md, "tokenizer.ggml.bos_token_id", n));
  UNICORN_ASSIGN_OR_RETURN(v.eos_id, Id(md, "tokenizer.ggml.eos_token_id", n));
  UNICORN_ASSIGN_OR_RETURN(v.eot_id, Id(md, "tokenizer.ggml.eot_token_id", n));
  UNICORN_ASSIGN_OR_RETURN(v.unk_id, Id(md, "tokenizer.ggml.unknown_token_id", n));
  UNICORN_ASSIGN_OR_RETURN(v.pad_id, Id(md, "tokenizer.ggml.padding_token_id", n));
  UNICORN_ASSIGN_OR_RETURN(v.add_bos, OptBool(md, "tokenizer.ggml.add_bos_token"));
  UNICORN_ASSIGN_OR_RETURN(v.add_eos, OptBool(md, "tokenizer.ggml.add_eos_token"));
  UNICORN_ASSIGN_OR_RETURN(v.add_space_prefix, OptBool(md, "tokenizer.ggml.add_space_prefix"));
  UNICORN_ASSIGN_OR_RETURN(v.chat_template, md.String("tokenizer.chat_template", ""));
  return std::optional<GgufVocab>(std::move(v));
}

void VocabToGguf(const GgufVocab& v, GgufMetadata* md) {
  md->Set("tokenizer.ggml.model", GgufValue::Str(v.model));
  if (!v.pre.empty()) md->Set("tokenizer.ggml.pre", GgufValue::Str(v.pre));
  md->Set("tokenizer.ggml.tokens", GgufValue::StrArray(v.tokens));
  if (!v.scores.empty()) {
    md->Set("tokenizer.ggml.scores",
            GgufValue::FloatArray(GgufType::kF32, {v.scores.begin(), v.scores.end()}));
  }
  if (!v.token_types.empty()) {
    md->Set("tokenizer.ggml.token_type",
            GgufValue::IntArray(GgufType::kI32, {v.token_types.begin(), v.token_types.end()}));
  }
  if (!v.merges.empty()) md->Set("tokenizer.ggml.merges", GgufValue::StrArray(v.merges));
  auto id = [&](const char* key, int32_t x) {
    if (x >= 0) md->Set(key, GgufValue::U32(uint32_t(x)));
  };
  id("tokenizer.ggml.bos_token_id", v.bos_id);
  id("tokenizer.ggml.eos_token_id", v.eos_id);
  id("tokenizer.ggml.eot_token_id", v.eot_id);
  id("tokenizer.ggml.unknown_token_id", v.unk_id);
  id("tokenizer.ggml.padding_token_id", v.pad_id);
  auto flag = [&](const char* key, std::optional<bool> b) {
    if (b) md->Set(key, GgufValue::Bool(*b));
  };
  flag("tokenizer.ggml.add_bos_token", v.add_bos);
  flag("tokenizer.ggml.add_eos_token", v.add_eos);
  flag("tokenizer.ggml.add_space_prefix", v.add_space_prefix);
  if (!v.chat_template.empty()) {
    md->Set("tokenizer.chat_template", GgufValue::Str(v.chat_template));
  }
}

GgufVocab SyntheticVocab(int vocab_size) {
  GgufVocab v;
  v.model = "llama";
  v.pre = "default";
  v.tokens.resize(vocab_size);
  v.scores.assign(vocab_size, 0.0f);
  v.token_types.assign(vocab_size, int32_t(GgufTokenType::kUnused));
  const char* special[] = {"<pad>", "<eos>", "<bos>", "<unk>"};
  for (int i = 0; i < vocab_size; ++i) {
    if (i < 4) {
      v.tokens[i] = special[i];
      v.token_types[i] = int32_t(i == 3 ? GgufTokenType::kUnknown : GgufTokenType::kControl);
    } else if (i < 4 + 256) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", i - 4);
      v.tokens[i] = buf;
      v.token_types[i] = int32_t(GgufTokenType::kByte);
    } else {
      v.tokens[i] = "[PAD" + std::to_string(i) + "]";
    }
  }
  v.pad_id = 0;
  v.eos_id = 1;
  v.bos_id = 2;
  v.unk_id = 3;
  v.add_bos = true;
  v.add_eos = false;
  v.add_space_prefix = false;
  return v;
}

namespace {

using nlohmann::json;

StatusOr<json> ReadJson(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return ErrnoError(absl::StrCat("[tokenizer] open(", path, ")"), errno);
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Bad(absl::StrCat("[tokenizer] ", path, ": not a JSON object"));
  }
  return j;
}

// tokenizer_config.json names special tokens as strings or {"content": ...}.
std::string TokenText(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_object() && j.contains("content") && j["content"].is_string()) {
    return j["content"].get<std::string>();
  }
  return "";
}

bool LooksSpecial(const std::string& t) {
  // convert_hf_to_gguf.py, TextModel.does_token_look_special.
  auto starts = [&](const char* p) { return t.rfind(p, 0) == 0; };
  auto ends = [&](const char* s) {
    const size_t n = std::strlen(s);
    return t.size() >= n && t.compare(t.size() - n, n, s) == 0;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" ||
         (starts("<|") && ends("|>")) || (starts("<unused") && ends(">"));
}

bool IsBytePiece(const std::string& t) {
  return t.size() == 6 && t.rfind("<0x", 0) == 0 && t[5] == '>' && std::isxdigit(t[3]) &&
         std::isxdigit(t[4]);
}

std::string SpacesFromU2581(std::string t) {
  static const std::string kU2581 = "\xe2\x96\x81";
  for (size_t p = 0; (p = t.find(kU2581, p)) != std::string::npos;) t.replace(p, 3, " ");
  return t;
}

StatusOr<GgufVocab> FromHf(const json& tok, const json& cfg, int vocab_size) {
  auto model = tok.find("model");
  if (model == tok.end() || !model->is_object() || !model->contains("vocab") ||
      !(*model)["vocab"].is_object()) {
    return Bad("no model.vocab object");
  }
  GgufVocab v;
  v.model = "llama";
  v.pre = "default";
  v.tokens.resize(vocab_size);
  v.scores.assign(vocab_size, -10000.0f);
  v.token_types.assign(vocab_size, int32_t(GgufTokenType::kUnused));
  for (int i = 0; i < vocab_size; ++i) v.tokens[i] = "[PAD" + std::to_string(i) + "]";

  std::unordered_map<std::string, int> ids;
  for (const auto& [piece, id] : (*model)["vocab"].items()) {
    if (!id.is_number_unsigned()) return Bad(absl::StrCat("model.vocab.", piece, ": bad id"));
    const uint64_t i = id.get<uint64_t>();
    ids[piece] = int(std::min<uint64_t>(i, INT32_MAX));
    if (i >= uint64_t(vocab_size)) continue;
    v.tokens[i] = piece;
    v.token_types[i] = int32_t(IsBytePiece(piece) ? GgufTokenType::kByte : GgufTokenType::kNormal);
  }
  std::string unk;
  if (model->contains("unk_token") && (*model)["unk_token"].is_string()) {
    unk = (*model)["unk_token"].get<std::string>();
  }
  if (auto added = tok.find("added_tokens"); added != tok.end() && added->is_array()) {
    for (const json& a : *added) {
      if (!a.is_object() || !a.contains("id") || !a["id"].is_number_unsigned() ||
          !a.contains("content") || !a["content"].is_string()) {
        return Bad("added_tokens: bad entry");
      }
      const uint64_t i = a["id"].get<uint64_t>();
      std::string text = a["content"].get<std::string>();
      ids[text] = int(std::min<uint64_t>(i, INT32_MAX));
      if (i >= uint64_t(vocab_size)) continue;  // like the converter: out of range, ignored
      const bool special = a.contains("special") && a["special"] == true;
      if (special || LooksSpecial(text)) {
        v.token_types[i] = int32_t(GgufTokenType::kControl);
      } else {
        text = SpacesFromU2581(text);
        v.token_types[i] = int32_t(GgufTokenType::kUserDefined);
      }
      v.tokens[i] = text;
      v.scores[i] = -1000.0f;
    }
  }
  auto id_of = [&](const std::string& text) -> int32_t {
    auto it = ids.find(text);
    return it == ids.end() || it->second >= vocab_size ? -1 : it->second;
  };
  if (!unk.empty() && id_of(unk) >= 0) {
    v.unk_id = id_of(unk);
    // A special added token stays CONTROL (the converter lets
    // tokenizer_config's added_tokens_decoder override SentencePiece's type).
    if (v.token_types[v.unk_id] == int32_t(GgufTokenType::kNormal)) {
      v.token_types[v.unk_id] = int32_t(GgufTokenType::kUnknown);
    }
  }
  // SentencePiece scores: a BPE model lists its normal pieces by descending
  // score 0, -1, -2, ... and Hugging Face keeps their ids; bytes score 0.
  int normal = 0;
  for (int i = 0; i < vocab_size; ++i) {
    const auto t = GgufTokenType(v.token_types[i]);
    if (t == GgufTokenType::kByte) v.scores[i] = 0.0f;
    if (t == GgufTokenType::kNormal) v.scores[i] = -float(normal++);
  }
  auto cfg_id = [&](const char* key) -> int32_t {
    return cfg.contains(key) ? id_of(TokenText(cfg[key])) : -1;
  };
  v.bos_id = cfg_id("bos_token");
  v.eos_id = cfg_id("eos_token");
  v.pad_id = cfg_id("pad_token");
  if (int32_t u = cfg_id("unk_token"); u >= 0) v.unk_id = u;
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean()) {
    v.add_bos = cfg["add_bos_token"].get<bool>();
  }
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean()) {
    v.add_eos = cfg["add_eos_token"].get<bool>();
  }
  v.add_space_prefix = false;  // Gemma: convert_hf_to_gguf.py's Gemma3Model.set_vocab
  if (cfg.contains("chat_template") && cfg["chat_template"].is_string()) {
    v.chat_template = cfg["chat_template"].get<std::string>();
  }
  return v;
}

}  // namespace

StatusOr<GgufVocab> VocabFromHfTokenizer(const std::string& dir, int vocab_size) {
  const std::string tok_path = dir + "/tokenizer.json";
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (vocab_size <= 0) return Bad(absl::StrCat("[tokenizer] ", dir, ": vocab size must be > 0"));
  UNICORN_ASSIGN_OR_RETURN(json tok, ReadJson(tok_path));
  json cfg = json::object();
  if (std::ifstream(cfg_path).good()) {
    UNICORN_ASSIGN_OR_RETURN(cfg, ReadJson(cfg_path));
  }
  StatusOr<GgufVocab> v;
  try {
    v = FromHf(tok, cfg, vocab_size);
  } catch (const json::exception& e) {
    v = Bad(e.what());
  }
  if (!v.ok()) return Annotate(v.status(), absl::StrCat("[tokenizer] ", tok_path));
  return v;
}

}  // namespace unicorn
