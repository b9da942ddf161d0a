#include "model/tokenizer_json.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/mapped_file.h"
#include "nlohmann/json.hpp"

namespace unicorn {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

// Streams tokenizer.json: model.vocab and model.merges go straight into
// vectors, everything else (small) into a DOM.
class TokenizerJsonSax : public nlohmann::json_sax<json> {
 public:
  json root;
  std::vector<std::pair<std::string, int64_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;
  std::string error;

  bool null() override { return Value(json()); }
  bool boolean(bool v) override { return Value(json(v)); }
  bool number_integer(number_integer_t v) override { return Value(json(v)); }
  bool number_unsigned(number_unsigned_t v) override { return Value(json(v)); }
  bool number_float(number_float_t v, const string_t&) override { return Value(json(v)); }
  bool string(string_t& v) override {
    if (!stack_.empty()) {
      Frame& top = stack_.back();
      if (top.mode == Mode::kMergePair) {
        pair_.push_back(std::move(v));
        return true;
      }
      if (top.mode == Mode::kMerges) {  // the older "a b" form
        const size_t sp = v.find(' ');
        if (sp == std::string::npos || v.find(' ', sp + 1) != std::string::npos) {
          return Fail("model.merges[" + std::to_string(merges.size()) + "] \"" + v +
                      "\" is not two pieces separated by one space");
        }
        merges.emplace_back(v.substr(0, sp), v.substr(sp + 1));
        return true;
      }
    }
    return Value(json(std::move(v)));
  }
  bool binary(binary_t&) override { return Fail("unexpected binary value"); }

  bool start_object(std::size_t) override {
    if (!stack_.empty() && stack_.back().mode != Mode::kDom) {
      return Fail("unexpected object in model." + ModeName(stack_.back().mode));
    }
    const Mode mode = ChildMode();
    if (mode == Mode::kMerges) return Fail("model.merges is not an array");
    stack_.push_back({mode == Mode::kVocab ? nullptr : Child(json::object()), mode, {}});
    return true;
  }
  bool key(string_t& k) override {
    stack_.back().key = std::move(k);
    return true;
  }
  bool end_object() override {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    if (!stack_.empty() && stack_.back().mode != Mode::kDom) {
      if (stack_.back().mode != Mode::kMerges) {
        return Fail("unexpected array in model." + ModeName(stack_.back().mode));
      }
      pair_.clear();
      stack_.push_back({nullptr, Mode::kMergePair, {}});
      return true;
    }
    const Mode mode = ChildMode();
    if (mode == Mode::kVocab) return Fail("model.vocab is not an object");
    stack_.push_back({mode == Mode::kMerges ? nullptr : Child(json::array()), mode, {}});
    return true;
  }
  bool end_array() override {
    if (stack_.back().mode == Mode::kMergePair) {
      if (pair_.size() != 2) {
        return Fail("model.merges[" + std::to_string(merges.size()) + "] has " +
                    std::to_string(pair_.size()) + " parts, not 2");
      }
      merges.emplace_back(std::move(pair_[0]), std::move(pair_[1]));
    }
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    if (error.empty())
      error = "JSON syntax error at byte " + std::to_string(position) + ": " + ex.what();
    return false;
  }

 private:
  enum class Mode { kDom, kVocab, kMerges, kMergePair };
  struct Frame {
    json* node;  // null while streaming
    Mode mode;
    std::string key;  // the current key, in an object
  };
  static std::string ModeName(Mode m) {
    return m == Mode::kVocab ? "vocab" : m == Mode::kMerges ? "merges" : "merges[]";
  }
  bool Fail(const std::string& what) {
    if (error.empty()) error = what;
    return false;
  }
  // What a container opened now in a DOM frame is: model.vocab, model.merges
  // or an ordinary value.
  Mode ChildMode() const {
    if (stack_.empty()) return Mode::kDom;
    const Frame& top = stack_.back();
    if (stack_.size() == 2 && stack_[0].key == "model" && top.node->is_object()) {
      if (top.key == "vocab") return Mode::kVocab;
      if (top.key == "merges") return Mode::kMerges;
    }
    return Mode::kDom;
  }
  // Places a new container in the current one (or as the root).
  json* Child(json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return &root;
    }
    json* parent = stack_.back().node;
    if (parent->is_object()) return &((*parent)[stack_.back().key] = std::move(v));
    parent->push_back(std::move(v));
    return &parent->back();
  }
  bool Value(json v) {
    if (!stack_.empty() && stack_.back().mode == Mode::kVocab) {
      if (!v.is_number_integer()) {
        return Fail("model.vocab[\"" + stack_.back().key + "\"] is not an id");
      }
      vocab.emplace_back(stack_.back().key, v.get<int64_t>());
      return true;
    }
    if (!stack_.empty() && stack_.back().mode != Mode::kDom) {
      return Fail("unexpected value " + Dump(v) + " in model." + ModeName(stack_.back().mode));
    }
    const Mode mode = ChildMode();
    if (mode != Mode::kDom) return Fail("model." + ModeName(mode) + " is not a container");
    if (stack_.empty()) {
      root = std::move(v);
    } else {
      json* parent = stack_.back().node;
      if (parent->is_object()) {
        (*parent)[stack_.back().key] = std::move(v);
      } else {
        parent->push_back(std::move(v));
      }
    }
    return true;
  }

