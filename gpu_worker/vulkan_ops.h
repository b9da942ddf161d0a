// VulkanOps: the Vulkan backend of the ops interface (model/ops.h), so the
// one Gemma 3 definition (model/gemma3.h) runs on any Vulkan GPU.
//
// Execution model:
// - Compute ops are queued as small records, not recorded at once. Read()
//   (and a Write() or Copy() that must see queued results) flushes the queue:
//   the records are turned into one command buffer, submitted, and waited on.
// - The command buffer of a queue is cached under the queue's exact
//   signature (ops, shapes, buffers). A decode step issues the same ops with
//   the same buffers every time (what changes - ids, positions, spans - lives
//   in buffers), so from the second step on nothing is recorded: the cached
//   command buffer is re-submitted.
// - When recording, neighbouring ops are fused where it pays and the result
//   is unchanged: post-norm + residual add + next pre-norm; gate/up products
//   + GeGLU (few tokens); q/k head norm + RoPE (+ the K/V store). A fusion
//   that skips writing an intermediate (the normed branch, `up`, `k`) is
//   used only when a later op of the same queue overwrites that
//   intermediate before anything reads it.
// - With int8 activations (see VulkanOptions), a Q4_0/Q8_0 product of
//   1..16 tokens reads its input as int8 blocks: quantized once per
//   distinct input (q/k/v share one, gate/up one), by the fused post-norm +
//   residual + next norm itself where it produces that input, by decode
//   attention's merge for the o product (heads of whole blocks), by the
//   GEGLU product for the down product (opt-in, see VulkanOptions), else
//   by a quantize dispatch. This one changes the numerics,
//   as the CPU backend's int8 activations do.
// - Barriers are placed only where an op touches a buffer that an op since
//   the last barrier wrote (or writes one that was read).
// - Weights live in large device buffers (arenas), uploaded once; 1-D
//   weights (norms, biases) are converted to F32.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "gpu_worker/device_clock.h"
#include "gpu_worker/kernels.h"
#include "gpu_worker/vk/command.h"
#include "gpu_worker/vk/device.h"
#include "gpu_worker/vk/memory.h"
#include "model/ops.h"

namespace unicorn::vk {

class OpsBuffer;
class OpsWeight;

struct VulkanOptions {
  std::string device;    // Instance::Select() syntax: "" = best, index, or name part
  bool profile = false;  // GPU timestamps per dispatch (LastProfile())
  // Matrix-product workgroup shapes are timed and picked per shape on GPUs
  // (Kernels::set_autotune); UNICORN_VK_TUNE=0/1 overrides. Products of
  // Q4_0/Q8_0 weights over 1..16 tokens quantize their activations to int8
  // where the device's int8 dot products are in hardware (Kernels::set_int8);
  // UNICORN_VK_INT8=0/1 overrides, =batch keeps single tokens on F32;
  // decode attention's merge writes the o product's input as int8 itself
  // (UNICORN_VK_INT8_FUSE=0: a quantize_q8 dispatch instead, for A/B runs).
  // UNICORN_VK_HANDOFF=1 turns on the fusions whose workgroups hand their
  // results to the last one through memory (counted on atomic counters):
  // decode attention in one dispatch (the last split merges), and the GEGLU
  // product writing the down product's input as int8. Bit-exact against
  // the unfused forms on lavapipe and an NVIDIA H100, and speed-neutral
  // there (gpu_worker/BENCHMARKS.md), so opt-in until a GPU gains from it.
  // UNICORN_VK_NEW_KV=1: a single token's q/k head norms, RoPE and K/V
  // store run inside decode attention (AttnParams::new_kv), one dispatch
  // and one barrier less per layer. Opt-in: 3.5% slower on an NVIDIA H100,
  // as every split repeats the norms before its first key.
  // UNICORN_VK_SKIP=prefix,... (measurement only, results are wrong) leaves
  // out the dispatches whose profile label starts with a prefix, and
  // "barrier" the barriers: what an op costs inside a whole step.
  size_t max_graphs = 16;  // cached command buffers
  // Waiting for a step: block in the driver until this long before the
  // step's predicted end (its command buffer's last run), then poll the
  // fence until this long past it (Device::SubmitAndWait). -1: 200 us on a
  // GPU of a machine with cores to spare (HasCoresToSpin), else 0 (always
  // block); UNICORN_VK_FENCE_SPIN=N (us) overrides.
  int fence_spin_us = -1;
  // Traced spans put GPU ticks on CLOCK_MONOTONIC with
  // VK_EXT_calibrated_timestamps when the device offers it (false, or
  // UNICORN_VK_CALIBRATE=0: pin the last mark to the fence wait's return).
  bool calibrated_clock = true;
};

class VulkanOps : public Ops {
 public:
  static StatusOr<std::unique_ptr<VulkanOps>> Create(const VulkanOptions& options);
  ~VulkanOps() override;

