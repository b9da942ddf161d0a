// The tokenizer against Hugging Face: ids, decode and streaming on the corpus
// (tests/data/tokenizer/corpus.jsonl, references recorded by
// tools/refs/tokenizer_refs.py), plus BPE mechanics on a tiny vocabulary.
#include "model/tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "model/tokenizer_json.h"
#include "model/utf8.h"
#include "tests/model/tokenizer_test_util.h"

namespace unicorn {
namespace {

using nlohmann::json;
using testing::CorpusTexts;
using testing::ReadJson;

std::vector<int32_t> Ids(const json& j) { return j.get<std::vector<int32_t>>(); }

// ---- The real Gemma 3 tokenizer versus Hugging Face --------------------------

TEST(GemmaTokenizer, CorpusIdsEqualHuggingFace) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok);
  const std::vector<std::string> texts = CorpusTexts();
  const json rows = ReadJson("corpus_refs.json")["rows"];
  ASSERT_EQ(rows.size(), texts.size()) << "corpus_refs.json is stale: rerun tokenizer_refs.py";
  ASSERT_GE(texts.size(), 150u);
  for (size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "corpus line " << i + 1 << ": " << json(texts[i]).dump());
    EXPECT_EQ(tok->Encode(texts[i]), Ids(rows[i]["ids"]));  // add_bos from tokenizer_config
    EXPECT_EQ(tok->Encode(texts[i], /*add_bos=*/false), Ids(rows[i]["ids_nobos"]));
  }
}

TEST(GemmaTokenizer, DecodeEqualsHuggingFaceAndRoundTrips) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok);
  const std::vector<std::string> texts = CorpusTexts();
  const json rows = ReadJson("corpus_refs.json")["rows"];
  for (size_t i = 0; i < texts.size(); ++i) {
    SCOPED_TRACE(::testing::Message() << "corpus line " << i + 1);
    const auto ids = Ids(rows[i]["ids"]);
    EXPECT_EQ(tok->Decode(ids), rows[i]["decode"].get<std::string>());
    EXPECT_EQ(tok->Decode(ids, /*skip_special=*/true),
              rows[i]["decode_skip_special"].get<std::string>());
    // Every corpus text is valid UTF-8, so decoding gives it back, except
    // that a '▁' written in the text is indistinguishable from a space.
    std::string expected = texts[i];
    for (size_t k; (k = expected.find("\xE2\x96\x81")) != std::string::npos;) {
      expected.replace(k, 3, " ");
    }
    EXPECT_EQ(tok->Decode(Ids(rows[i]["ids_nobos"])), expected);
  }
  // Hand-made id sequences: invalid byte runs, ids past the vocabulary.
  const json meta = ReadJson("meta.json");  // the loop below must not outlive it
  for (const json& c : meta["decode_cases"]) {
    SCOPED_TRACE(c["ids"].dump());
    EXPECT_EQ(tok->Decode(Ids(c["ids"])), c["text"].get<std::string>());
    EXPECT_EQ(tok->Decode(Ids(c["ids"]), true), c["skip_special"].get<std::string>());
  }
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{818, 262145, -1, 1000000, 818}),
            tok->Decode(std::vector<int32_t>{818, 818}));
}

TEST(GemmaTokenizer, StreamDecoderEmitsCompleteUtf8AndEqualsDecode) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok);
  const json rows = ReadJson("corpus_refs.json")["rows"];
  std::vector<std::vector<int32_t>> cases;
  for (const json& r : rows) cases.push_back(Ids(r["ids"]));
  const json meta = ReadJson("meta.json");
  for (const json& c : meta["decode_cases"]) cases.push_back(Ids(c["ids"]));
  for (const auto& ids : cases) {
    for (bool skip : {false, true}) {
      StreamDecoder dec(*tok, skip);
      std::string streamed;
      for (int32_t id : ids) {
        const std::string piece = dec.Push(id);
        EXPECT_TRUE(utf8::IsValid(piece)) << json(ids).dump();
        streamed += piece;
      }
      streamed += dec.Finish();
      EXPECT_EQ(streamed, tok->Decode(ids, skip)) << json(ids).dump();
    }
  }
}

