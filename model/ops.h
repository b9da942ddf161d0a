// The operations every compute backend implements (CPU now; Vulkan and XRT
// later). The Gemma 3 model (model/gemma3.h) and the SigLIP vision tower
// (model/siglip.h) are written once against this interface.
//
// Design:
// - Buffers and weights are backend-owned handles. Activation buffers hold
//   4-byte elements (f32, or i32 for ids, positions and spans); weights keep
//   their file format (F32, F16, BF16, Q8_0, Q4_0) and are used in place
//   where the backend can.
// - Every op names its shapes explicitly. Everything that changes from one
//   step to the next (token ids, positions, attention spans) travels as data in
//   buffers, never as op parameters, so a GPU backend can record a layer's
//   dispatches once and re-submit them; only the row count `n` varies between a
//   prefill chunk and a decode step.
// - Ops are issued from one thread, in order. A backend may queue them; Read()
//   waits for all queued work. The CPU backend runs each op at once on its
//   thread pool.
// - Norms, softmax and attention sums accumulate in f32 in every backend.
// - Unless an op says otherwise, its output must not alias its inputs.
//
// Shape comments: [rows, cols] is row-major, outermost first.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/dtype.h"
#include "model/tensor.h"

namespace unicorn {

// A backend-owned buffer of `size()` 4-byte elements.
class Buffer {
 public:
  explicit Buffer(size_t size) : size_(size) {}
  virtual ~Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  size_t size() const { return size_; }

 private:
  size_t size_;
};

// A weight as the backend holds it: a matrix [rows, cols] in `dtype` (a 1-D
// tensor [n] is rows = 1, cols = n; a conv kernel [o, c, h, w] is rows = o,
// cols = c*h*w).
class Weight {
 public:
  Weight(std::string name, DType dtype, int64_t rows, int64_t cols)
      : name_(std::move(name)), dtype_(dtype), rows_(rows), cols_(cols) {}
  virtual ~Weight() = default;
  Weight(const Weight&) = delete;
  Weight& operator=(const Weight&) = delete;
  const std::string& name() const { return name_; }
  DType dtype() const { return dtype_; }
  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }

 private:
  std::string name_;
  DType dtype_;
  int64_t rows_, cols_;
};

// Rotary embedding of one layer type (transformers' Gemma3RotaryEmbedding):
// inv_freq[i] = 1 / theta^(2i/head_dim) / linear_factor, computed in f32.
struct RopeParams {
  float theta = 10000.0f;
  float linear_factor = 1.0f;
};

// Attention over a key/value store. Keys and values of position p live in
// slot p % capacity of the store (a ring when capacity is smaller than the
// sequence, as on sliding-window layers). A store may hold the rings of
// several sequences (a batch): [rings * capacity, kv_dim], ring r at slots
// [r * capacity, (r + 1) * capacity); StoreKv and Attention then take the
// ring of each row.
struct AttentionParams {
  int n_heads = 0;     // query heads
  int n_kv_heads = 0;  // key/value heads; query head h reads kv head h / (n_heads / n_kv_heads)
  int head_dim = 0;
  int capacity = 0;      // slots in the store
  float scale = 1.0f;    // applied to q.k before the softcap and softmax
  float softcap = 0.0f;  // 0 = none; else s = tanh(s / softcap) * softcap
};

class Ops {
 public:
  virtual ~Ops() = default;

  // "cpu (2 threads, AVX3_DL)" and the like, for logs and benchmarks.
  virtual std::string Describe() const = 0;

  // ---- Device-timed trace spans (common/trace.h) ------------------------
  // A backend that queues its work (Vulkan) answers true while the calling
  // thread's step is traced and it can time work on the device. The model
  // then calls MarkSpan(kind, layer) where a part's ops start and
  // MarkSpan(-1, -1) after the last part, instead of timing the host, and the
  // backend records one span per part, with device times on CLOCK_MONOTONIC,
  // once the work has run. `kind` is a trace::Kind.
  virtual bool DeviceSpans() { return false; }

  // A backend that times kernel variants on the first use of a shape
  // (Vulkan on GPUs) answers true: its first steps would stall for seconds
  // (long enough to miss heartbeats), so a pipeline stage runs warm-up
  // passes of the decode batch sizes when it loads.
  virtual bool TunesOnFirstUse() const { return false; }
  virtual void MarkSpan(int kind, int layer) {
    (void)kind;
    (void)layer;
  }

  // ---- Memory ----------------------------------------------------------
  // A buffer of `size` 4-byte elements, zero-filled.
  virtual std::unique_ptr<Buffer> Alloc(size_t size) = 0;
  // Makes `t` usable by the ops. The CPU backend uses t.data in place (it must
  // outlive the Weight); 1-D tensors may be converted to f32 copies. Errors
  // for dtypes or shapes the backend cannot run.
  virtual StatusOr<std::unique_ptr<Weight>> LoadWeight(const TensorInfo& t) = 0;
  // Host -> buffer elements [offset, offset + n).
  virtual void Write(Buffer& dst, size_t offset, const void* src, size_t n) = 0;
  // Buffer elements [offset, offset + n) -> host, after all queued work.
  virtual void Read(const Buffer& src, size_t offset, void* dst, size_t n) = 0;
  // dst[dst_off, dst_off + n) = src[src_off, src_off + n).
  virtual void Copy(const Buffer& src, size_t src_off, Buffer& dst, size_t dst_off, size_t n) = 0;

