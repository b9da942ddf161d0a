#include "common/trace.h"

#include <time.h>

#include <algorithm>
#include <set>

namespace unicorn::trace {
namespace {

struct KindInfo {
  const char* name;
  const char* category;
};

constexpr KindInfo kKinds[] = {
    {"queue", "request"},
    {"tokenize", "request"},
    {"in step", "request"},
    {"sample", "request"},
    {"stream", "request"},
    {"step", "step"},
    {"schedule", "step"},
    {"hop", "step"},
    {"logits", "step"},
    {"receive", "worker"},
    {"shm read", "worker"},
    {"compute", "worker"},
    {"embedding", "layer"},
    {"attention", "layer"},
    {"ffn", "layer"},
    {"lm_head", "layer"},
    {"shm write", "worker"},
    {"image preprocess", "request"},
    {"vision hop", "step"},
    {"vision", "layer"},
    // Ops.
    {"embed", "op"},
    {"norm", "op"},
    {"add+norm", "op"},
    {"matmul attn_qkv", "op"},
    {"matmul attn_q", "op"},
    {"matmul attn_k", "op"},
    {"matmul attn_v", "op"},
    {"matmul attn_output", "op"},
    {"matmul ffn_gate+up", "op"},
    {"matmul ffn_gate", "op"},
    {"matmul ffn_up", "op"},
    {"matmul ffn_gate+up+geglu", "op"},
    {"matmul ffn_down", "op"},
    {"matmul lm_head", "op"},
    {"matmul other", "op"},
    {"rope+head norm", "op"},
    {"rope+head norm+kv store", "op"},
    {"rope", "op"},
    {"kv store", "op"},
    {"attention core", "op"},
    {"geglu", "op"},
    {"gelu", "op"},
    {"add", "op"},
    {"softcap", "op"},
    {"avg pool", "op"},
    {"copy", "op"},
    {"argmax", "op"},
};
static_assert(sizeof(kKinds) / sizeof(kKinds[0]) == size_t(Kind::kCount),
              "every Kind needs a name and a category");

std::mutex& NamesMu() {
  static std::mutex mu;
  return mu;
}
std::vector<std::string>& Names() {
  static std::vector<std::string> names{"local"};
  return names;
}

}  // namespace

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

const char* KindName(Kind k) {
  return size_t(k) < size_t(Kind::kCount) ? kKinds[size_t(k)].name : "?";
}

const char* KindCategory(Kind k) {
  return size_t(k) < size_t(Kind::kCount) ? kKinds[size_t(k)].category : "?";
}

bool KindFromInt(int v, Kind* out) {
  if (v < 0 || v >= int(Kind::kCount)) return false;
  *out = static_cast<Kind>(v);
  return true;
}

Kind MatMulOpKind(const std::string& weight_name, size_t count) {
  // "blk.3.attn_q.weight" -> "attn_q"; vision ("v.blk...", "mm...") is "other".
  if (weight_name.rfind("token_embd.", 0) == 0 || weight_name.rfind("output.", 0) == 0) {
    return Kind::kOpLmHead;
  }
  if (weight_name.rfind("blk.", 0) != 0) return Kind::kOpMatMul;
  const size_t dot = weight_name.find('.', 4);
  if (dot == std::string::npos) return Kind::kOpMatMul;
  std::string role = weight_name.substr(dot + 1);
  if (const size_t end = role.find('.'); end != std::string::npos) role.resize(end);
  if (count > 1) {
    if (role == "attn_q") return Kind::kOpQkv;
    if (role == "ffn_gate") return Kind::kOpGateUp;
    return Kind::kOpMatMul;
  }
  static const std::pair<const char*, Kind> kRoles[] = {
      {"attn_q", Kind::kOpQ},      {"attn_k", Kind::kOpK},
      {"attn_v", Kind::kOpV},      {"attn_output", Kind::kOpAttnOutput},
      {"ffn_gate", Kind::kOpGate}, {"ffn_up", Kind::kOpUp},
      {"ffn_down", Kind::kOpDown},
  };
  for (const auto& [name, kind] : kRoles) {
    if (role == name) return kind;
  }
  return Kind::kOpMatMul;
}

uint16_t ProcessId(const std::string& name) {
  if (name.empty()) return 0;
  std::lock_guard<std::mutex> lock(NamesMu());
  auto& names = Names();
  for (size_t i = 1; i < names.size(); ++i) {
    if (names[i] == name) return uint16_t(i);
  }
  if (names.size() >= 65535) return 0;
  names.push_back(name);
  return uint16_t(names.size() - 1);
}

std::string ProcessName(uint16_t id) {
  std::lock_guard<std::mutex> lock(NamesMu());
  auto& names = Names();
  return id < names.size() ? names[id] : "?";
}

void SetLocalProcessName(const std::string& name) {
  std::lock_guard<std::mutex> lock(NamesMu());
  Names()[0] = name;
}

ThreadState& Current() {
  static thread_local ThreadState state;
  return state;
}

Ring::Ring(size_t capacity) : buf_(std::max<size_t>(capacity, 1)) {}

void Ring::Add(const Span& s) {
  std::lock_guard<std::mutex> lock(mu_);
  buf_[next_ % buf_.size()] = s;
  ++next_;
}

std::vector<Span> Ring::Since(int64_t since_ns) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Span> out;
  uint64_t first = next_ > buf_.size() ? next_ - buf_.size() : 0;
  for (uint64_t i = first; i < next_; ++i) {
    const Span& s = buf_[i % buf_.size()];
    if (s.end_ns >= since_ns) out.push_back(s);
  }
  return out;
}

std::vector<Span> Ring::ForRequest(uint64_t request_id) const {
  std::vector<Span> all = Since(0);
  std::set<uint64_t> steps;
  for (const Span& s : all) {
    if (s.kind == Kind::kInStep && s.request_id == request_id) steps.insert(s.step);
  }
  std::vector<Span> out;
  for (const Span& s : all) {
    bool own = s.request_id == request_id;
    bool shared_step = s.request_id == 0 && s.step != 0 && steps.count(s.step);
    if (own || shared_step) out.push_back(s);
  }
  return out;
}

}  // namespace unicorn::trace
