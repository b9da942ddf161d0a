// A byte trie of token strings for leftmost-longest matching in raw text:
// how the tokenizer splits added tokens (<start_of_turn>, "\n\n", ...) out of
// the input before BPE, like Hugging Face's Aho-Corasick split (MatchKind::
// LeftmostLongest): the match starting first wins, and of those the longest.
#pragma once

#include <bitset>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"

namespace unicorn {

class TokenTrie {
 public:
  TokenTrie() { nodes_.push_back(-1); }
  // Adds `s` (non-empty) with value `id`; a later Add of the same string wins.
  void Add(absl::string_view s, int32_t id);
  bool empty() const { return nodes_.size() == 1; }

  struct Match {
    int32_t id = -1;  // -1: no match
    size_t len = 0;   // bytes
  };
  // The longest string of the trie that starts at text[pos].
  Match LongestAt(absl::string_view text, size_t pos) const {
    if (!first_byte_[uint8_t(text[pos])]) return {};
    return Walk(text, pos);
  }

 private:
  Match Walk(absl::string_view text, size_t pos) const;
  std::vector<int32_t> nodes_;                    // [n_nodes] the id ending at the node, or -1
  absl::flat_hash_map<uint64_t, int32_t> edges_;  // (node << 8 | byte) -> child
  std::bitset<256> first_byte_;
};

}  // namespace unicorn
