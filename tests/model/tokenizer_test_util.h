// Shared by the tokenizer tests: the real Gemma 3 tokenizer (loaded once per
// process) and the reference data recorded from Hugging Face by
// tools/refs/tokenizer_refs.py.
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "model/tokenizer.h"
#include "nlohmann/json.hpp"

namespace unicorn::testing {

// The checkout has ../shared beside it on CI and dev machines.
inline constexpr char kRealTokenizerDir[] = UNICORN_SOURCE_DIR "/../shared/gemma3-tokenizer";
inline constexpr char kDataDir[] = UNICORN_SOURCE_DIR "/tests/data/tokenizer";

// The real tokenizer, or null (with the reason in *why) when the files are absent.
inline const Tokenizer* RealTokenizer(std::string* why) {
  static std::unique_ptr<Tokenizer> tok;
  static std::string error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto t = Tokenizer::FromFolder(kRealTokenizerDir);
    if (t.ok()) {
      tok = std::move(t).value();
    } else {
      error = t.status().ToString();
    }
  }
  if (why) *why = error;
  return tok.get();
}

#define UNICORN_REAL_TOKENIZER_OR_SKIP(var)                                            \
  std::string var##_why;                                                               \
  const ::unicorn::Tokenizer* var = ::unicorn::testing::RealTokenizer(&var##_why);     \
  if (var == nullptr) {                                                                \
    GTEST_SKIP() << "Gemma 3 tokenizer files not usable at "                           \
                 << ::unicorn::testing::kRealTokenizerDir << " (" << var##_why << ")"; \
  }

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline nlohmann::json ReadJson(const std::string& name) {
  return nlohmann::json::parse(ReadFile(std::string(kDataDir) + "/" + name));
}

// The corpus texts, in order.
inline std::vector<std::string> CorpusTexts() {
  std::vector<std::string> texts;
  std::ifstream in(std::string(kDataDir) + "/corpus.jsonl");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) texts.push_back(nlohmann::json::parse(line)["text"].get<std::string>());
  }
  return texts;
}

// The benchmark text: corpus lines joined by '\n', cycled to >= 1 MB
// (tools/refs/tokenizer_refs.py's bench_text).
inline std::string BenchText(const std::vector<std::string>& texts, size_t bytes = 1000000) {
  std::string out;
  for (size_t i = 0; out.size() < bytes; ++i) {
    out += texts[i % texts.size()];
    out += '\n';
  }
  return out;
}

}  // namespace unicorn::testing