  // ---- Compute ---------------------------------------------------------
  // out[i, :] = table[ids[i], :] * scale.
  //   ids i32 [n], table [vocab, d], out [n, d]. Ids outside [0, vocab) give zero rows.
  virtual void Embed(const Buffer& ids, const Weight& table, float scale, int n, Buffer& out) = 0;

  // Gemma RMSNorm (transformers' Gemma3RMSNorm), per row of `dim`:
  //   out = x / sqrt(mean(x^2) + eps) * (1 + w)
  //   x [rows, dim], w [dim], out [rows, dim]; out may alias x.
  // Used per head for the q/k norms (rows = n * heads, dim = head_dim).
  virtual void RmsNorm(const Buffer& x, const Weight& w, int rows, int dim, float eps,
                       Buffer& out) = 0;

  // LayerNorm (SigLIP), per row: out = (x - mean) / sqrt(var + eps) * w + b.
  //   x [rows, dim], w [dim], b [dim], out [rows, dim]; out may alias x.
  virtual void LayerNorm(const Buffer& x, const Weight& w, const Weight& b, int rows, int dim,
                         float eps, Buffer& out) = 0;

  // y = x W^T (+ bias):  x [n, in], W [out, in], bias [out] or null, y [n, out].
  virtual void MatMul(const Buffer& x, const Weight& w, const Weight* bias, int n, Buffer& y) = 0;

  // Several projections of one input in one dispatch (q/k/v, gate/up):
  // ys[j] = x Ws[j]^T; all Ws share `in`. Same result as separate MatMuls.
  // (Callers on the decode path pass vectors they keep, so nothing allocates.)
  virtual void MatMulMulti(const Buffer& x, const std::vector<const Weight*>& ws, int n,
                           const std::vector<Buffer*>& ys) = 0;

  // Rotary embedding in place, rotate_half (NeoX) style as transformers'
  // apply_rotary_pos_emb: for i < head_dim/2, with f = pos * inv_freq[i]:
  //   x'[i] = x[i] cos f - x[i + half] sin f;  x'[i + half] = x[i + half] cos f + x[i] sin f
  //   x [n, heads, head_dim], pos i32 [n].
  virtual void Rope(Buffer& x, const Buffer& pos, int n, int heads, int head_dim,
                    const RopeParams& p) = 0;

  // Stores k, v of n tokens into the store at slots ring[i] * capacity +
  // pos[i] % capacity (`rings` null: ring 0 for every row).
  //   k, v [n, kv_dim]; pos i32 [n]; rings i32 [n] or null;
  //   k_store, v_store [rings * capacity, kv_dim].
  virtual void StoreKv(const Buffer& k, const Buffer& v, const Buffer& pos, const Buffer* rings,
                       int n, int kv_dim, int capacity, Buffer& k_store, Buffer& v_store) = 0;

  // Softmax attention. Query i sees the keys at positions spans[i, 0] ..
  // spans[i, 1] inclusive of its ring (rings[i]; ring 0 when `rings` is
  // null). The caller builds causal, sliding-window and image masks into the
  // spans; each span must be non-empty and held in the store.
  //   q [n, n_heads, head_dim], k_store, v_store [rings * capacity, n_kv_heads, head_dim],
  //   spans i32 [n, 2], rings i32 [n] or null, out [n, n_heads, head_dim].
  virtual void Attention(const Buffer& q, const Buffer& k_store, const Buffer& v_store,
                         const Buffer& spans, const Buffer* rings, int n, const AttentionParams& p,
                         Buffer& out) = 0;

  // out = gelu_tanh(gate) * up (Gemma's GeGLU; gelu_pytorch_tanh):
  //   gelu_tanh(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). All [n]; out may alias.
  virtual void GeluMul(const Buffer& gate, const Buffer& up, size_t n, Buffer& out) = 0;
  // x = gelu_tanh(x) in place, [n].
  virtual void Gelu(Buffer& x, size_t n) = 0;
  // out = a + b, [n]; out may alias a or b.
  virtual void Add(const Buffer& a, const Buffer& b, size_t n, Buffer& out) = 0;
  // x = tanh(x / cap) * cap in place, [n] (final logit soft-capping).
  virtual void SoftCap(Buffer& x, size_t n, float cap) = 0;
  // ids[r] = the first index of the largest of x[r, 0..n) for r < rows (the
  // rule of model/sampler.h Argmax); ids holds i32. Greedy rows need only
  // this. By default on the host, through Read and Write (model/ops.cc).
  virtual void Argmax(const Buffer& x, int rows, int n, Buffer& ids);
  // Average pooling of a square grid of feature rows (Gemma3MultiModalProjector):
  //   x [side*side, c] (row = y*side + x), out [(side/k)^2, c], k divides side.
  virtual void AvgPool(const Buffer& x, int side, int c, int k, Buffer& out) = 0;
};

}  // namespace unicorn