  std::string Describe() const override;
  Device& device() { return *device_; }

  // Trace spans of model parts in GPU time (Ops::DeviceSpans): the marks
  // become timestamps in the recorded command buffer (a traced step's op
  // sequence is cached apart from the untraced one's), and after the flush
  // that runs them each span between two marks is recorded with
  // trace::RecordDevice. Inside each part, every op (or fused group of ops)
  // is followed by a timestamp too and becomes an op span (trace::IsOp
  // kinds) of the part's layer, nested in the part's span. Device ticks are
  // put on CLOCK_MONOTONIC by VK_EXT_calibrated_timestamps when the device
  // offers it (sampled at creation and again every few seconds of traced
  // steps), else by pinning the last mark to the moment the fence wait
  // returned (the GPU finished at or before it): device_clock.h. No span
  // starts before the submit. A device without timestamps answers false
  // (the model then times the host) and says so once.
  bool DeviceSpans() override;
  bool TunesOnFirstUse() const override { return kernels_->autotune(); }
  // Whether products of n tokens over weights of type w run on the tensor
  // cores (F16 inputs; see Kernels::TakesCoop).
  bool TensorCoreProducts(DType w, int n) const { return kernels_->TakesCoop(w, uint32_t(n)); }
  void MarkSpan(int kind, int layer) override;
  // Whether traced spans use calibrated timestamps (else pinning).
  bool clock_calibrated() const { return clock_.calibrated(); }

  std::unique_ptr<unicorn::Buffer> Alloc(size_t size) override;
  StatusOr<std::unique_ptr<unicorn::Weight>> LoadWeight(const TensorInfo& t) override;
  void Write(unicorn::Buffer& dst, size_t offset, const void* src, size_t n) override;
  void Read(const unicorn::Buffer& src, size_t offset, void* dst, size_t n) override;
  void Copy(const unicorn::Buffer& src, size_t src_off, unicorn::Buffer& dst, size_t dst_off,
            size_t n) override;

