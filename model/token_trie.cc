#include "model/token_trie.h"

namespace unicorn {

void TokenTrie::Add(absl::string_view s, int32_t id) {
  if (s.empty()) return;
  first_byte_.set(uint8_t(s[0]));
  int32_t node = 0;
  for (char c : s) {
    const uint64_t key = (uint64_t(node) << 8) | uint8_t(c);
    auto it = edges_.find(key);
    if (it == edges_.end()) {
      const int32_t child = int32_t(nodes_.size());
      nodes_.push_back(-1);
      it = edges_.emplace(key, child).first;
    }
    node = it->second;
  }
  nodes_[size_t(node)] = id;
}

TokenTrie::Match TokenTrie::Walk(absl::string_view text, size_t pos) const {
  Match best;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    auto it = edges_.find((uint64_t(node) << 8) | uint8_t(text[i]));
    if (it == edges_.end()) break;
    node = it->second;
    if (nodes_[size_t(node)] >= 0) best = {nodes_[size_t(node)], i + 1 - pos};
  }
  return best;
}

}  // namespace unicorn
