#include "model/tokenizer.h"

#include <algorithm>

#include "model/utf8.h"

namespace unicorn {
namespace {

constexpr absl::string_view kSpace = "\xE2\x96\x81";        // '▁'
constexpr absl::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

bool IsAdded(TokenType t) {
  return t == TokenType::kUnknown || t == TokenType::kControl || t == TokenType::kUserDefined ||
         t == TokenType::kUnused;
}

// The byte of a "<0xNN>" piece (what Hugging Face's ByteFallback decoder
// recognises), else -1.
int ByteOfPiece(absl::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(p[3]), lo = hex(p[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

// Hugging Face's normalizer: ' ' -> '▁'.
void Normalize(absl::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size() + in.size() / 4);
  for (char c : in) {
    if (c == ' ') {
      out.append(kSpace.data(), kSpace.size());
    } else {
      out.push_back(c);
    }
  }
}

}  // namespace

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromVocab(TokenizerVocab vocab) {
  return Build(std::move(vocab), "[tokenizer] vocabulary");
}

StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Build(TokenizerVocab v,
                                                      const std::string& context) {
  const size_t n = v.pieces.size();
  auto error = [&](auto&&... what) {
    return absl::InvalidArgumentError(absl::StrCat(context, ": ", what...));
  };
  if (n == 0) return error("no pieces");
  if (!v.types.empty() && v.types.size() != n) {
    return error(v.types.size(), " token types for ", n, " pieces");
  }
  if (v.merges.empty() && !v.scores.empty() && v.scores.size() != n) {
    return error(v.scores.size(), " scores for ", n, " pieces");
  }
  for (int32_t id : {v.bos_id, v.eos_id, v.unk_id, v.pad_id}) {
    if (id < -1 || id >= int32_t(n)) {
      return error("special token id ", id, " outside [0, ", n, ")");
    }
  }

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->pieces_ = std::move(v.pieces);
  if (v.types.empty()) {
    t->types_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      t->types_[i] = ByteOfPiece(t->pieces_[i]) >= 0 ? TokenType::kByte : TokenType::kNormal;
    }
  } else {
    t->types_ = std::move(v.types);
  }
  t->piece_to_id_.reserve(n);
  t->display_.resize(n);
  t->byte_value_.resize(n);
  t->is_special_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    const std::string& p = t->pieces_[i];
    t->piece_to_id_.emplace(p, int32_t(i));  // a repeated piece keeps its first id
    t->byte_value_[i] = int16_t(ByteOfPiece(p));
    std::string& d = t->display_[i];
    for (size_t k = 0; k < p.size();) {
      if (p.compare(k, kSpace.size(), kSpace.data(), kSpace.size()) == 0) {
        d.push_back(' ');
        k += kSpace.size();
      } else {
        d.push_back(p[k++]);
      }
    }
    const TokenType type = t->types_[i];
    if (type == TokenType::kControl || type == TokenType::kUnknown) t->is_special_[i] = 1;
    if (IsAdded(type)) t->added_.Add(p, int32_t(i));
  }
  for (int32_t id : v.extra_special_ids) {
    if (id >= 0 && size_t(id) < n) t->is_special_[size_t(id)] = 1;
  }
  for (int32_t id : {v.bos_id, v.eos_id, v.unk_id, v.pad_id}) {
    if (id >= 0) t->is_special_[size_t(id)] = 1;
  }

  std::vector<std::pair<std::string, std::string>> derived;
  if (v.merges.empty() && !v.scores.empty()) derived = DeriveMerges(t->pieces_, v.scores);
  BpeModel::Options options;
  options.byte_fallback = v.byte_fallback;
  options.unk_id = v.unk_id;
  options.fuse_unk = v.fuse_unk;
  Status s =
      t->bpe_.Init(t->pieces_, t->piece_to_id_, v.merges.empty() ? derived : v.merges, options);
  if (!s.ok()) return Annotate(s, context);

  SpecialTokenIds& sp = t->special_;
  sp.bos = v.bos_id;
  sp.eos = v.eos_id;
  sp.pad = v.pad_id;
  sp.unk = v.unk_id;
  sp.start_of_turn = t->PieceToId("<start_of_turn>");
  sp.end_of_turn = t->PieceToId("<end_of_turn>");
  sp.start_of_image = t->PieceToId("<start_of_image>");
  sp.end_of_image = t->PieceToId("<end_of_image>");
  sp.image_soft_token = t->PieceToId("<image_soft_token>");
  for (int32_t id : {sp.eos, t->PieceToId("<eos>"), sp.end_of_turn}) {
    if (id >= 0 && std::find(t->stop_ids_.begin(), t->stop_ids_.end(), id) == t->stop_ids_.end()) {
      t->stop_ids_.push_back(id);
    }
  }
  t->add_bos_ = v.add_bos;
  t->add_eos_ = v.add_eos;
  t->eos_for_add_ = v.eos_id;
  return t;
}

std::vector<int32_t> Tokenizer::Encode(absl::string_view text, bool add_bos) const {
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 2);
  if (add_bos && special_.bos >= 0) ids.push_back(special_.bos);
  BpeCache cache;
  std::string normalized;
  size_t segment_start = 0;
  auto flush_segment = [&](size_t end) {
    if (end > segment_start) {
      Normalize(text.substr(segment_start, end - segment_start), normalized);
      bpe_.EncodeSegment(normalized, ids, cache);
    }
  };
  if (!added_.empty()) {
    for (size_t i = 0; i < text.size();) {
      const TokenTrie::Match m = added_.LongestAt(text, i);
      if (m.id < 0) {
        ++i;
        continue;
      }
      flush_segment(i);
      ids.push_back(m.id);
      i += m.len;
      segment_start = i;
    }
  }
  flush_segment(text.size());
  if (add_eos_ && eos_for_add_ >= 0) ids.push_back(eos_for_add_);
  return ids;
}

absl::string_view Tokenizer::IdToPiece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return pieces_[size_t(id)];
}

int32_t Tokenizer::PieceToId(absl::string_view piece) const {
  auto it = piece_to_id_.find(piece);
  return it == piece_to_id_.end() ? -1 : it->second;
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special) const {
  StreamDecoder decoder(*this, skip_special);
  std::string text;
  for (int32_t id : ids) text += decoder.Push(id);
  text += decoder.Finish();
  return text;
}

void StreamDecoder::FlushBytes(std::string& out) {
  if (bytes_.empty()) return;
  if (utf8::IsValid(bytes_)) {
    out += bytes_;
  } else {
    for (size_t i = 0; i < bytes_.size(); ++i) out.append(kReplacement.data(), kReplacement.size());
  }
  bytes_.clear();
}

std::string StreamDecoder::Push(int32_t id) {
  std::string out;
  if (id < 0 || id >= tok_->vocab_size()) return out;  // skipped, as Hugging Face does
  if (skip_special_ && tok_->IsSpecial(id)) return out;
  const int byte = tok_->byte_value(id);
  if (byte >= 0) {
    bytes_.push_back(char(byte));
    return out;
  }
  FlushBytes(out);
  out += tok_->display(id);
  return out;
}

std::string StreamDecoder::Finish() {
  std::string out;
  FlushBytes(out);
  return out;
}

}  // namespace unicorn