  void Embed(const unicorn::Buffer& ids, const unicorn::Weight& table, float scale, int n,
             unicorn::Buffer& out) override;
  void RmsNorm(const unicorn::Buffer& x, const unicorn::Weight& w, int rows, int dim, float eps,
               unicorn::Buffer& out) override;
  void LayerNorm(const unicorn::Buffer& x, const unicorn::Weight& w, const unicorn::Weight& b,
                 int rows, int dim, float eps, unicorn::Buffer& out) override;
  void MatMul(const unicorn::Buffer& x, const unicorn::Weight& w, const unicorn::Weight* bias,
              int n, unicorn::Buffer& y) override;
  void MatMulMulti(const unicorn::Buffer& x, const std::vector<const unicorn::Weight*>& ws, int n,
                   const std::vector<unicorn::Buffer*>& ys) override;
  void Rope(unicorn::Buffer& x, const unicorn::Buffer& pos, int n, int heads, int head_dim,
            const RopeParams& p) override;
  void StoreKv(const unicorn::Buffer& k, const unicorn::Buffer& v, const unicorn::Buffer& pos,
               const unicorn::Buffer* rings, int n, int kv_dim, int capacity,
               unicorn::Buffer& k_store, unicorn::Buffer& v_store) override;
  void Attention(const unicorn::Buffer& q, const unicorn::Buffer& k_store,
                 const unicorn::Buffer& v_store, const unicorn::Buffer& spans,
                 const unicorn::Buffer* rings, int n, const AttentionParams& p,
                 unicorn::Buffer& out) override;
  void GeluMul(const unicorn::Buffer& gate, const unicorn::Buffer& up, size_t n,
               unicorn::Buffer& out) override;
  void Gelu(unicorn::Buffer& x, size_t n) override;
  void Add(const unicorn::Buffer& a, const unicorn::Buffer& b, size_t n,
           unicorn::Buffer& out) override;
  void SoftCap(unicorn::Buffer& x, size_t n, float cap) override;
  void Argmax(const unicorn::Buffer& x, int rows, int n, unicorn::Buffer& ids) override;
  void AvgPool(const unicorn::Buffer& x, int side, int c, int k, unicorn::Buffer& out) override;

  // ---- Host memory used in place (the shared activation arena) ----------
  // Imports [data, data + bytes) so that a Write() whose source, or a Read()
  // whose destination, lies inside it becomes a device copy from or to that
  // memory, queued with the ops: no staging buffer and no memcpy on the host.
  // `dma_buf_fd` >= 0 names a dma-buf behind the mapping (imported through
  // VK_EXT_external_memory_dma_buf; tried first), else the mapping itself is
  // imported (VK_EXT_external_memory_host: `data` and `bytes` must be
  // multiples of the device's minImportedHostPointerAlignment). Unavailable
  // with the reason when neither works or UNICORN_VK_IMPORT=0 forces copies;
  // Write/Read then copy as before. The memory must stay mapped until
  // ForgetHostMemory() or the backend's destruction.
  Status ImportHostMemory(void* data, size_t bytes, int dma_buf_fd, const std::string& what);
  // Drops every import (after the queued work that uses them).
  void ForgetHostMemory();
  // Bytes imported so far.
  uint64_t imported_bytes() const;

  // Forgets every cached command buffer (after the queued work): the next
  // flush of each op sequence records anew. For tests that compare reuse
  // with fresh recording.
  void DropCachedCommandBuffers() {
    (void)Flush();
    DropGraphs();
  }

  // Submits what is queued and waits. Errors (which the void ops cannot
  // return) are kept: the first one is reported here and by status().
  Status Flush();
  const Status& status() const { return status_; }

  // GPU time per dispatch of the last flushed queue (profile option).
  std::vector<TimestampRecord> LastProfile() const { return last_profile_; }
  // Per-op GPU time and weight bytes per step, summed over every flushed
  // queue since creation and grouped by tokens per step (profile option):
  // a table for logs and benchmarks. Also logged when the backend closes.
  std::string ProfileReport() const;
  // Statistics of the command-buffer cache.
  struct Stats {
    uint64_t flushes = 0, recorded = 0, reused = 0, dispatches_last = 0, barriers_last = 0;
    uint64_t imported_writes = 0, imported_reads = 0;  // Write/Read served in place
  };
  const Stats& stats() const { return stats_; }

  // Internal: the queued op records (defined in vulkan_ops.cc).
  struct Op;
  void ForgetBuffer(OpsBuffer* b);

