// VulkanOps::Record: turns a queue of op records into one command buffer,
// with the fusions and the minimal barriers described in vulkan_ops.h.
#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/trace.h"
#include "gpu_worker/vulkan_ops.h"
#include "gpu_worker/vulkan_ops_internal.h"

namespace unicorn::vk {
namespace {

constexpr int64_t kMaxFusedTokens = 16;  // GeGLU fuses into the few-token product only

bool Has(const std::vector<VkBuffer>& v, VkBuffer b) {
  return std::find(v.begin(), v.end(), b) != v.end();
}

// Places a barrier before an access that depends on (or overwrites) what the
// work since the last barrier touched: a compute-only one where that work
// and the access are all dispatches, else a full one. `copy`: the access is
// a transfer (a buffer copy), not a dispatch.
class BarrierTracker {
 public:
  explicit BarrierTracker(CommandBuffer& cmd) : cmd_(cmd) {}
  void Access(const std::vector<VkBuffer>& reads, const std::vector<VkBuffer>& writes,
              bool copy = false) {
    bool hazard = false;
    for (VkBuffer b : reads) hazard |= Has(written_, b);
    for (VkBuffer b : writes) hazard |= Has(written_, b) || Has(read_, b);
    if (hazard) {
      if (copies_ || copy) {
        cmd_.Barrier();
      } else {
        cmd_.ComputeBarrier();
      }
      written_.clear();
      read_.clear();
      copies_ = false;
    }
    copies_ |= copy;
    read_.insert(read_.end(), reads.begin(), reads.end());
    written_.insert(written_.end(), writes.begin(), writes.end());
  }