  std::vector<Frame> stack_;
  std::vector<std::string> pair_;
};

// `j` is a {"type": type, ...} object.
bool IsType(const json& j, const char* type) {
  return j.is_object() && j.contains("type") && j["type"] == type;
}
bool IsStringPattern(const json& j, const char* s) {
  return j.is_object() && j.contains("String") && j["String"] == s;
}

Status CheckPipeline(const json& root) {
  const json normalizer = root.value("normalizer", json());
  if (!(IsType(normalizer, "Replace") &&
        IsStringPattern(normalizer.value("pattern", json()), " ") &&
        normalizer.value("content", json()) == "\xE2\x96\x81")) {
    return absl::UnimplementedError("normalizer " + Dump(normalizer) +
                                    " is not supported (only Replace ' ' -> '\xE2\x96\x81')");
  }
  const json pre = root.value("pre_tokenizer", json());
  if (!pre.is_null() &&
      !(IsType(pre, "Split") && IsStringPattern(pre.value("pattern", json()), " ") &&
        pre.value("invert", false) == false)) {
    return absl::UnimplementedError("pre_tokenizer " + Dump(pre) +
                                    " is not supported (only null or Split on ' ')");
  }
  const json dec = root.value("decoder", json());
  bool dec_ok = IsType(dec, "Sequence") && dec.contains("decoders") && dec["decoders"].is_array() &&
                dec["decoders"].size() == 3;
  if (dec_ok) {
    const json& d = dec["decoders"];
    dec_ok = IsType(d[0], "Replace") &&
             IsStringPattern(d[0].value("pattern", json()), "\xE2\x96\x81") &&
             d[0].value("content", json()) == " " && IsType(d[1], "ByteFallback") &&
             IsType(d[2], "Fuse");
  }
  if (!dec_ok) {
    return absl::UnimplementedError(
        "decoder " + Dump(dec) +
        " is not supported (only Sequence [Replace '\xE2\x96\x81' -> ' ', "
        "ByteFallback, Fuse])");
  }
  const json& model = root["model"];
  if (model.value("type", std::string()) != "BPE") {
    return absl::UnimplementedError("model.type " + Dump(model.value("type", json())) +
                                    " is not supported (only BPE)");
  }
  const json dropout = model.value("dropout", json());
  if (!dropout.is_null() && !(dropout.is_number() && dropout.get<double>() == 0.0)) {
    return absl::UnimplementedError("model.dropout " + Dump(dropout) + " is not supported");
  }
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    const json v = model.value(k, json());
    if (!v.is_null() && v != "") {
      return absl::UnimplementedError(absl::StrCat("model.", k, " ", Dump(v), " is not supported"));
    }
  }
  if (model.value("ignore_merges", false)) {
    return absl::UnimplementedError("model.ignore_merges true is not supported");
  }
  return absl::OkStatus();
}

// A token named in tokenizer_config.json: a string, or {"content": ...}.
std::string TokenName(const json& config, const char* key) {
  if (!config.contains(key)) return {};
  const json& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) {
    return v["content"].get<std::string>();
  }
  return {};
}

StatusOr<json> ReadJsonFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  json j = json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  return j;
}

