// Internals of VulkanOps shared by vulkan_ops.cc (queueing, memory) and
// vulkan_ops_record.cc (recording): the buffer and weight types and the op
// records.
#pragma once

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include "gpu_worker/vulkan_ops.h"

namespace unicorn::vk {

// ---- Buffers and weights ------------------------------------------------

// An ops buffer: `size()` 4-byte elements in one device buffer.
class OpsBuffer : public unicorn::Buffer {
 public:
  OpsBuffer(VulkanOps* ops, size_t size, vk::Buffer buf)
      : unicorn::Buffer(size), ops_(ops), buf_(std::move(buf)) {}
  ~OpsBuffer() override { ops_->ForgetBuffer(this); }
  const vk::Buffer& buf() const { return buf_; }
  SubBuffer All() const { return buf_.All(); }

 private:
  VulkanOps* ops_;
  vk::Buffer buf_;
};

// A weight: a range of an arena (or its own buffer) in the file's format.
class OpsWeight : public unicorn::Weight {
 public:
  OpsWeight(const std::string& name, DType dtype, int64_t rows, int64_t cols, SubBuffer sub)
      : unicorn::Weight(name, dtype, rows, cols), w_{sub, dtype, uint32_t(rows), uint32_t(cols)} {}
  const vk::Weight& w() const { return w_; }

 private:
  vk::Weight w_;
};

inline uint64_t Mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

// ---- Queued op records --------------------------------------------------

enum class OpKind : uint8_t {
  kEmbed,      // b0 ids, b1 out; w0 table; i0 n; f0 scale
  kRmsNorm,    // b0 x, b1 out; w0 w; i0 rows, i1 dim; f0 eps
  kLayerNorm,  // b0 x, b1 out; w0 w, w1 b; i0 rows, i1 dim; f0 eps
  kMatMul,     // b0 x, b1 y; w0 W, w1 bias|null; i0 n
  kRope,       // b0 x (in place), b1 pos; i0 n, i1 heads, i2 head_dim; f0 theta, f1 factor
  kStoreKv,    // b0 k, b1 v, b2 pos, b3 k_store, b4 v_store, b5 rings|null;
               // i0 n, i1 kv_dim, i2 capacity
  kAttention,  // b0 q, b1 k_store, b2 v_store, b3 spans, b4 out, b5 rings|null;
               // i0 n, i1 heads, i2 kv_heads, i3 head_dim, i4 capacity; f0 scale, f1 softcap
  kGeluMul,    // b0 gate, b1 up, b2 out; i0 n
  kGelu,       // b0 x; i0 n
  kAdd,        // b0 a, b1 b, b2 out; i0 n
  kSoftCap,    // b0 x; i0 n; f0 cap
  kAvgPool,    // b0 x, b1 out; i0 side, i1 c, i2 k
  kArgmax,     // b0 x, b1 ids; i0 rows, i1 n
  kCopy,       // raw: v0 src, v1 dst (VkBuffer); i0 src bytes off, i1 dst bytes off, i2 bytes
  kMark,       // a trace span mark (Ops::MarkSpan): i0 trace::Kind or -1 (end), i1 layer
};

struct VulkanOps::Op {
  OpKind kind;
  const OpsBuffer* b[6] = {};
  const OpsWeight* w[2] = {};
  VkBuffer v[2] = {};
  int64_t i[5] = {};
  float f[2] = {};

  bool operator==(const Op& o) const {
    return kind == o.kind && std::equal(b, b + 6, o.b) && std::equal(w, w + 2, o.w) &&
           std::equal(v, v + 2, o.v) && std::equal(i, i + 5, o.i) &&
           std::memcmp(f, o.f, sizeof(f)) == 0;
  }
  uint64_t Hash() const {
    uint64_t h = uint64_t(kind);
    for (auto* p : b) h = Mix(h, reinterpret_cast<uintptr_t>(p));
    for (auto* p : w) h = Mix(h, reinterpret_cast<uintptr_t>(p));
    for (VkBuffer p : v) h = Mix(h, uint64_t(reinterpret_cast<uintptr_t>(p)));
    for (int64_t x : i) h = Mix(h, uint64_t(x));
    for (float x : f) {
      uint32_t u;
      std::memcpy(&u, &x, 4);
      h = Mix(h, u);
    }
    return h;
  }
  // Buffers read and written, by VkBuffer handle (for barriers and fusion).
  void Access(std::vector<VkBuffer>* r, std::vector<VkBuffer>* wr) const {
    auto vb = [](const OpsBuffer* p) { return p->buf().buffer(); };
    switch (kind) {
      case OpKind::kEmbed:
      case OpKind::kRmsNorm:
      case OpKind::kLayerNorm:
      case OpKind::kMatMul:
      case OpKind::kAvgPool:
      case OpKind::kArgmax:
        *r = {vb(b[0])};
        *wr = {vb(b[1])};
        return;
      case OpKind::kRope:
        *r = {vb(b[0]), vb(b[1])};
        *wr = {vb(b[0])};
        return;
      case OpKind::kStoreKv:
        *r = {vb(b[0]), vb(b[1]), vb(b[2])};
        if (b[5] != nullptr) r->push_back(vb(b[5]));
        *wr = {vb(b[3]), vb(b[4])};
        return;
      case OpKind::kAttention:
        *r = {vb(b[0]), vb(b[1]), vb(b[2]), vb(b[3])};
        if (b[5] != nullptr) r->push_back(vb(b[5]));
        *wr = {vb(b[4])};
        return;
      case OpKind::kGeluMul:
      case OpKind::kAdd:
        *r = {vb(b[0]), vb(b[1])};
        *wr = {vb(b[2])};
        return;
      case OpKind::kGelu:
      case OpKind::kSoftCap:
        *r = {vb(b[0])};
        *wr = {vb(b[0])};
        return;
      case OpKind::kCopy:
        *r = {v[0]};
        *wr = {v[1]};
        return;
      case OpKind::kMark:
        r->clear();
        wr->clear();
        return;
    }
  }
};

struct VulkanOps::Graph {
  std::vector<Op> ops;
  std::unique_ptr<CommandBuffer> cmd;
  uint64_t last_used = 0;
  uint64_t dispatches = 0, barriers = 0;
  int64_t tokens = 0;                           // rows of the widest product
  int64_t last_ns = 0;                          // its last run, submit to fence (0: none yet)
  std::map<std::string, uint64_t> label_bytes;  // weight bytes read, by profile label
  std::vector<std::pair<int, int>> marks;       // (trace kind or -1, layer) per timestamp
};

}  // namespace unicorn::vk