 private:
  CommandBuffer& cmd_;
  std::vector<VkBuffer> written_, read_;
  bool copies_ = false;  // a transfer since the last barrier
};

// Whether a product takes int8 activations: Q4_0/Q8_0 weights where the
// kernels have int8 on, over the 1..16 rows of a decode step or a short
// chunk (UNICORN_VK_INT8=batch: 2..16, see VulkanOptions), unless the
// tensor-core kernel takes that many tokens (it reads F32).
bool UsesInt8(const Kernels& k, const VulkanOps::Op& op, uint32_t min_tokens) {
  const uint32_t n = uint32_t(op.i[0]);
  return op.kind == OpKind::kMatMul && n >= min_tokens && !k.TakesCoop(op.w[0]->w().dtype, n) &&
         k.Int8Eligible(op.w[0]->w(), n);
}

// "blk.3.attn_q.weight" -> "attn_q": profiles sum over layers by role.
std::string Role(const std::string& name) {
  std::string r = name;
  if (r.rfind("blk.", 0) == 0 || r.rfind("v.blk.", 0) == 0) {
    size_t dot = r.find('.', r.find("blk.") + 4);
    if (dot != std::string::npos) r = (name[0] == 'v' ? "v." : "") + r.substr(dot + 1);
  }
  if (r.size() > 7 && r.compare(r.size() - 7, 7, ".weight") == 0) r.resize(r.size() - 7);
  return r;
}

// The op span kind of a single (unfused) op.
trace::Kind TraceKind(const VulkanOps::Op& op) {
  using K = trace::Kind;
  switch (op.kind) {
    case OpKind::kEmbed:
      return K::kOpEmbed;
    case OpKind::kRmsNorm:
    case OpKind::kLayerNorm:
      return K::kOpNorm;
    case OpKind::kMatMul:
      return trace::MatMulOpKind(op.w[0]->name());
    case OpKind::kRope:
      return K::kOpRope;
    case OpKind::kStoreKv:
      return K::kOpStoreKv;
    case OpKind::kAttention:
      return K::kOpAttentionCore;
    case OpKind::kGeluMul:
      return K::kOpGeglu;
    case OpKind::kGelu:
      return K::kOpGelu;
    case OpKind::kAdd:
      return K::kOpAdd;
    case OpKind::kSoftCap:
      return K::kOpSoftCap;
    case OpKind::kAvgPool:
      return K::kOpAvgPool;
    case OpKind::kArgmax:
      return K::kOpArgmax;
    case OpKind::kCopy:
    case OpKind::kMark:
      break;
  }
  return K::kOpCopy;
}

// An attention op's parameters (its output buffer is b[4]).
AttnParams AttentionParams(const VulkanOps::Op& op) {
  AttnParams ap;
  ap.n_tokens = uint32_t(op.i[0]);
  ap.n_heads = uint32_t(op.i[1]);
  ap.n_kv_heads = uint32_t(op.i[2]);
  ap.head_dim = uint32_t(op.i[3]);
  ap.cap = uint32_t(op.i[4]);
  ap.scale = op.f[0];
  ap.softcap = op.f[1];
  if (op.b[5] != nullptr) ap.rings = op.b[5]->All();
  return ap;
}

}  // namespace

StatusOr<std::unique_ptr<VulkanOps::Graph>> VulkanOps::Record(const std::vector<Op>& queued) {
  // Span marks are not ops: they become timestamps between the ops they
  // stand between, and the ops around them fuse as without them (a fused op
  // that crosses a mark counts before it). With marks (a traced step), every
  // op or fused group inside a part is followed by an op mark too: its
  // timestamp ends the op's span (g->marks lists both in recording order).
  std::vector<Op> body;
  std::vector<size_t> mark_at;  // index into body before which each mark is written
  std::vector<std::pair<int, int>> part_marks;
  auto g = std::make_unique<Graph>();
  for (const Op& op : queued) {
    if (op.kind == OpKind::kMark) {
      mark_at.push_back(body.size());
      part_marks.push_back({int(op.i[0]), int(op.i[1])});
    } else {
      body.push_back(op);
    }
  }
  const std::vector<Op>& ops = body;
  // Resources the recording refers to, made before anything is recorded (a
  // growing scratch buffer drops the cached command buffers).
  uint64_t scratch_bytes = 16, int8_bytes = 16, out_bytes = 16, counter_bytes = 16;
  Kernels& k = *kernels_;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Op& op = ops[i];
    if (op.kind == OpKind::kMatMul && UsesInt8(k, op, int8_min_tokens_)) {
      const vk::Weight& wt = op.w[0]->w();
      int8_bytes = std::max(int8_bytes, Kernels::Q8ActivationBytes(uint32_t(op.i[0]), wt.cols));
      // A gate product (GeLU-mul two ops on) may write its GEGLU output as
      // int8 for the down product (fusion (2b) below): the gate's rows.
      if (handoff_ && i + 2 < ops.size() && ops[i + 2].kind == OpKind::kGeluMul) {
        out_bytes = std::max(out_bytes, Kernels::Q8ActivationBytes(uint32_t(op.i[0]), wt.rows));
        counter_bytes = std::max<uint64_t>(counter_bytes, wt.rows / 32 * 4);
      }
    } else if (op.kind == OpKind::kAttention) {
      const AttnParams ap = AttentionParams(op);
      scratch_bytes = std::max(scratch_bytes, Kernels::AttnScratchBytes(ap));
      if (handoff_ && Kernels::UsesDecodePath(ap)) {
        counter_bytes = std::max(counter_bytes, Kernels::AttnCounterBytes(ap));
      }
    } else if (op.kind == OpKind::kRope) {
      UNICORN_RETURN_IF_ERROR(RopeTable(int(op.i[2]), op.f[0], op.f[1]).status());
    }
  }
  UNICORN_ASSIGN_OR_RETURN(SubBuffer scratch,
                           Scratch(&scratch_, scratch_bytes, "attention scratch"));
  UNICORN_ASSIGN_OR_RETURN(SubBuffer xq, Scratch(&int8_scratch_, int8_bytes, "int8 activations"));
  // A product that writes int8 for the next reads int8 itself: a second buffer.
  UNICORN_ASSIGN_OR_RETURN(SubBuffer xq_out,
                           Scratch(&int8_out_scratch_, out_bytes, "int8 product outputs"));
  UNICORN_ASSIGN_OR_RETURN(SubBuffer counters,
                           Scratch(&counters_, counter_bytes, "hand-off counters", /*zero=*/true));