TEST(GemmaTokenizer, OneMegabyteEqualsHuggingFaceWithAndWithoutChunking) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok_const);
  const json ref = ReadJson("bench_refs.json");
  const std::string text = testing::BenchText(CorpusTexts());
  ASSERT_EQ(text.size(), ref["bytes"].get<size_t>());
  auto digest = [](const std::vector<int32_t>& ids) {
    uint64_t h = 0xcbf29ce484222325ull;
    std::string s;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) s += ',';
      s += std::to_string(ids[i]);
    }
    for (char c : s) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
    return std::string(buf);
  };
  Tokenizer* tok = const_cast<Tokenizer*>(tok_const);
  ASSERT_TRUE(tok->bpe().chunking());
  const auto chunked = tok->Encode(text, false);
  EXPECT_EQ(chunked.size(), ref["n_ids"].get<size_t>());
  EXPECT_EQ(digest(chunked), ref["fnv1a64"].get<std::string>());
  tok->set_chunking_for_testing(false);
  const auto whole = tok->Encode(text, false);
  tok->set_chunking_for_testing(true);
  EXPECT_EQ(whole, chunked);
}

TEST(GemmaTokenizer, ChunkCutsAreCheckedAgainstTheOnePieceThatSpansThem) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok_const);
  // Gemma 3 has one merged piece with '▁' after another character: ">▁</".
  const auto& cross = tok_const->bpe().cross_pieces();
  ASSERT_EQ(cross.size(), 1u);
  EXPECT_EQ(cross[0].first, ">\xE2\x96\x81</");
  EXPECT_EQ(cross[0].second, 1u);
  Tokenizer* tok = const_cast<Tokenizer*>(tok_const);
  for (const char* text : {"<div> </div>", "a> </b", "x> </y> </z", ">> </ >  </", "> </"}) {
    const auto chunked = tok->Encode(text, false);
    tok->set_chunking_for_testing(false);
    const auto whole = tok->Encode(text, false);
    tok->set_chunking_for_testing(true);
    EXPECT_EQ(chunked, whole) << text;
  }
  // The piece itself is used: "> </" is one token.
  EXPECT_EQ(tok->Encode("> </", false).size(), 1u);
}

TEST(GemmaTokenizer, SpecialIdsAndPieces) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok);
  const json meta = ReadJson("meta.json");
  EXPECT_EQ(tok->vocab_size(), meta["len_tokenizer"].get<int32_t>());  // 262145
  const SpecialTokenIds& s = tok->special();
  EXPECT_EQ(s.bos, meta["bos_token_id"].get<int32_t>());
  EXPECT_EQ(s.eos, meta["eos_token_id"].get<int32_t>());  // <end_of_turn> per tokenizer_config
  EXPECT_EQ(s.pad, meta["pad_token_id"].get<int32_t>());
  EXPECT_EQ(s.unk, 3);
  EXPECT_EQ(s.start_of_turn, 105);
  EXPECT_EQ(s.end_of_turn, 106);
  EXPECT_EQ(s.start_of_image, 255999);
  EXPECT_EQ(s.end_of_image, 256000);
  EXPECT_EQ(s.image_soft_token, 262144);
  EXPECT_EQ(tok->stop_ids(), (std::vector<int32_t>{106, 1}));
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->IdToPiece(2), "<bos>");
  EXPECT_EQ(tok->IdToPiece(238 + 0x0A), "<0x0A>");
  EXPECT_EQ(tok->IdToPiece(262145), "");
  EXPECT_EQ(tok->IdToPiece(-1), "");
  EXPECT_EQ(tok->PieceToId("<start_of_turn>"), 105);
  EXPECT_EQ(tok->PieceToId("\xE2\x96\x81the"), 506);
  EXPECT_EQ(tok->PieceToId("no such piece"), -1);
  EXPECT_EQ(tok->type(2), TokenType::kControl);
  EXPECT_EQ(tok->type(107), TokenType::kUserDefined);
  EXPECT_EQ(tok->type(238), TokenType::kByte);
  EXPECT_EQ(tok->type(506), TokenType::kNormal);
  EXPECT_EQ(tok->Encode("").size(), 1u);  // just <bos>
  EXPECT_TRUE(tok->Encode("", false).empty());
}

