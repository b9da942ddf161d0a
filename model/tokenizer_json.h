// Reading a Hugging Face tokenizer folder (tokenizer.json and
// tokenizer_config.json) into plain data (model/tokenizer.h's TokenizerVocab).
//
// Only what Gemma 3's files use is accepted; anything else is an Unimplemented
// error naming the file and the component, never a silent difference:
//   model         BPE; byte_fallback and fuse_unk as given; no dropout, no
//                 continuing_subword_prefix / end_of_word_suffix, ignore_merges
//                 false; merges as [a, b] pairs or "a b" strings
//   normalizer    Replace ' ' -> '▁'
//   pre_tokenizer null, or Split on ' ' (a no-op after the normalizer)
//   decoder       Sequence [Replace '▁' -> ' ', ByteFallback, Fuse]
//   added_tokens  normalized, lstrip, rstrip, single_word all false
// tokenizer.json is 33 MB for Gemma 3: it is read with a streaming parser that
// never builds a DOM for the vocabulary and the merges.
#pragma once

#include <string>

#include "common/status.h"
#include "model/tokenizer.h"

namespace unicorn {

struct TokenizerFolder {
  TokenizerVocab vocab;
  std::string chat_template;  // tokenizer_config.json's chat_template, "" if none
  std::string json_path;      // the tokenizer.json read
};

// `dir` is a folder holding tokenizer.json (tokenizer_config.json optional),
// or the path of a tokenizer.json file.
StatusOr<TokenizerFolder> ReadTokenizerFolder(const std::string& dir);

}  // namespace unicorn