  g->ops = queued;
  g->cmd = std::make_unique<CommandBuffer>(*device_, options_.profile ? 16384 : 0);
  CommandBuffer& cmd = *g->cmd;
  if (!skip_.empty()) cmd.Skip(skip_);
  const bool traced =
      !part_marks.empty() && cmd.ReserveMarks(uint32_t(part_marks.size() + body.size()));
  cmd.Begin();
  size_t next_mark = 0;
  int open_layer = -1;
  bool part_open = false;
  auto marks_before = [&](size_t i) {
    for (; next_mark < mark_at.size() && mark_at[next_mark] <= i; ++next_mark) {
      if (!traced) continue;
      cmd.Mark();
      g->marks.push_back(part_marks[next_mark]);
      part_open = part_marks[next_mark].first >= 0;
      open_layer = part_marks[next_mark].second;
    }
  };
  auto op_mark = [&](trace::Kind kind) {  // after an op's (or fused group's) dispatches
    if (!traced || !part_open) return;
    cmd.Mark();
    g->marks.push_back({int(kind), open_layer});
  };
  BarrierTracker barriers(cmd);
  std::vector<char> done(ops.size(), 0);
  std::vector<VkBuffer> r, w;

  // Whether `buf` may be read after op `from` - 1 before being overwritten:
  // only a later write with no read before it proves it dead.
  auto read_later = [&](VkBuffer buf, size_t from) {
    std::vector<VkBuffer> rr, ww;
    for (size_t j = from; j < ops.size(); ++j) {
      if (done[j]) continue;
      ops[j].Access(&rr, &ww);
      if (Has(rr, buf)) return true;
      if (Has(ww, buf)) return false;
    }
    return true;
  };
  auto touches = [&](const Op& op, VkBuffer buf) {
    std::vector<VkBuffer> rr, ww;
    op.Access(&rr, &ww);
    return Has(rr, buf) || Has(ww, buf);
  };
  auto vb = [](const OpsBuffer* p) { return p->buf().buffer(); };
  Status st;
  auto check = [&](Status s) {
    if (st.ok() && !s.ok()) st = s;
  };
  // Int8 activations: op i's input x is quantized into xq, unless `held`
  // still holds it (written from x, which no op since `from` has written):
  // q, k and v share one quantization, as do gate and up, and a fused
  // post-norm + residual + next norm, decode attention's merge and a GEGLU
  // product write their outputs quantized too (the last into xq_out, as it
  // reads xq).
  struct {
    const OpsBuffer* x = nullptr;
    uint32_t n = 0, cols = 0;
    size_t from = 0;
    SubBuffer in;
  } held;
  auto int8_input = [&](size_t i, MatMulOptions* opt) {
    const Op& op = ops[i];
    if (!UsesInt8(k, op, int8_min_tokens_)) return;
    const VkBuffer x = vb(op.b[0]);
    const uint32_t n = uint32_t(op.i[0]), cols = op.w[0]->w().cols;
    bool fresh = held.x == op.b[0] && held.n == n && held.cols == cols;
    for (size_t j = held.from; fresh && j < i; ++j) {
      std::vector<VkBuffer> rr, ww;
      ops[j].Access(&rr, &ww);
      fresh = !Has(ww, x);
    }
    if (!fresh) {
      barriers.Access({x}, {xq.buffer});
      cmd.SetLabel("quantize_q8");
      check(k.QuantizeQ8(cmd, op.b[0]->All(), xq, n, cols));
      held = {op.b[0], n, cols, i + 1, xq};
    }
    opt->xq = held.in;
  };
  // Whether the first op after `from` to touch `y` is an int8 product of
  // rows x n that reads it.
  auto int8_reader = [&](const OpsBuffer* y, size_t from, uint32_t rows, uint32_t n) {
    for (size_t j = from; j < ops.size(); ++j) {
      if (!touches(ops[j], vb(y))) continue;
      const Op& c = ops[j];
      return c.kind == OpKind::kMatMul && c.b[0] == y && UsesInt8(k, c, int8_min_tokens_) &&
             uint32_t(c.i[0]) == rows && c.w[0]->w().cols == n;
    }
    return false;
  };
  // (3') below: what the attention op that takes the fused head ops reads.
  std::optional<AttnParams::NewKv> new_kv;
  for (size_t i = 0; i < ops.size() && st.ok(); ++i) {
    marks_before(i);
    if (done[i]) continue;
    const Op& op = ops[i];

    // (1) Post-norm + residual add (+ next pre-norm):
    //     RmsNorm(a -> a2); Add(h, a2 -> h) [; RmsNorm(h -> y)]
    if (op.kind == OpKind::kRmsNorm && i + 1 < ops.size() && !done[i + 1] &&
        ops[i + 1].kind == OpKind::kAdd) {
      const Op& add = ops[i + 1];
      const OpsBuffer* a2 = op.b[1];
      const OpsBuffer* h = add.b[2];
      const bool operands = (add.b[0] == h && add.b[1] == a2) || (add.b[1] == h && add.b[0] == a2);
      if (operands && h != a2 && h != op.b[0] && add.i[0] == op.i[0] * op.i[1]) {
        const Op* next = nullptr;
        if (i + 2 < ops.size() && !done[i + 2] && ops[i + 2].kind == OpKind::kRmsNorm &&
            ops[i + 2].b[0] == h && ops[i + 2].b[1] != h && ops[i + 2].b[1] != op.b[0] &&
            ops[i + 2].i[0] == op.i[0] && ops[i + 2].i[1] == op.i[1] &&
            ops[i + 2].f[0] == op.f[0]) {
          next = &ops[i + 2];
        }
        const size_t after = i + (next ? 3 : 2);
        if (!read_later(vb(a2), after)) {
          const uint32_t rows = uint32_t(op.i[0]), n = uint32_t(op.i[1]);
          const bool quant =
              next && k.CanQuantizeInNorm(n) && int8_reader(next->b[1], after, rows, n);
          r = {vb(op.b[0]), vb(h)};
          w = {vb(h)};
          if (next) w.push_back(vb(next->b[1]));
          if (quant) w.push_back(xq.buffer);
          barriers.Access(r, w);
          cmd.SetLabel(quant ? "add_rms_norm+q8" : next ? "add_rms_norm" : "add_norm");
          check(k.AddRmsNorm(cmd, op.b[0]->All(), op.w[0]->w().buf, h->All(),
                             next ? next->w[0]->w().buf : SubBuffer{},
                             next ? next->b[1]->All() : SubBuffer{}, rows, n, op.f[0],
                             quant ? xq : SubBuffer{}));
          if (quant) held = {next->b[1], rows, n, after, xq};
          done[i] = done[i + 1] = 1;
          if (next) done[i + 2] = 1;
          op_mark(trace::Kind::kOpAddNorm);
          continue;
        }
      }
    }

    // (2) Gate/up products + GeGLU for few tokens (any number on the
    //     tensor cores), over gate and up stored back to back:
    //     MatMul(x, Wg -> g); MatMul(x, Wu -> u); GeluMul(g, u -> g)
    if (op.kind == OpKind::kMatMul && op.w[1] == nullptr &&
        (op.i[0] <= kMaxFusedTokens || k.TakesCoop(op.w[0]->w().dtype, uint32_t(op.i[0]))) &&
        i + 2 < ops.size() && !done[i + 1] && !done[i + 2] && ops[i + 1].kind == OpKind::kMatMul &&
        ops[i + 2].kind == OpKind::kGeluMul) {
      const Op& up = ops[i + 1];
      const Op& gm = ops[i + 2];
      const vk::Weight& wg = op.w[0]->w();
      const vk::Weight& wu = up.w[0] ? up.w[0]->w() : wg;
      const bool adjacent = up.w[1] == nullptr && up.b[0] == op.b[0] && up.i[0] == op.i[0] &&
                            wu.buf.buffer == wg.buf.buffer &&
                            wu.buf.offset == wg.buf.offset + wg.buf.size && wu.dtype == wg.dtype &&
                            wu.rows == wg.rows && wu.cols == wg.cols;
      const bool shape = gm.b[0] == op.b[1] && gm.b[1] == up.b[1] && gm.b[2] == op.b[1] &&
                         gm.i[0] == op.i[0] * int64_t(wg.rows) && op.b[1] != up.b[1];
      if (adjacent && shape && !read_later(vb(up.b[1]), i + 3)) {
        MatMulOptions opt;
        opt.flags = UNICORN_MM_GEGLU;
        int8_input(i, &opt);
        // (2b) ... writing its output quantized for an int8 down product.
        const uint32_t n = uint32_t(op.i[0]);
        const bool quant = opt.xq.size > 0 && handoff_ && wg.rows % 32 == 0 &&
                           int8_reader(op.b[1], i + 3, n, wg.rows);
        if (quant) {
          opt.xq_out = xq_out;
          opt.counters = counters;
        }
        const std::string label = absl::StrCat(quant                      ? "matvec+geglu+q8 "
                                               : k.TakesCoop(wg.dtype, n) ? "coop+geglu "
                                                                          : "matvec+geglu ",
                                               Role(op.w[0]->name()));
        cmd.SetLabel(label);
        r = {vb(op.b[0])};
        if (opt.xq.size > 0) r.push_back(opt.xq.buffer);
        w = {vb(op.b[1])};
        if (quant) w.insert(w.end(), {xq_out.buffer, counters.buffer});
        barriers.Access(r, w);
        g->label_bytes[label] += wg.buf.size + wu.buf.size;
        vk::Weight both = wg;
        both.buf.size = wg.buf.size + wu.buf.size;
        both.rows = 2 * wg.rows;
        check(k.MatMul(cmd, both, op.b[0]->All(), op.b[1]->All(), n, opt));
        if (quant) held = {op.b[1], n, wg.rows, i + 3, xq_out};
        done[i] = done[i + 1] = done[i + 2] = 1;
        op_mark(trace::Kind::kOpGateUpGeglu);
        continue;
      }
    }

    // (3') A single token's head norms, RoPE and K/V store inside decode
    //      attention (AttnParams::new_kv; UNICORN_VK_NEW_KV=1), where q
    //      and k are dead after it:
    //      RmsNorm(q); RmsNorm(k); Rope(q); Rope(k); StoreKv(k, v); Attention(q)
    if (new_kv_ && !handoff_ && op.kind == OpKind::kRmsNorm && op.b[0] == op.b[1] &&
        i + 5 < ops.size() &&
        std::none_of(done.begin() + i + 1, done.begin() + i + 6, [](char c) { return c; })) {
      const Op &kn = ops[i + 1], &rq = ops[i + 2], &rk = ops[i + 3], &so = ops[i + 4],
               &at = ops[i + 5];
      const int64_t D = op.i[1];
      const bool match =
          kn.kind == OpKind::kRmsNorm && kn.b[0] == kn.b[1] && kn.i[1] == D && kn.f[0] == op.f[0] &&
          rq.kind == OpKind::kRope && rq.b[0] == op.b[0] && rq.i[2] == D &&
          rq.i[0] * rq.i[1] == op.i[0] && rk.kind == OpKind::kRope && rk.b[0] == kn.b[0] &&
          rk.i[2] == D && rk.i[0] * rk.i[1] == kn.i[0] && rk.b[1] == rq.b[1] &&
          rk.f[0] == rq.f[0] && rk.f[1] == rq.f[1] && so.kind == OpKind::kStoreKv &&
          so.b[0] == kn.b[0] && so.b[2] == rq.b[1] && so.b[5] == nullptr &&
          so.i[1] == rk.i[1] * D && at.kind == OpKind::kAttention && at.b[0] == op.b[0] &&
          at.b[1] == so.b[3] && at.b[2] == so.b[4] && at.b[5] == nullptr && at.i[0] == 1 &&
          rq.i[0] == 1 && at.i[1] == rq.i[1] && at.i[2] == rk.i[1] && at.i[3] == D &&
          at.i[4] == so.i[2] && Kernels::UsesDecodePath(AttentionParams(at)) &&
          !read_later(vb(op.b[0]), i + 6) && !read_later(vb(kn.b[0]), i + 6);
      if (match) {
        UNICORN_ASSIGN_OR_RETURN(SubBuffer freq, RopeTable(int(D), rq.f[0], rq.f[1]));
        new_kv =
            AttnParams::NewKv{kn.b[0]->All(), so.b[1]->All(), op.w[0]->w().buf, kn.w[0]->w().buf,
                              freq,           rq.b[1]->All(), op.f[0]};
        for (size_t j = i; j < i + 5; ++j) done[j] = 1;
        continue;
      }
    }

    // (3) Head norm + RoPE (+ the store of k and v):
    //     RmsNorm(x -> x per head) ... Rope(x) [... StoreKv(x, v)]
    if (op.kind == OpKind::kRmsNorm && op.b[0] == op.b[1]) {
      const VkBuffer xb = vb(op.b[0]);
      size_t rope = 0, store = 0;
      for (size_t j = i + 1; j < ops.size() && j <= i + 3; ++j) {
        if (done[j]) continue;
        const Op& c = ops[j];
        if (c.kind == OpKind::kRope && c.b[0] == op.b[0] && c.i[0] * c.i[1] == op.i[0] &&
            c.i[2] == op.i[1]) {
          rope = j;
          break;
        }
        if (touches(c, xb)) break;
      }
      if (rope != 0) {
        const Op& ro = ops[rope];
        for (size_t j = rope + 1; j < ops.size() && j <= rope + 2; ++j) {
          if (done[j]) continue;
          const Op& c = ops[j];
          if (c.kind == OpKind::kStoreKv && c.b[0] == op.b[0] && c.b[2] == ro.b[1] &&
              c.i[0] == ro.i[0] && c.i[1] == ro.i[1] * ro.i[2]) {
            // Nothing between the norm and the store may touch v or the stores.
            bool clear = true;
            for (size_t m = i + 1; m < j && clear; ++m) {
              if (done[m] || m == rope) continue;
              clear = !touches(ops[m], vb(c.b[1])) && !touches(ops[m], vb(c.b[3])) &&
                      !touches(ops[m], vb(c.b[4])) && !touches(ops[m], xb);
              if (c.b[5] != nullptr) clear = clear && !touches(ops[m], vb(c.b[5]));
            }
            if (clear && !read_later(xb, j + 1)) store = j;
            break;
          }
          if (touches(c, xb)) break;
        }
        UNICORN_ASSIGN_OR_RETURN(SubBuffer freq, RopeTable(int(ro.i[2]), ro.f[0], ro.f[1]));
        HeadParams hp;
        hp.flags = UNICORN_HEAD_NORM | UNICORN_HEAD_ROPE;
        hp.heads = uint32_t(ro.i[1]);
        hp.head_dim = uint32_t(ro.i[2]);
        hp.eps = op.f[0];
        SubBuffer ks = op.b[0]->All(), v = ks, vs = ks;
        r = {xb, vb(ro.b[1])};
        w = {xb};
        if (store != 0) {
          const Op& so = ops[store];
          hp.flags |= UNICORN_HEAD_STORE;
          hp.cap = uint32_t(so.i[2]);
          ks = so.b[3]->All();
          v = so.b[1]->All();
          vs = so.b[4]->All();
          r.push_back(vb(so.b[1]));
          if (so.b[5] != nullptr) {
            hp.flags |= UNICORN_HEAD_RINGS;
            hp.rings = so.b[5]->All();
            r.push_back(vb(so.b[5]));
          }
          w = {vb(so.b[3]), vb(so.b[4])};
        }
        barriers.Access(r, w);
        cmd.SetLabel(store ? "norm+rope+store_kv" : "norm+rope");
        check(k.HeadNormRope(cmd, op.b[0]->All(), op.w[0]->w().buf, freq, ro.b[1]->All(), ks, v, vs,
                             uint32_t(ro.i[0]), hp));
        done[i] = done[rope] = 1;
        if (store) done[store] = 1;
        op_mark(store ? trace::Kind::kOpHeadNormRopeKv : trace::Kind::kOpHeadNormRope);
        continue;
      }
    }

    // Single ops.
    MatMulOptions mm;
    if (op.kind == OpKind::kMatMul) int8_input(i, &mm);
    op.Access(&r, &w);
    if (mm.xq.size > 0) r.push_back(mm.xq.buffer);
    AttnParams ap;
    if (op.kind == OpKind::kAttention) {  // the decode path also writes the scratch
      r.push_back(scratch.buffer);
      w.push_back(scratch.buffer);
      // (4) Attention's merge writes its output quantized too when an int8
      //     product (o) reads it next, (4b) in the split dispatch itself.
      ap = AttentionParams(op);
      const uint32_t hd = ap.n_heads * ap.head_dim;
      if (int8_fuse_ && k.CanQuantizeInAttention(ap) &&
          int8_reader(op.b[4], i + 1, ap.n_tokens, hd)) {
        ap.xq = xq;
        w.push_back(xq.buffer);
      }
      if (handoff_ && Kernels::UsesDecodePath(ap)) {
        ap.counters = counters;
        w.push_back(counters.buffer);
      }
      if (new_kv) {  // (3') above
        ap.new_kv = *new_kv;
        r.insert(r.end(), {new_kv->k.buffer, new_kv->v.buffer, new_kv->pos.buffer});
        w.push_back(vb(op.b[1]));
        w.push_back(vb(op.b[2]));
      }
    }
    barriers.Access(r, w, op.kind == OpKind::kCopy);
    switch (op.kind) {
      case OpKind::kEmbed:
        cmd.SetLabel("embed");
        check(
            k.Embed(cmd, op.w[0]->w(), op.b[0]->All(), op.b[1]->All(), uint32_t(op.i[0]), op.f[0]));
        break;
      case OpKind::kRmsNorm:
        cmd.SetLabel("rms_norm");
        check(k.RmsNorm(cmd, op.b[0]->All(), op.w[0]->w().buf, op.b[1]->All(), uint32_t(op.i[0]),
                        uint32_t(op.i[1]), op.f[0]));
        break;
      case OpKind::kLayerNorm:
        cmd.SetLabel("layer_norm");
        check(k.LayerNorm(cmd, op.b[0]->All(), op.w[0]->w().buf, op.w[1]->w().buf, op.b[1]->All(),
                          uint32_t(op.i[0]), uint32_t(op.i[1]), op.f[0]));
        break;
      case OpKind::kMatMul: {
        MatMulOptions opt = mm;
        if (op.w[1] != nullptr) {
          opt.flags = UNICORN_MM_BIAS;
          opt.bias = op.w[1]->w().buf;
        }
        const std::string label =
            absl::StrCat(k.TakesCoop(op.w[0]->w().dtype, uint32_t(op.i[0])) ? "coop "
                         : op.i[0] <= kMaxFusedTokens                       ? "matvec "
                                                                            : "matmul ",
                         Role(op.w[0]->name()));
        cmd.SetLabel(label);
        g->label_bytes[label] += op.w[0]->w().buf.size;
        check(k.MatMul(cmd, op.w[0]->w(), op.b[0]->All(), op.b[1]->All(), uint32_t(op.i[0]), opt));
        break;
      }
      case OpKind::kRope: {
        UNICORN_ASSIGN_OR_RETURN(SubBuffer freq, RopeTable(int(op.i[2]), op.f[0], op.f[1]));
        HeadParams hp;
        hp.flags = UNICORN_HEAD_ROPE;
        hp.heads = uint32_t(op.i[1]);
        hp.head_dim = uint32_t(op.i[2]);
        SubBuffer x = op.b[0]->All();
        cmd.SetLabel("rope");
        check(k.HeadNormRope(cmd, x, freq, freq, op.b[1]->All(), x, x, x, uint32_t(op.i[0]), hp));
        break;
      }
      case OpKind::kStoreKv: {
        HeadParams hp;
        hp.flags = UNICORN_HEAD_STORE;
        hp.heads = 1;
        hp.head_dim = uint32_t(op.i[1]);
        hp.cap = uint32_t(op.i[2]);
        if (op.b[5] != nullptr) {
          hp.flags |= UNICORN_HEAD_RINGS;
          hp.rings = op.b[5]->All();
        }
        SubBuffer kx = op.b[0]->All();
        cmd.SetLabel("store_kv");
        check(k.HeadNormRope(cmd, kx, kx, kx, op.b[2]->All(), op.b[3]->All(), op.b[1]->All(),
                             op.b[4]->All(), uint32_t(op.i[0]), hp));
        break;
      }
      case OpKind::kAttention: {
        cmd.SetLabel(absl::StrCat("attention", new_kv ? "+kv" : "",
                                  ap.counters.size > 0 ? "+merge" : "", ap.xq.size > 0 ? "+q8" : "",
                                  k.TakesCoopAttention(ap) ? "+coop" : ""));
        check(k.Attention(cmd, op.b[0]->All(), op.b[1]->All(), op.b[2]->All(), op.b[3]->All(),
                          op.b[4]->All(), scratch, ap));
        new_kv.reset();
        if (ap.xq.size > 0) held = {op.b[4], ap.n_tokens, ap.n_heads * ap.head_dim, i + 1, xq};
        break;
      }
      case OpKind::kGeluMul:
        cmd.SetLabel("geglu");
        check(k.GeGlu(cmd, op.b[0]->All(), op.b[1]->All(), op.b[2]->All(), uint32_t(op.i[0])));
        break;
      case OpKind::kGelu:
        cmd.SetLabel("gelu");
        check(k.Gelu(cmd, op.b[0]->All(), op.b[0]->All(), uint32_t(op.i[0])));
        break;
      case OpKind::kAdd:
        cmd.SetLabel("add");
        check(k.Add(cmd, op.b[0]->All(), op.b[1]->All(), op.b[2]->All(), uint32_t(op.i[0])));
        break;
      case OpKind::kSoftCap:
        cmd.SetLabel("softcap");
        check(k.SoftCap(cmd, op.b[0]->All(), op.b[0]->All(), uint32_t(op.i[0]), op.f[0]));
        break;
      case OpKind::kAvgPool:
        cmd.SetLabel("avg_pool");
        check(k.AvgPool(cmd, op.b[0]->All(), op.b[1]->All(), uint32_t(op.i[0]),
                        uint32_t(op.i[0] / op.i[2]), uint32_t(op.i[1])));
        break;
      case OpKind::kArgmax:
        cmd.SetLabel("argmax");
        check(k.Argmax(cmd, op.b[0]->All(), op.b[1]->All(), uint32_t(op.i[0]), uint32_t(op.i[1]),
                       uint32_t(op.i[1])));
        break;
      case OpKind::kMark:  // taken out above
        break;
      case OpKind::kCopy: {
        const VkDeviceSize bytes = VkDeviceSize(op.i[2]);
        cmd.Copy({op.v[0], VkDeviceSize(op.i[0]), bytes}, {op.v[1], VkDeviceSize(op.i[1]), bytes},
                 bytes);
        break;
      }
    }
    if (traced) op_mark(TraceKind(op));
  }
  marks_before(ops.size());
  UNICORN_RETURN_IF_ERROR(st);
  UNICORN_RETURN_IF_ERROR(cmd.End());
  g->barriers = cmd.barriers();  // the tracker's and those inside kernels (split attention)
  g->dispatches = ops.size();
  for (const Op& op : ops) {
    if (op.kind == OpKind::kMatMul || op.kind == OpKind::kEmbed) {
      g->tokens = std::max(g->tokens, op.i[0]);
    }
  }
  return g;
}

}  // namespace unicorn::vk
