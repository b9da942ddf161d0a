#include "model/bpe.h"

#include <algorithm>
#include <cstdio>

#include "absl/container/inlined_vector.h"
#include "model/utf8.h"

namespace unicorn {
namespace {

constexpr absl::string_view kSpace = "\xE2\x96\x81";  // '▁' U+2581
constexpr size_t kMaxCachedChunk = 256;               // bytes
constexpr size_t kMaxCrossPieces = 64;

// Byte offsets of each '▁' in `s` that follows a character other than '▁'.
std::vector<size_t> CrossOffsets(absl::string_view s) {
  std::vector<size_t> offsets;
  for (size_t j = s.find(kSpace, 1); j != absl::string_view::npos; j = s.find(kSpace, j + 1)) {
    if (j >= 3 && s.substr(j - 3, 3) == kSpace) continue;
    offsets.push_back(j);
  }
  return offsets;
}

}  // namespace

std::vector<std::pair<std::string, std::string>> DeriveMerges(
    const std::vector<std::string>& pieces, const std::vector<float>& scores) {
  absl::flat_hash_map<absl::string_view, int32_t> id_of;
  id_of.reserve(pieces.size());
  for (size_t i = 0; i < pieces.size(); ++i)
    id_of[pieces[i]] = int32_t(i);  // later wins, as a dict

  std::vector<int32_t> order(pieces.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int32_t(i);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return scores[size_t(a)] > scores[size_t(b)]; });

  struct Cand {
    float score;
    int32_t len_l, len_r;  // characters
    int32_t l, r;
  };
  std::vector<Cand> all;
  std::vector<Cand> local;
  for (int32_t id : order) {
    const std::string& p = pieces[size_t(id)];
    if (id_of[p] != id) continue;  // a duplicate piece: the dict kept the later id
    local.clear();
    int32_t chars_left = 0;
    const int32_t chars_total = int32_t(utf8::CountChars(p));
    for (size_t k = 0; k < p.size();) {
      const size_t len = utf8::CharLen(p, k);
      k += len ? len : 1;
      ++chars_left;
      if (k >= p.size()) break;
      auto l = id_of.find(absl::string_view(p).substr(0, k));
      if (l == id_of.end()) continue;
      auto r = id_of.find(absl::string_view(p).substr(k));
      if (r == id_of.end()) continue;
      local.push_back(
          {scores[size_t(id)], chars_left, chars_total - chars_left, l->second, r->second});
    }
    std::sort(local.begin(), local.end(),
              [](const Cand& a, const Cand& b) { return std::tie(a.l, a.r) < std::tie(b.l, b.r); });
    all.insert(all.end(), local.begin(), local.end());
  }
  std::stable_sort(all.begin(), all.end(), [](const Cand& a, const Cand& b) {
    return std::tie(a.score, a.len_l, a.len_r) > std::tie(b.score, b.len_l, b.len_r);
  });
  std::vector<std::pair<std::string, std::string>> merges;
  merges.reserve(all.size());
  for (const Cand& c : all) merges.emplace_back(pieces[size_t(c.l)], pieces[size_t(c.r)]);
  return merges;
}

bool BpeCache::Lookup(absl::string_view chunk, std::vector<int32_t>& out) const {
  auto it = map_.find(chunk);
  if (it == map_.end()) return false;
  out.insert(out.end(), arena_.begin() + it->second.first,
             arena_.begin() + it->second.first + it->second.second);
  return true;
}

void BpeCache::Insert(absl::string_view chunk, const int32_t* ids, size_t n) {
  map_.emplace(std::string(chunk), std::make_pair(uint32_t(arena_.size()), uint32_t(n)));
  arena_.insert(arena_.end(), ids, ids + n);
}

Status BpeModel::Init(const std::vector<std::string>& pieces,
                      const absl::flat_hash_map<std::string, int32_t>& piece_to_id,
                      const std::vector<std::pair<std::string, std::string>>& merges,
                      Options options) {
  options_ = options;
  bmp_ids_.assign(0x10000, -1);
  astral_ids_.clear();
  for (const auto& [piece, id] : piece_to_id) {
    const size_t len = piece.empty() ? 0 : utf8::CharLen(piece, 0);
    if (len == 0 || len != piece.size()) continue;
    const char32_t cp = utf8::Decode(piece, 0, len);
    if (cp < 0x10000) {
      bmp_ids_[cp] = id;
    } else {
      astral_ids_[cp] = id;
    }
  }
  std::fill(std::begin(byte_ids_), std::end(byte_ids_), -1);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    auto it = piece_to_id.find(absl::string_view(name));
    if (it != piece_to_id.end()) byte_ids_[b] = it->second;
  }

  merges_.clear();
  merges_.reserve(merges.size());
  cross_.clear();
  chunking_safe_ = true;
  std::vector<uint8_t> byte_or_unk(pieces.size(), 0);
  for (int32_t id : byte_ids_) {
    if (id >= 0 && size_t(id) < pieces.size()) byte_or_unk[size_t(id)] = 1;
  }
  if (options_.unk_id >= 0 && size_t(options_.unk_id) < pieces.size()) {
    byte_or_unk[size_t(options_.unk_id)] = 1;
  }
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    auto ia = piece_to_id.find(a);
    auto ib = piece_to_id.find(b);
    auto im = piece_to_id.find(a + b);
    if (ia == piece_to_id.end() || ib == piece_to_id.end() || im == piece_to_id.end()) {
      const std::string& missing = ia == piece_to_id.end()   ? a
                                   : ib == piece_to_id.end() ? b
                                                             : a + b;
      return absl::InvalidArgumentError(
          absl::StrCat("merge ", rank, " ('", a, "', '", b, "'): '", missing, "' is not a piece"));
    }
    merges_[Key(ia->second, ib->second)] = {int32_t(rank), im->second};  // a repeat: later wins
    if (byte_or_unk[size_t(ia->second)] || byte_or_unk[size_t(ib->second)]) {
      chunking_safe_ = false;
    }
    for (size_t off : CrossOffsets(im->first)) cross_.emplace_back(im->first, off);
  }
  std::sort(cross_.begin(), cross_.end());
  cross_.erase(std::unique(cross_.begin(), cross_.end()), cross_.end());
  if (cross_.size() > kMaxCrossPieces) chunking_safe_ = false;
  chunking_ = chunking_safe_;
  return absl::OkStatus();
}