StatusOr<TokenizerFolder> ReadTokenizerJson(const std::string& path) {
  UNICORN_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  TokenizerJsonSax sax;
  const char* begin = reinterpret_cast<const char*>(file->data());
  bool ok = false;
  try {
    ok = json::sax_parse(begin, begin + file->size(), &sax);
  } catch (const std::exception& e) {
    if (sax.error.empty()) sax.error = e.what();
  }
  if (!ok || !sax.error.empty()) {
    return absl::InvalidArgumentError(sax.error.empty() ? "not valid JSON" : sax.error);
  }
  const json& root = sax.root;
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return absl::InvalidArgumentError("no \"model\" object (not a tokenizers file?)");
  }
  UNICORN_RETURN_IF_ERROR(CheckPipeline(root));
  if (sax.vocab.empty()) return absl::InvalidArgumentError("model.vocab is missing or empty");

  TokenizerFolder out;
  TokenizerVocab& v = out.vocab;
  // Pieces: the model vocabulary, then the added tokens (which may extend it).
  int64_t max_id = -1;
  for (const auto& [piece, id] : sax.vocab) {
    if (id < 0 || id > (int64_t(1) << 30)) {
      return absl::InvalidArgumentError(
          absl::StrCat("model.vocab[\"", piece, "\"] = ", id, " is not a valid id"));
    }
    max_id = std::max(max_id, id);
  }
  const json added = root.value("added_tokens", json::array());
  if (!added.is_array()) return absl::InvalidArgumentError("added_tokens is not an array");
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
        !a.contains("content") || !a["content"].is_string()) {
      return absl::InvalidArgumentError("added_tokens entry " + Dump(a) +
                                        " lacks an integer id or a string content");
    }
    const int64_t id = a["id"].get<int64_t>();
    if (id < 0 || id > (int64_t(1) << 30)) {
      return absl::InvalidArgumentError("added_tokens entry " + Dump(a) + ": invalid id");
    }
    max_id = std::max(max_id, id);
  }
  const size_t n = size_t(max_id + 1);
  std::vector<uint8_t> seen(n, 0);
  v.pieces.resize(n);
  v.types.assign(n, TokenType::kNormal);
  for (auto& [piece, id] : sax.vocab) {
    if (seen[size_t(id)]) {
      return absl::InvalidArgumentError(absl::StrCat("model.vocab: id ", id, " is used twice"));
    }
    seen[size_t(id)] = 1;
    v.pieces[size_t(id)] = std::move(piece);
  }
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = v.pieces[i];
    if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') v.types[i] = TokenType::kByte;
  }
  for (const json& a : added) {
    const size_t id = size_t(a["id"].get<int64_t>());
    const std::string content = a["content"].get<std::string>();
    for (const char* flag : {"normalized", "lstrip", "rstrip", "single_word"}) {
      if (a.value(flag, false)) {
        return absl::UnimplementedError(
            absl::StrCat("added token ", Dump(a), ": ", flag, " true is not supported"));
      }
    }
    if (seen[id] && v.pieces[id] != content) {
      return absl::InvalidArgumentError(absl::StrCat("added token ", id, " \"", content,
                                                     "\" differs from model.vocab's \"",
                                                     v.pieces[id], "\""));
    }
    seen[id] = 1;
    v.pieces[id] = content;
    v.types[id] = a.value("special", false) ? TokenType::kControl : TokenType::kUserDefined;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!seen[i]) return absl::InvalidArgumentError(absl::StrCat("no piece has id ", i));
  }
  v.merges = std::move(sax.merges);
  if (v.merges.empty()) return absl::InvalidArgumentError("model.merges is missing or empty");

  const json& model = root["model"];
  v.byte_fallback = model.value("byte_fallback", false);
  v.fuse_unk = model.value("fuse_unk", false);
  const json unk = model.value("unk_token", json());
  if (unk.is_string()) {
    for (size_t i = 0; i < n; ++i) {
      if (v.pieces[i] == unk.get<std::string>()) {
        v.unk_id = int32_t(i);
        if (v.types[i] == TokenType::kControl) v.types[i] = TokenType::kUnknown;
        break;
      }
    }
  }
  return out;
}

int32_t FindPiece(const TokenizerVocab& v, const std::string& piece) {
  if (piece.empty()) return -1;
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    if (v.pieces[i] == piece) return int32_t(i);
  }
  return -1;
}