 private:
  struct Graph;
  explicit VulkanOps(const VulkanOptions& o);
  void Enqueue(Op op);
  void Fail(const Status& s);
  StatusOr<std::unique_ptr<Graph>> Record(const std::vector<Op>& ops);
  StatusOr<SubBuffer> RopeTable(int head_dim, float theta, float factor);
  // `buf` (one of the scratch buffers) grown to at least `bytes` (and zeroed
  // when grown, with `zero`); growing it drops the cached command buffers,
  // which refer to the old one.
  StatusOr<SubBuffer> Scratch(Buffer* buf, uint64_t bytes, const char* what, bool zero = false);
  StatusOr<SubBuffer> Arena(uint64_t bytes, const std::string& what, Buffer** owner,
                            VkDeviceSize* offset);
  void DropGraphs();
  // The spans between g's marks, after its run (see DeviceSpans).
  void RecordMarks(const Graph& g, int64_t submitted_ns, int64_t done_ns);
  // The import holding [p, p + bytes) and p's byte offset in it, or nullptr.
  const Buffer* FindImport(const void* p, size_t bytes, VkDeviceSize* offset) const;
  // The cached graph of exactly `ops`, or nullptr; `hash` gets their hash.
  Graph* FindGraph(const std::vector<Op>& ops, uint64_t* hash);
  bool IsImport(VkBuffer b) const;
  // Records copies ops[first, last) into `cmd`, with a barrier after them
  // (`barrier_first` false) or before them (true).
  Status RecordEdge(CommandBuffer& cmd, size_t first, size_t last, bool barrier_first);

  VulkanOptions options_;
  std::unique_ptr<Device> device_;
  std::unique_ptr<Kernels> kernels_;
  Status status_;
  std::vector<Op> queue_;
  std::unordered_multimap<uint64_t, std::unique_ptr<Graph>> graphs_;
  uint64_t graph_clock_ = 0;
  std::vector<Buffer> arenas_;
  VkDeviceSize arena_used_ = 0;
  std::map<std::tuple<int, float, float>, Buffer> rope_tables_;
  Buffer scratch_;           // attention's split-K partials
  Buffer int8_scratch_;      // int8 activations of the few-token products (Kernels::QuantizeQ8)
  Buffer int8_out_scratch_;  // ... as a GEGLU product writes them for the down product
  Buffer counters_;          // zeroed hand-off counters (MatMulOptions, AttnParams::counters)
  uint32_t int8_min_tokens_ = 1;   // products of fewer tokens stay on F32 activations
  bool int8_fuse_ = true;          // the attention merge writes int8 (the fused norm always does)
  bool handoff_ = false;           // fusions through a last-workgroup hand-off (UNICORN_VK_HANDOFF)
  bool new_kv_ = false;            // head norms + RoPE + store inside decode attention
  std::vector<std::string> skip_;  // ablation: dispatch labels left out (UNICORN_VK_SKIP)
  int64_t fence_spin_ns_ = 0;      // VulkanOptions::fence_spin_us
  Buffer upload_;                  // host -> device staging of queued writes
  VkDeviceSize upload_used_ = 0;
  Buffer readback_;  // device -> host
  // Copies from/to imported memory at the start/end of a queue (a stage's
  // input and output), recorded each flush beside the cached graph.
  std::unique_ptr<CommandBuffer> edge_in_, edge_out_;
  struct HostImport {
    const uint8_t* data;
    Buffer buf;
  };
  std::vector<HostImport> imports_;
  std::vector<TimestampRecord> last_profile_;
  bool said_no_timestamps_ = false;
  DeviceClock clock_;  // device ticks -> CLOCK_MONOTONIC for traced spans
  bool said_clock_ = false;
  void Recalibrate();  // samples the calibrated clock (no-op without it)
  struct OpTotals {
    double ms = 0;
    uint64_t count = 0, bytes = 0;
  };
  struct StepTotals {
    uint64_t steps = 0;
    std::map<std::string, OpTotals> ops;
  };
  std::map<int64_t, StepTotals> profile_totals_;  // by tokens per step
  Stats stats_;
};

}  // namespace unicorn::vk
