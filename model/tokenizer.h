// Gemma 3's tokenizer, native: text -> ids -> text with the exact results of
// Hugging Face's `tokenizer(text).input_ids` and `tokenizer.decode(ids)`.
//
// The pipeline (Gemma 3's tokenizer.json):
//   1. Added tokens (the 6415 `added_tokens`: <bos>, <start_of_turn>, "\n",
//      "\n\n", "\t", "<table>", "<unused0>", ...) are split out of the raw text
//      first, leftmost-longest; each becomes its id. They are all
//      normalized=false, so they match the text as written.
//   2. Each remaining segment is normalized: ' ' -> '▁' (U+2581). There is no
//      pre-tokenizer in effect (Gemma's Split on ' ' runs after the
//      normalizer, so it never matches): a segment is one BPE word.
//   3. BPE: the word starts as one symbol per character (a character that is
//      not a piece becomes its UTF-8 bytes as <0xNN> pieces: byte fallback);
//      then the adjacent pair of lowest merge rank is merged, leftmost first,
//      until no pair has a merge.
//   4. add_bos (tokenizer_config.json's add_bos_token) puts <bos> first.
//
// Speed: a segment can be a whole document (only newlines, tabs and the other
// added tokens cut the text), so a segment is cut further into chunks at each
// '▁' that follows a non-'▁' character ("the▁cat" -> "the", "▁cat"). That is
// exact: a merge across such a cut would create a piece containing "x▁"
// (x != '▁'), and the load step lists the pieces that do (Gemma 3 has one,
// ">▁</"); a cut is skipped wherever one of them occurs across it. Chunks are
// BPE'd with a binary heap over a linked list of symbols (O(n log n)) and
// memoized per Encode call. See model/bpe.h.
//
// Decoding (Hugging Face's decoder chain Replace('▁',' '), ByteFallback, Fuse):
// pieces are concatenated with '▁' -> ' '; each maximal run of consecutive
// <0xNN> pieces becomes its bytes if they are valid UTF-8, else one U+FFFD per
// byte. Ids outside [0, vocab_size) are skipped, as Hugging Face does.
//
// A Tokenizer is immutable after loading; every method is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/status.h"
#include "model/bpe.h"
#include "model/token_trie.h"

namespace unicorn {

// SentencePiece's token types, as GGUF's tokenizer.ggml.token_type stores them.
enum class TokenType : int32_t {
  kNormal = 1,
  kUnknown = 2,      // <unk>: an added token, special
  kControl = 3,      // <bos>, <start_of_turn>, ...: an added token, special
  kUserDefined = 4,  // "\n\n", "<table>", ...: an added token, not special
  kUnused = 5,       // <unusedN>: an added token, not special
  kByte = 6,         // <0xNN>
};

// A vocabulary as plain data: what tokenizer.json holds, or what a GGUF's
// tokenizer.ggml.* metadata holds, without this code knowing either format.
struct TokenizerVocab {
  std::vector<std::string> pieces;  // [n_vocab] the piece of id i
  // [n_vocab] or empty (then "<0xNN>" pieces are kByte, all others kNormal).
  // Pieces of types kUnknown, kControl, kUserDefined and kUnused are "added
  // tokens": matched in the raw text before BPE.
  std::vector<TokenType> types;
  // BPE merges by rank (0 = applied first), as piece pairs. When empty they
  // are derived from `scores` the way Hugging Face converts a SentencePiece
  // BPE model (DeriveMerges in model/bpe.h).
  std::vector<std::pair<std::string, std::string>> merges;
  std::vector<float> scores;  // [n_vocab] or empty; only read when merges is empty
  int32_t bos_id = -1;        // -1: none
  int32_t eos_id = -1;        // the end of a reply; Gemma 3's config says <end_of_turn>
  int32_t unk_id = -1;        // for characters BPE cannot spell (never with byte fallback)
  int32_t pad_id = -1;
  bool add_bos = true;
  bool add_eos = false;
  bool byte_fallback = true;
  bool fuse_unk = true;  // consecutive unknown characters become one <unk>
  // Ids skipped by Decode(skip_special = true) besides the kControl and
  // kUnknown ones (Hugging Face's all_special_ids: e.g. <mask>).
  std::vector<int32_t> extra_special_ids;
};

// Gemma's named tokens; -1 where the vocabulary lacks one.
struct SpecialTokenIds {
  int32_t bos = -1;
  int32_t eos = -1;  // tokenizer_config.json's eos_token (<end_of_turn> = 106 for Gemma 3)
  int32_t pad = -1;
  int32_t unk = -1;
  int32_t start_of_turn = -1;     // <start_of_turn>
  int32_t end_of_turn = -1;       // <end_of_turn>
  int32_t start_of_image = -1;    // <start_of_image>
  int32_t end_of_image = -1;      // <end_of_image>
  int32_t image_soft_token = -1;  // <image_soft_token>: one per image embedding
};

class Tokenizer {
 public:
  // Loads `dir`/tokenizer.json and `dir`/tokenizer_config.json (a Hugging
  // Face model folder). `dir` may also name the tokenizer.json file itself.
  // tokenizer_config.json is optional (defaults: add_bos, <bos>, <eos>).
  // Errors name the file and what is wrong with it.
  static StatusOr<std::unique_ptr<Tokenizer>> FromFolder(const std::string& dir);
  // Builds a tokenizer from plain data (e.g. GGUF metadata).
  static StatusOr<std::unique_ptr<Tokenizer>> FromVocab(TokenizerVocab vocab);

