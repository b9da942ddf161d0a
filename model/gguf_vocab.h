// Tokenizer data carried by a GGUF (tokenizer.ggml.* keys, as written by
// llama.cpp's convert_hf_to_gguf.py), as plain data for the tokenizer to
// build from. Nothing here tokenizes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/gguf.h"

namespace unicorn {

// tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class GgufTokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct GgufVocab {
  std::string model;                 // tokenizer.ggml.model: "llama" (SentencePiece) | "gpt2" (BPE)
  std::string pre;                   // tokenizer.ggml.pre ("default" for Gemma)
  std::vector<std::string> tokens;   // id -> piece; SentencePiece pieces keep U+2581 for spaces
  std::vector<float> scores;         // empty or one per token (SentencePiece merge priority)
  std::vector<int32_t> token_types;  // empty or one per token (GgufTokenType)
  std::vector<std::string> merges;   // "a b" (BPE only)
  int32_t bos_id = -1, eos_id = -1, eot_id = -1, unk_id = -1, pad_id = -1;  // -1: absent
  std::optional<bool> add_bos, add_eos, add_space_prefix;  // absent: the tokenizer's default
  std::string chat_template;                               // tokenizer.chat_template

  friend bool operator==(const GgufVocab&, const GgufVocab&) = default;
};

// The vocabulary in `md`, or nullopt when the file has no tokenizer.ggml.model.
// Errors (wrong types, lengths that disagree, ids out of range) name the key.
StatusOr<std::optional<GgufVocab>> VocabFromGguf(const GgufMetadata& md);

// Writes tokenizer.ggml.* / tokenizer.chat_template with the types llama.cpp
// expects (u32 ids, f32 scores, i32 token types, bool flags).
void VocabToGguf(const GgufVocab& v, GgufMetadata* md);

// A SentencePiece-style ("llama") vocabulary of `vocab_size` tokens built
// from a Hugging Face tokenizer.json + tokenizer_config.json in `dir`, the
// way convert_hf_to_gguf.py's _create_vocab_sentencepiece does from
// tokenizer.model: ids without a piece become "[PAD<id>]" (unused), ids at
// or past vocab_size are dropped, added tokens become control (special, or
// <unusedN>/<mask>) or user-defined (U+2581 turned into spaces) tokens.
// tokenizer.json carries no SentencePiece scores; a SentencePiece BPE model
// stores its normal pieces sorted by score 0, -1, -2, ... and Hugging Face's
// conversion keeps their ids (and orders its merges by those scores), so the
// k-th normal piece gets score -k. Checked against llama.cpp's conversion
// of tokenizer.model (tests/model/refs_test.cc).
StatusOr<GgufVocab> VocabFromHfTokenizer(const std::string& dir, int vocab_size);

// A small stand-in vocabulary for random-weight test models: <pad> <eos>
// <bos> <unk>, the 256 byte pieces <0x00>..<0xFF>, then "[PAD<id>]".
GgufVocab SyntheticVocab(int vocab_size);

}  // namespace unicorn