// A GGUF holds scores, not merges: merges derived from scores must be the
// file's merges, rank for rank. Gemma 3's SentencePiece scores are 0 for
// user-defined pieces and -(id - 494) for the others (494 = "▁t", the first
// learned piece); these scores reproduce them.
TEST(GemmaTokenizer, MergesDerivedFromScoresEqualTheFileAndEncodeAlike) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok);
  auto folder = ReadTokenizerFolder(testing::kRealTokenizerDir);
  ASSERT_TRUE(folder.ok()) << folder.status();
  TokenizerVocab v = std::move(folder->vocab);
  const auto file_merges = v.merges;
  v.scores.resize(v.pieces.size());
  for (size_t i = 0; i < v.pieces.size(); ++i) {
    const bool added = v.types[i] != TokenType::kNormal && v.types[i] != TokenType::kByte;
    v.scores[i] = added ? 0.0f : -float(int64_t(i) - 494);
  }
  v.merges.clear();
  // <image_soft_token> (262144) is not in the file's BPE vocabulary; it has no
  // split into two pieces either, so it adds no merge.
  EXPECT_EQ(DeriveMerges(v.pieces, v.scores), file_merges);
  auto from_scores = Tokenizer::FromVocab(std::move(v));
  ASSERT_TRUE(from_scores.ok()) << from_scores.status();
  for (const std::string& text : CorpusTexts()) {
    EXPECT_EQ((*from_scores)->Encode(text), tok->Encode(text)) << text;
  }
}

// ---- BPE mechanics on a tiny vocabulary (no files needed) ------------------

constexpr char kSp[] = "\xE2\x96\x81";

TokenizerVocab TinyVocab() {
  TokenizerVocab v;
  auto add = [&](std::string p, TokenType t) {
    v.pieces.push_back(std::move(p));
    v.types.push_back(t);
    return int32_t(v.pieces.size() - 1);
  };
  add("<pad>", TokenType::kControl);
  add("<eos>", TokenType::kControl);
  add("<bos>", TokenType::kControl);
  add("<unk>", TokenType::kUnknown);
  add("<start_of_turn>", TokenType::kControl);
  add("\n", TokenType::kUserDefined);
  add("\n\n", TokenType::kUserDefined);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    add(name, TokenType::kByte);
  }
  const std::string sp = kSp;
  for (const std::string& p :
       std::vector<std::string>{"a", "b", "c", sp, "ab", "abc", sp + "a", sp + "ab", "bc"}) {
    add(p, TokenType::kNormal);
  }
  v.merges = {{"a", "b"}, {"ab", "c"}, {kSp, "a"}, {std::string(kSp) + "a", "b"}, {"b", "c"}};
  v.bos_id = 2;
  v.eos_id = 1;
  v.unk_id = 3;
  v.pad_id = 0;
  return v;
}

class TinyTokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = Tokenizer::FromVocab(TinyVocab());
    ASSERT_TRUE(t.ok()) << t.status();
    tok_ = std::move(t).value();
  }
  int32_t Id(const std::string& p) const { return tok_->PieceToId(p); }
  std::unique_ptr<Tokenizer> tok_;
};

TEST_F(TinyTokenizer, MergesApplyByRankNotLeftToRight) {
  EXPECT_EQ(tok_->Encode("abc", false), (std::vector<int32_t>{Id("abc")}));
  EXPECT_EQ(tok_->Encode("bc", false), (std::vector<int32_t>{Id("bc")}));
  // "▁abc": (a,b) has rank 0, so "▁a" never forms: ▁ + abc.
  EXPECT_EQ(tok_->Encode(" abc", false), (std::vector<int32_t>{Id(kSp), Id("abc")}));
  // Cut at the '▁' after "c": "abc" + "▁ab", where (a,b) again wins over
  // (▁,a), and (▁,ab) is no merge.
  EXPECT_EQ(tok_->Encode("abc ab", false), (std::vector<int32_t>{Id("abc"), Id(kSp), Id("ab")}));
  EXPECT_EQ(tok_->Encode(" ab", false), (std::vector<int32_t>{Id(kSp), Id("ab")}));
  EXPECT_EQ(tok_->Encode("abc", true), (std::vector<int32_t>{2, Id("abc")}));
}

TEST_F(TinyTokenizer, AddedTokensLeftmostLongestBeforeBpe) {
  EXPECT_EQ(tok_->Encode("a<start_of_turn>b", false), (std::vector<int32_t>{Id("a"), 4, Id("b")}));
  EXPECT_EQ(tok_->Encode("\n\n\n", false), (std::vector<int32_t>{6, 5}));
  EXPECT_EQ(tok_->Encode("<start_of_turn", false).size(), 14u);  // no match: bytes and letters
}

