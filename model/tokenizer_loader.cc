#include "model/tokenizer_loader.h"

#include <filesystem>

#include "model/model_files.h"

namespace unicorn {

StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const GgufVocab& v) {
  if (v.model != "llama") {
    return absl::UnimplementedError(absl::StrCat("[tokenizer] GGUF tokenizer.ggml.model '", v.model,
                                                 "': only 'llama' (Gemma's) is read"));
  }
  TokenizerVocab t;
  t.pieces = v.tokens;
  // llama.cpp's converter writes U+2581 as a space in user-defined pieces
  // (Gemma's whitespace-run tokens), so they match runs of spaces in the raw
  // text, which gives Hugging Face's ids for ordinary text. Known difference:
  // a literal "▁▁" typed in the text stays two "▁" pieces here (Hugging Face
  // merges it, with merges a GGUF does not carry).
  for (int32_t type : v.token_types) {
    if (type < 1 || type > 6) {
      return absl::InvalidArgumentError(absl::StrCat("[tokenizer] GGUF token type ", type));
    }
    t.types.push_back(static_cast<TokenType>(type));
  }
  for (const std::string& m : v.merges) {
    size_t sp = m.find(' ');
    if (sp == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat("[tokenizer] GGUF merge '", m, "'"));
    }
    t.merges.push_back({m.substr(0, sp), m.substr(sp + 1)});
  }
  t.scores = v.scores;
  t.bos_id = v.bos_id;
  // llama.cpp writes <end_of_turn> as eos for Gemma 3 (gguf-py SpecialVocab);
  // eot, when present, is the end of a reply.
  t.eos_id = v.eot_id >= 0 ? v.eot_id : v.eos_id;
  t.unk_id = v.unk_id;
  t.pad_id = v.pad_id;
  t.add_bos = v.add_bos.value_or(true);
  t.add_eos = v.add_eos.value_or(false);
  return Tokenizer::FromVocab(std::move(t));
}

StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_path) {
  namespace fs = std::filesystem;
  if (fs::path(model_path).extension() != ".gguf") return Tokenizer::FromFolder(model_path);
  UNICORN_ASSIGN_OR_RETURN(auto files, ModelFiles::Open(model_path));
  if (const GgufVocab* v = files->vocab()) {
    auto t = TokenizerFromGguf(*v);
    if (!t.ok()) return Annotate(t.status(), model_path);
    return t;
  }
  // No vocabulary inside: a tokenizer.json beside the file.
  return Tokenizer::FromFolder(fs::path(model_path).parent_path().string());
}

}  // namespace unicorn