// Applies tokenizer_config.json: special tokens, add_bos/add_eos, template.
Status ApplyConfig(const json& config, TokenizerFolder& out) {
  if (!config.is_object()) return absl::InvalidArgumentError("not a JSON object");
  TokenizerVocab& v = out.vocab;
  auto id_of = [&](const char* key, const char* fallback) -> StatusOr<int32_t> {
    std::string name = TokenName(config, key);
    const bool named = !name.empty();
    if (!named) name = fallback;
    const int32_t id = FindPiece(v, name);
    if (named && id < 0) {
      return absl::InvalidArgumentError(absl::StrCat(key, " \"", name, "\" is not a piece"));
    }
    return id;
  };
  UNICORN_ASSIGN_OR_RETURN(v.bos_id, id_of("bos_token", "<bos>"));
  UNICORN_ASSIGN_OR_RETURN(v.eos_id, id_of("eos_token", "<eos>"));
  UNICORN_ASSIGN_OR_RETURN(v.pad_id, id_of("pad_token", "<pad>"));
  UNICORN_ASSIGN_OR_RETURN(int32_t unk, id_of("unk_token", "<unk>"));
  if (v.unk_id < 0) v.unk_id = unk;
  // Hugging Face's all_special_ids also holds the mask token (GemmaTokenizer
  // defaults it to <mask>) and the extra special tokens (image markers).
  UNICORN_ASSIGN_OR_RETURN(int32_t mask, id_of("mask_token", "<mask>"));
  if (mask >= 0) v.extra_special_ids.push_back(mask);
  for (const char* key : {"boi_token", "eoi_token", "image_token"}) {
    const int32_t id = FindPiece(v, TokenName(config, key));
    if (id >= 0) v.extra_special_ids.push_back(id);
  }
  if (config.contains("extra_special_tokens") && config["extra_special_tokens"].is_object()) {
    for (const auto& [k, val] : config["extra_special_tokens"].items()) {
      if (!val.is_string()) continue;
      const int32_t id = FindPiece(v, val.get<std::string>());
      if (id >= 0) v.extra_special_ids.push_back(id);
    }
  }
  v.add_bos = config.value("add_bos_token", true);
  v.add_eos = config.value("add_eos_token", false);
  if (config.contains("chat_template")) {
    const json& t = config["chat_template"];
    if (t.is_string()) {
      out.chat_template = t.get<std::string>();
    } else if (t.is_array()) {  // [{"name": "default", "template": ...}, ...]
      for (const json& e : t) {
        if (e.is_object() && e.value("name", std::string()) == "default" &&
            e.contains("template") && e["template"].is_string()) {
          out.chat_template = e["template"].get<std::string>();
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<TokenizerFolder> ReadTokenizerFolder(const std::string& dir) {
  std::error_code ec;
  fs::path folder(dir);
  if (fs::is_regular_file(folder, ec)) {
    if (folder.extension() == ".gguf") {
      return absl::UnimplementedError(absl::StrCat(
          "[tokenizer] ", dir,
          ": reading the tokenizer from a GGUF file is not supported yet; pass the model folder "
          "that holds tokenizer.json"));
    }
    if (folder.filename() != "tokenizer.json") {
      return absl::InvalidArgumentError(
          absl::StrCat("[tokenizer] ", dir, ": not a model folder or a tokenizer.json file"));
    }
    folder = folder.parent_path();
  } else if (!fs::is_directory(folder, ec)) {
    return absl::NotFoundError(absl::StrCat("[tokenizer] ", dir, ": no such folder"));
  }
  const std::string json_path = (folder / "tokenizer.json").string();
  if (!fs::exists(json_path, ec)) {
    return absl::NotFoundError(absl::StrCat("[tokenizer] ", json_path,
                                            ": not found (the model folder needs tokenizer.json)"));
  }
  auto folder_or = ReadTokenizerJson(json_path);
  if (!folder_or.ok()) return Annotate(folder_or.status(), absl::StrCat("[tokenizer] ", json_path));
  TokenizerFolder out = std::move(folder_or).value();
  out.json_path = json_path;

  const std::string config_path = (folder / "tokenizer_config.json").string();
  if (fs::exists(config_path, ec)) {
    auto config = ReadJsonFile(config_path);
    Status s = config.ok() ? ApplyConfig(*config, out) : config.status();
    if (!s.ok()) return Annotate(s, absl::StrCat("[tokenizer] ", config_path));
  } else {
    Status s = ApplyConfig(json::object(), out);  // defaults: <bos>, <eos>, add_bos
    if (!s.ok()) return Annotate(s, absl::StrCat("[tokenizer] ", json_path));
  }
  return out;
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFolder(const std::string& dir) {
  UNICORN_ASSIGN_OR_RETURN(TokenizerFolder folder, ReadTokenizerFolder(dir));
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> t,
                           Build(std::move(folder.vocab), "[tokenizer] " + folder.json_path));
  t->set_chat_template_source(std::move(folder.chat_template));
  return t;
}

}  // namespace unicorn