int32_t BpeModel::CharId(char32_t cp) const {
  if (cp < 0x10000) return bmp_ids_[cp];
  auto it = astral_ids_.find(cp);
  return it == astral_ids_.end() ? -1 : it->second;
}

void BpeModel::EncodeWord(absl::string_view word, std::vector<int32_t>& out) const {
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
    bool alive;
  };
  absl::InlinedVector<Symbol, 32> sym;
  auto push = [&](int32_t id) {
    const int32_t i = int32_t(sym.size());
    sym.push_back({id, i - 1, i + 1, true});
  };
  // Initial symbols: characters, their bytes, or <unk> (fused when asked).
  bool pending_unk = false;
  for (size_t i = 0; i < word.size();) {
    size_t len = utf8::CharLen(word, i);
    int32_t id = -1;
    if (len == 0) {
      len = 1;  // a malformed byte: only byte fallback can spell it
    } else {
      id = CharId(utf8::Decode(word, i, len));
    }
    if (id >= 0) {
      if (pending_unk) push(options_.unk_id), pending_unk = false;
      push(id);
    } else {
      bool bytes_ok = options_.byte_fallback;
      for (size_t k = 0; bytes_ok && k < len; ++k) bytes_ok = byte_ids_[uint8_t(word[i + k])] >= 0;
      if (bytes_ok) {
        // Hugging Face leaves a pending <unk> pending across byte pieces.
        for (size_t k = 0; k < len; ++k) push(byte_ids_[uint8_t(word[i + k])]);
      } else if (options_.unk_id >= 0) {
        if (pending_unk && !options_.fuse_unk) push(options_.unk_id);
        pending_unk = true;
      }
    }
    i += len;
  }
  if (pending_unk) push(options_.unk_id);
  if (sym.empty()) return;
  sym.back().next = -1;

  if (sym.size() > 1) {
    struct Cand {
      int32_t rank;
      int32_t pos;
      int32_t new_id;
    };
    // std heap functions build a max-heap: "less" = later in (rank, pos).
    auto later = [](const Cand& a, const Cand& b) {
      return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
    };
    absl::InlinedVector<Cand, 32> heap;
    auto consider = [&](int32_t pos) {
      const int32_t next = sym[size_t(pos)].next;
      auto it = merges_.find(Key(sym[size_t(pos)].id, sym[size_t(next)].id));
      if (it == merges_.end()) return;
      heap.push_back({it->second.rank, pos, it->second.new_id});
      std::push_heap(heap.begin(), heap.end(), later);
    };
    for (int32_t i = 0; i + 1 < int32_t(sym.size()); ++i) consider(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), later);
      const Cand top = heap.back();
      heap.pop_back();
      Symbol& left = sym[size_t(top.pos)];
      if (!left.alive || left.next < 0) continue;
      Symbol& right = sym[size_t(left.next)];
      auto it = merges_.find(Key(left.id, right.id));
      if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale
      left.id = top.new_id;
      right.alive = false;
      left.next = right.next;
      if (right.next >= 0) sym[size_t(right.next)].prev = top.pos;
      if (left.prev >= 0) consider(left.prev);
      if (left.next >= 0) consider(top.pos);
    }
  }
  for (int32_t i = 0; i >= 0; i = sym[size_t(i)].next) out.push_back(sym[size_t(i)].id);
}

bool BpeModel::SafeCut(absl::string_view s, size_t pos) const {
  for (const auto& [piece, off] : cross_) {
    if (pos >= off && pos - off + piece.size() <= s.size() &&
        s.substr(pos - off, piece.size()) == piece) {
      return false;
    }
  }
  return true;
}

void BpeModel::EncodeChunk(absl::string_view chunk, std::vector<int32_t>& out,
                           BpeCache& cache) const {
  if (chunk.size() > kMaxCachedChunk) return EncodeWord(chunk, out);
  if (cache.Lookup(chunk, out)) return;
  const size_t start = out.size();
  EncodeWord(chunk, out);
  cache.Insert(chunk, out.data() + start, out.size() - start);
}

void BpeModel::EncodeSegment(absl::string_view segment, std::vector<int32_t>& out,
                             BpeCache& cache) const {
  if (segment.empty()) return;
  if (!chunking_) return EncodeChunk(segment, out, cache);
  size_t start = 0;
  for (size_t j = segment.find(kSpace, 1); j != absl::string_view::npos;
       j = segment.find(kSpace, j + 1)) {
    if (j >= 3 && segment.substr(j - 3, 3) == kSpace) continue;  // inside a run of '▁'
    if (!cross_.empty() && !SafeCut(segment, j)) continue;
    EncodeChunk(segment.substr(start, j - start), out, cache);
    start = j;
  }
  EncodeChunk(segment.substr(start), out, cache);
}

}  // namespace unicorn
