// Byte-pair encoding by merge rank, with byte fallback: the model step of the
// tokenizer (model/tokenizer.h), on normalized text ('▁' for spaces).
//
// It computes what Hugging Face's `tokenizers` BPE computes (bpe/word.rs):
// one symbol per character (or its <0xNN> bytes, or <unk>); a min-heap of
// candidate merges ordered by (rank, position); pop the best, skip it if its
// symbols changed since it was pushed (the pair at that position no longer
// merges into the same piece), else merge and push the pairs the new symbol
// forms with its neighbours. O(n log n) in the word length.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "common/status.h"

namespace unicorn {

// Merges derived from piece scores as Hugging Face's SentencePiece converter
// does (convert_slow_tokenizer.generate_merges): every split of a piece into
// two pieces is a merge; merges are ordered by the score of the merged piece
// (descending), then by the lengths in characters of the left and the right
// part (descending); ties keep piece-id order, then (left id, right id).
// `scores` is [pieces.size()].
std::vector<std::pair<std::string, std::string>> DeriveMerges(
    const std::vector<std::string>& pieces, const std::vector<float>& scores);

// Memo of chunk -> ids, for the duration of one Encode call.
class BpeCache {
 public:
  // The cached ids of `chunk`, or false.
  bool Lookup(absl::string_view chunk, std::vector<int32_t>& out) const;
  void Insert(absl::string_view chunk, const int32_t* ids, size_t n);

 private:
  absl::flat_hash_map<std::string, std::pair<uint32_t, uint32_t>> map_;  // -> [offset, len)
  std::vector<int32_t> arena_;
};

class BpeModel {
 public:
  struct Options {
    bool byte_fallback = true;
    int32_t unk_id = -1;  // -1: characters that cannot be spelled are dropped
    bool fuse_unk = true;
  };

  // `pieces` [n_vocab]; `piece_to_id` resolves piece strings; `merges` by
  // rank. Errors name a merge whose parts or result are not pieces.
  Status Init(const std::vector<std::string>& pieces,
              const absl::flat_hash_map<std::string, int32_t>& piece_to_id,
              const std::vector<std::pair<std::string, std::string>>& merges, Options options);

  // Appends the ids of one normalized segment, cut into chunks where that
  // is provably exact (see model/tokenizer.h), each chunk memoized in `cache`.
  void EncodeSegment(absl::string_view segment, std::vector<int32_t>& out, BpeCache& cache) const;
  // Appends the ids of one word, BPE'd as a whole.
  void EncodeWord(absl::string_view word, std::vector<int32_t>& out) const;

  // Whether segments are cut into chunks. Init turns it off when the merges
  // make cutting unsafe to check (merges of byte or <unk> pieces, or many
  // pieces containing "x▁").
  bool chunking() const { return chunking_; }
  void set_chunking(bool on) { chunking_ = on && chunking_safe_; }
  // The merged pieces that contain a non-'▁' character followed by '▁', with
  // the byte offset of each such '▁': a cut there must not be made where the
  // piece occurs across it.
  const std::vector<std::pair<std::string, size_t>>& cross_pieces() const { return cross_; }
  size_t n_merges() const { return merges_.size(); }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t Key(int32_t a, int32_t b) { return (uint64_t(uint32_t(a)) << 32) | uint32_t(b); }
  int32_t CharId(char32_t cp) const;
  bool SafeCut(absl::string_view s, size_t pos) const;
  void EncodeChunk(absl::string_view chunk, std::vector<int32_t>& out, BpeCache& cache) const;

  Options options_;
  absl::flat_hash_map<uint64_t, Merge> merges_;        // (left id, right id) -> rank, merged id
  std::vector<int32_t> bmp_ids_;                       // [0x10000] single-character piece ids
  absl::flat_hash_map<char32_t, int32_t> astral_ids_;  // the same above U+FFFF
  int32_t byte_ids_[256];                              // <0xNN> ids, -1 where absent
  std::vector<std::pair<std::string, size_t>> cross_;
  bool chunking_safe_ = true;
  bool chunking_ = true;
};

}  // namespace unicorn
