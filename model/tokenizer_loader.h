// Finds the tokenizer of a model the way a user points at the model: a
// Hugging Face folder (tokenizer.json + tokenizer_config.json), a
// tokenizer.json path, or a .gguf file, whose tokenizer.ggml.* metadata is
// used (a GGUF-only model needs nothing beside it).
#pragma once

#include <memory>
#include <string>

#include "common/status.h"
#include "model/gguf_vocab.h"
#include "model/tokenizer.h"

namespace unicorn {

// The tokenizer of the GGUF vocabulary `v` (llama.cpp's SentencePiece-style
// "llama" model: pieces, token types, scores from which merges are derived).
StatusOr<std::unique_ptr<Tokenizer>> TokenizerFromGguf(const GgufVocab& v);

// Folder, tokenizer.json or .gguf, as above. Errors name the path.
StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const std::string& model_path);

}  // namespace unicorn