  // Text -> ids. `add_bos` puts bos first (when the vocabulary has one); the
  // one-argument form follows the vocabulary's add_bos (HF's default).
  // Malformed UTF-8 bytes are encoded as their <0xNN> byte pieces.
  std::vector<int32_t> Encode(absl::string_view text, bool add_bos) const;
  std::vector<int32_t> Encode(absl::string_view text) const { return Encode(text, add_bos_); }

  // Ids -> text (see the file comment). skip_special drops special tokens
  // (HF's skip_special_tokens).
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special = false) const;

  // The piece of `id` ("▁the", "<0x0A>", "<start_of_turn>"); "" if out of range.
  absl::string_view IdToPiece(int32_t id) const;
  // The id of an exact piece; -1 if none.
  int32_t PieceToId(absl::string_view piece) const;

  const SpecialTokenIds& special() const { return special_; }
  // Ids are [0, vocab_size()): 262,145 for Gemma 3 (262,144 pieces plus
  // <image_soft_token>). The model's embedding table may be larger.
  int32_t vocab_size() const { return int32_t(pieces_.size()); }
  bool add_bos() const { return add_bos_; }
  bool IsSpecial(int32_t id) const {
    return id >= 0 && id < vocab_size() && is_special_[size_t(id)];
  }
  TokenType type(int32_t id) const { return types_[size_t(id)]; }
  // Ids that end a reply: eos, <eos> and <end_of_turn> where present.
  const std::vector<int32_t>& stop_ids() const { return stop_ids_; }

  // The Jinja chat template text of tokenizer_config.json ("" if none). Only
  // informative: model/chat_template.h implements Gemma 3's natively.
  const std::string& chat_template_source() const { return chat_template_source_; }
  void set_chat_template_source(std::string s) { chat_template_source_ = std::move(s); }

  // Testing: turn the cutting of segments into chunks off (whole-segment BPE)
  // to check that it changes nothing.
  void set_chunking_for_testing(bool on) { bpe_.set_chunking(on); }
  const BpeModel& bpe() const { return bpe_; }

  // Internal to StreamDecoder/Decode: the text of a piece with '▁' -> ' ',
  // and the byte of a <0xNN> piece (-1 if not one).
  const std::string& display(int32_t id) const { return display_[size_t(id)]; }
  int byte_value(int32_t id) const { return byte_value_[size_t(id)]; }

 private:
  Tokenizer() = default;
  // FromVocab; errors start with `context` ("[tokenizer] path/tokenizer.json").
  static StatusOr<std::unique_ptr<Tokenizer>> Build(TokenizerVocab vocab,
                                                    const std::string& context);

  std::vector<std::string> pieces_;   // [vocab_size]
  std::vector<TokenType> types_;      // [vocab_size]
  std::vector<std::string> display_;  // [vocab_size] piece with '▁' -> ' '
  std::vector<int16_t> byte_value_;   // [vocab_size] 0..255 for <0xNN>, else -1
  std::vector<uint8_t> is_special_;   // [vocab_size]
  absl::flat_hash_map<std::string, int32_t> piece_to_id_;
  TokenTrie added_;  // added tokens, matched leftmost-longest in raw text
  BpeModel bpe_;
  SpecialTokenIds special_;
  std::vector<int32_t> stop_ids_;
  bool add_bos_ = true;
  bool add_eos_ = false;
  int32_t eos_for_add_ = -1;
  std::string chat_template_source_;
};

// Incremental decoding for streaming: feed ids one at a time, get the text
// that is final. The concatenation of every Push() and Finish() equals
// Decode(all ids) exactly. Text of ordinary pieces is returned at once; a run
// of <0xNN> byte pieces is held until the run ends (the next non-byte piece,
// or Finish), because Hugging Face turns an invalid run into U+FFFD as a
// whole, so output is never a partial UTF-8 character.
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special = false)
      : tok_(&tokenizer), skip_special_(skip_special) {}
  // The text that `id` completes (often empty for byte pieces).
  std::string Push(int32_t id);
  // The text still held; call once at the end. The decoder can be reused.
  std::string Finish();

 private:
  void FlushBytes(std::string& out);
  const Tokenizer* tok_;
  bool skip_special_;
  std::string bytes_;  // the pending run of byte-piece bytes
};

}  // namespace unicorn
