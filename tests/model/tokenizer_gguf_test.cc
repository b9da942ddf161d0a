// A GGUF-only model's tokenizer: Gemma 3's vocabulary as llama.cpp stores it
// in tokenizer.ggml.* (pieces, types, scores; no merges) gives exactly
// Hugging Face's ids on the whole corpus, and the llama.cpp-converted tiny
// GGUF tokenizes like its tokenizer.json.
#include <gtest/gtest.h>

#include "model/gguf_vocab.h"
#include "model/tokenizer_loader.h"
#include "tests/model/tokenizer_test_util.h"

namespace unicorn {
namespace {

using nlohmann::json;

TEST(GgufTokenizer, GemmaVocabularyFromGgufEqualsHuggingFace) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(folder);
  auto vocab = VocabFromHfTokenizer(testing::kRealTokenizerDir, 262144);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  vocab->merges.clear();  // as in llama.cpp's files: merges come from the scores
  auto tok = TokenizerFromGguf(*vocab);
  ASSERT_TRUE(tok.ok()) << tok.status();
  const std::vector<std::string> texts = testing::CorpusTexts();
  const json rows = testing::ReadJson("corpus_refs.json")["rows"];
  ASSERT_EQ(rows.size(), texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    // <image_soft_token> (262144) lies past the 262144 text pieces that
    // llama.cpp keeps in a GGUF (and Google's QAT files): not in this vocabulary.
    if (texts[i].find("<image_soft_token>") != std::string::npos) continue;
    // A literal U+2581 in the text: see TokenizerFromGguf's known difference.
    if (texts[i].find("\xe2\x96\x81") != std::string::npos) continue;
    EXPECT_EQ((*tok)->Encode(texts[i]), rows[i]["ids"].get<std::vector<int32_t>>())
        << "corpus line " << i + 1;
  }
}

TEST(GgufTokenizer, LlamaCppConvertedFileTokenizesLikeItsTokenizerJson) {
  const std::string dir = UNICORN_SOURCE_DIR "/tests/data/models/text-small";
  auto from_gguf = LoadTokenizer(dir + "/gguf/text-small-q8_0.gguf");
  ASSERT_TRUE(from_gguf.ok()) << from_gguf.status();
  auto from_json = LoadTokenizer(dir);
  ASSERT_TRUE(from_json.ok()) << from_json.status();
  // (Runs of spaces differ on this tiny vocabulary, whose BPE lacks Gemma's
  // "▁▁" merges; the real vocabulary's are checked above.)
  for (const char* text : {"Hello world, the cat sat.", "two spaces\n\nand lines",
                           "<start_of_turn>user\nhi<end_of_turn>", "ünïcödé 123"}) {
    EXPECT_EQ((*from_gguf)->Encode(text), (*from_json)->Encode(text)) << text;
  }
}

}  // namespace
}  // namespace unicorn