TEST_F(TinyTokenizer, ByteFallbackAndMalformedUtf8) {
  // "é" is not a piece: its UTF-8 bytes C3 A9.
  EXPECT_EQ(tok_->Encode("\xC3\xA9", false), (std::vector<int32_t>{7 + 0xC3, 7 + 0xA9}));
  // A stray byte is spelled by byte fallback too.
  EXPECT_EQ(tok_->Encode("a\xFF", false), (std::vector<int32_t>{Id("a"), 7 + 0xFF}));
  EXPECT_EQ(tok_->Decode(std::vector<int32_t>{7 + 0xC3, 7 + 0xA9}), "\xC3\xA9");
  // An invalid run becomes one U+FFFD per byte; a complete one its character.
  EXPECT_EQ(tok_->Decode(std::vector<int32_t>{7 + 0xC3, Id("a"), 7 + 0xA9}),
            "\xEF\xBF\xBD"
            "a\xEF\xBF\xBD");
  EXPECT_EQ(tok_->Decode(std::vector<int32_t>{Id(kSp), Id("a")}), " a");
}

TEST_F(TinyTokenizer, UnknownCharactersFuseWithoutByteFallback) {
  TokenizerVocab v = TinyVocab();
  v.byte_fallback = false;
  auto fused = Tokenizer::FromVocab(v);
  ASSERT_TRUE(fused.ok());
  EXPECT_EQ((*fused)->Encode("a\xC3\xA9\xC3\xA9"
                             "b",
                             false),
            (std::vector<int32_t>{Id("a"), 3, Id("b")}));
  v.fuse_unk = false;
  auto unfused = Tokenizer::FromVocab(v);
  ASSERT_TRUE(unfused.ok());
  EXPECT_EQ((*unfused)->Encode("\xC3\xA9\xC3\xA9", false), (std::vector<int32_t>{3, 3}));
}

TEST_F(TinyTokenizer, StreamDecoderHoldsByteRunsUntilTheyEnd) {
  StreamDecoder dec(*tok_);
  EXPECT_EQ(dec.Push(Id("a")), "a");
  EXPECT_EQ(dec.Push(7 + 0xE4), "");
  EXPECT_EQ(dec.Push(7 + 0xB8), "");
  EXPECT_EQ(dec.Push(7 + 0xAD), "");
  EXPECT_EQ(dec.Push(Id("b")),
            "\xE4\xB8\xAD"
            "b");
  EXPECT_EQ(dec.Push(7 + 0xE4), "");
  EXPECT_EQ(dec.Finish(), "\xEF\xBF\xBD");
  EXPECT_EQ(dec.Finish(), "");
  StreamDecoder skip(*tok_, /*skip_special=*/true);
  EXPECT_EQ(skip.Push(2), "");
  EXPECT_EQ(skip.Push(Id("c")), "c");
}

TEST(TokenizerVocab, RejectsBadPlainData) {
  TokenizerVocab v = TinyVocab();
  v.merges.push_back({"c", "zz"});
  auto t = Tokenizer::FromVocab(v);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            "[tokenizer] vocabulary: merge 5 ('c', 'zz'): 'zz' is not a piece");
  v = TinyVocab();
  v.types.pop_back();
  EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  v = TinyVocab();
  v.bos_id = 100000;
  EXPECT_FALSE(Tokenizer::FromVocab(v).ok());
  EXPECT_FALSE(Tokenizer::FromVocab(TokenizerVocab{}).ok());
}

// ---- Loading errors ---------------------------------------------------------

class TokenizerFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("unicorn_tok_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }
  // A small tokenizer.json of Gemma's shape; `model`/`normalizer` replaceable.
  static std::string TokenizerJson(
      const std::string& merges = R"([["a", "b"]])",
      const std::string& normalizer =
          R"({"type": "Replace", "pattern": {"String": " "}, "content": "▁"})") {
    return R"({"version": "1.0", "added_tokens": [
      {"id": 0, "content": "<bos>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
      {"id": 5, "content": "\n", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": false}],
    "normalizer": )" +
           normalizer + R"(,
    "pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "MergedWithPrevious", "invert": false},
    "post_processor": null,
    "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]},
    "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "fuse_unk": true, "byte_fallback": true,
      "vocab": {"<bos>": 0, "<unk>": 1, "a": 2, "b": 3, "ab": 4, "\n": 5, "▁": 6},
      "merges": )" +
           merges + R"(}})";
  }
  std::filesystem::path dir_;
};

TEST_F(TokenizerFiles, LoadsASmallFolderInBothMergeFormats) {
  for (const std::string& merges : std::vector<std::string>{R"([["a", "b"]])", R"(["a b"])"}) {
    Write("tokenizer.json", TokenizerJson(merges));
    Write("tokenizer_config.json", R"({"add_bos_token": false, "bos_token": "<bos>"})");
    auto t = Tokenizer::FromFolder(dir_.string());
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ((*t)->Encode("ab\nab a"), (std::vector<int32_t>{4, 5, 4, 6, 2}));
    EXPECT_EQ((*t)->Encode("ab", true), (std::vector<int32_t>{0, 4}));
    EXPECT_EQ((*t)->Decode(std::vector<int32_t>{0, 4, 6, 2}), "<bos>ab a");
    // The path of tokenizer.json itself works too.
    EXPECT_TRUE(Tokenizer::FromFolder((dir_ / "tokenizer.json").string()).ok());
  }
}

TEST_F(TokenizerFiles, ErrorsNameTheFileAndTheProblem) {
  auto expect_error = [&](const std::string& needle) {
    auto t = Tokenizer::FromFolder(dir_.string());
    ASSERT_FALSE(t.ok()) << "expected an error containing: " << needle;
    EXPECT_NE(t.status().message().find(needle), absl::string_view::npos) << t.status();
  };
  expect_error((dir_ / "tokenizer.json").string() + ": not found");
  Write("tokenizer.json", "{\"model\": {\"vocab\": {\"a\": 1,");
  expect_error((dir_ / "tokenizer.json").string() + ": JSON syntax error at byte");
  Write("tokenizer.json", TokenizerJson(R"([["a", "q"]])"));
  expect_error((dir_ / "tokenizer.json").string() + ": merge 0 ('a', 'q'): 'q' is not a piece");
  Write("tokenizer.json", TokenizerJson(R"([["a", "b", "c"]])"));
  expect_error("model.merges[0] has 3 parts, not 2");
  Write("tokenizer.json", TokenizerJson(R"([["a", "b"]])", R"({"type": "NFKC"})"));
  expect_error("normalizer {\"type\":\"NFKC\"} is not supported");
  Write("tokenizer.json", TokenizerJson());
  Write("tokenizer_config.json", "{not json");
  expect_error((dir_ / "tokenizer_config.json").string() + ": not valid JSON");
  Write("tokenizer_config.json", R"({"bos_token": "<nope>"})");
  expect_error("bos_token \"<nope>\" is not a piece");

  auto missing = Tokenizer::FromFolder((dir_ / "absent").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  Write("model.gguf", "GGUF");
  auto gguf = Tokenizer::FromFolder((dir_ / "model.gguf").string());
  ASSERT_FALSE(gguf.ok());
  EXPECT_EQ(gguf.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_NE(gguf.status().message().find("GGUF"), absl::string_view::npos);
}

TEST(Utf8, PythonStripAndValidity) {
  EXPECT_EQ(utf8::PyStrip("  a b \t\n"), "a b");
  EXPECT_EQ(utf8::PyStrip("\xE3\x80\x80\xC2\xA0x\xE2\x80\x83"), "x");  // U+3000, U+00A0, U+2003
  EXPECT_EQ(utf8::PyStrip("\xE2\x80\x8Bx"), "\xE2\x80\x8Bx");          // U+200B is not a space
  EXPECT_EQ(utf8::PyStrip(" \x1c\x1f "), "");
  EXPECT_EQ(utf8::PyStrip(""), "");
  EXPECT_TRUE(utf8::IsValid("h\xC3\xA9\xF0\x9F\x98\x80"));
  EXPECT_FALSE(utf8::IsValid("\xC3"));
  EXPECT_FALSE(utf8::IsValid("\xED\xA0\x80"));  // a surrogate
  EXPECT_FALSE(utf8::IsValid("\xC0\x80"));      // overlong
  EXPECT_EQ(utf8::CountChars("h\xC3\xA9\xF0\x9F\x98\x80"), 3u);
}

}  // namespace
}  // namespace unicorn
