#include "gpu_worker/vulkan_ops.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "common/cores.h"
#include "common/log.h"
#include "common/trace.h"
#include "gpu_worker/vk/external_memory.h"
#include "gpu_worker/vulkan_ops_internal.h"
#include "model/quant.h"

namespace unicorn::vk {

namespace {

// Whether environment variable `name` is set to exactly `value`.
bool EnvIs(const char* name, const char* value) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, value) == 0;
}

constexpr VkDeviceSize kFirstArena = VkDeviceSize(64) << 20;
constexpr VkDeviceSize kMaxArena = VkDeviceSize(1) << 30;

const OpsBuffer& B(const unicorn::Buffer& b) { return static_cast<const OpsBuffer&>(b); }
const OpsWeight& W(const unicorn::Weight& w) { return static_cast<const OpsWeight&>(w); }

}  // namespace

// ---- Set-up ---------------------------------------------------------------

StatusOr<std::unique_ptr<VulkanOps>> VulkanOps::Create(const VulkanOptions& options) {
  std::unique_ptr<VulkanOps> ops(new VulkanOps(options));
  UNICORN_ASSIGN_OR_RETURN(ops->device_, Device::Open(options.device));
  UNICORN_ASSIGN_OR_RETURN(ops->kernels_, Kernels::Create(*ops->device_));
  // Timing candidates pays off on GPUs; on a CPU driver (CI's lavapipe) it
  // would only cost time.
  const char* tune = std::getenv("UNICORN_VK_TUNE");
  ops->kernels_->set_autotune(tune ? std::strcmp(tune, "0") != 0
                                   : ops->device_->caps().type != "cpu");
  const DeviceCaps& caps = ops->device_->caps();
  // Int8 activations for the few-token products where the device's int8
  // dot products are in hardware: "0" off, "1" on, "batch" on over 2..16
  // tokens only (single-token decode on F32 activations).
  const char* int8 = std::getenv("UNICORN_VK_INT8");
  ops->kernels_->set_int8(int8 ? std::strcmp(int8, "0") != 0 : caps.int8_dot_accelerated);
  ops->int8_min_tokens_ = int8 && std::strcmp(int8, "batch") == 0 ? 2 : 1;
  // "1", tests only: the tensor-core kernels with emulated fragments where
  // the device has no cooperative matrices (slow; checks their logic).
  ops->kernels_->set_coop_emulation(EnvIs("UNICORN_VK_COOP_EMULATE", "1"));
  // Tensor-core products (where the device has VK_NV_cooperative_matrix)
  // for products of this many tokens or more: "0" off, "N" from N tokens
  // (>= 2). Default: prefill chunks (17+); a decode step's 2..16 rows stay
  // on the int8 kernels.
  const char* coop = std::getenv("UNICORN_VK_COOPMAT");
  ops->kernels_->set_coopmat(coop ? uint32_t(std::max(0, std::atoi(coop))) : 17);
  // "1": autotuning also times the int8 products of 2..16 tokens on the
  // tensor cores (matmul_int8_coop.comp; off: it never won on an H100).
  ops->kernels_->set_int8_coop(EnvIs("UNICORN_VK_INT8_COOP", "1"));
  // "1": prefill attention on the tensor cores too (attn_prefill_coop.comp;
  // off: slower than the F32 kernel on an H100).
  ops->kernels_->set_coop_attention(EnvIs("UNICORN_VK_COOP_ATTN", "1"));
  // "0": prefill attention on the 8-row kernel (attn_prefill.comp) instead
  // of the register-tiled one, for A/B runs.
  ops->kernels_->set_tiled_attention(!EnvIs("UNICORN_VK_TILED_ATTN", "0"));
  // Their activations as one F16 value each (as llama.cpp's F16 products
  // take them): 1.28-1.32x faster at pp512 on an NVIDIA H100 than a high
  // and a low F16 part, at 3e-3 of the logit std (gpu_worker/BENCHMARKS.md,
  // ninth round). "0": two parts, about 21 bits.
  ops->kernels_->set_coop_x_f16(!EnvIs("UNICORN_VK_COOPMAT_X16", "0"));
  // Whether the attention merge writes int8 too (the fused norm always
  // does): "0" neither, for A/B runs.
  ops->int8_fuse_ = !EnvIs("UNICORN_VK_INT8_FUSE", "0");
  // Fusions whose workgroups hand results to the last one through memory
  // (see VulkanOptions): "1" on.
  ops->handoff_ = EnvIs("UNICORN_VK_HANDOFF", "1");
  ops->new_kv_ = EnvIs("UNICORN_VK_NEW_KV", "1");
  if (const char* skip = std::getenv("UNICORN_VK_SKIP"); skip != nullptr && *skip != '\0') {
    ops->skip_ = absl::StrSplit(skip, ',', absl::SkipEmpty());
    LOG_WARN("[vk] UNICORN_VK_SKIP={}: these dispatches are left out, results are wrong", skip);
  }
  const char* spin = std::getenv("UNICORN_VK_FENCE_SPIN");
  int spin_us = spin ? std::atoi(spin) : options.fence_spin_us;
  if (spin_us < 0) spin_us = caps.type != "cpu" && HasCoresToSpin() ? 200 : 0;
  ops->fence_spin_ns_ = int64_t(spin_us) * 1000;
  ops->clock_ = DeviceClock(caps.timestamp_period_ns, caps.timestamp_valid_bits);
  if (options.calibrated_clock && !EnvIs("UNICORN_VK_CALIBRATE", "0")) {
    ops->Recalibrate();
  }
  return ops;
}

void VulkanOps::Recalibrate() {
  if (!device_->caps().calibrated_timestamps) return;
  uint64_t tick = 0, deviation = 0;
  int64_t ns = 0;
  if (Status s = device_->CalibratedTimestamps(&tick, &ns, &deviation); !s.ok()) {
    LOG_WARN("{} (traced spans keep the last calibration, or pin to the fence)", s.message());
    return;
  }
  clock_.Calibrate(tick, ns);
  LOG_DEBUG("[vk] clock calibrated: tick {} at {} ns (deviation {} ns)", tick, ns, deviation);
}

VulkanOps::VulkanOps(const VulkanOptions& o) : options_(o) {}

VulkanOps::~VulkanOps() {
  if (device_) (void)device_->WaitIdle();
  imports_.clear();
  if (options_.profile && !profile_totals_.empty()) {
    LOG_INFO("[vk] GPU profile ({}):\n{}", device_->caps().name, ProfileReport());
  }
  graphs_.clear();
}

std::string VulkanOps::Describe() const { return absl::StrCat("vulkan: ", device_->Describe()); }

void VulkanOps::Fail(const Status& s) {
  if (status_.ok()) {
    LOG_ERROR("{}", s.message());
    status_ = s;
  }
}

void VulkanOps::DropGraphs() {
  if (graphs_.empty()) return;
  (void)device_->WaitIdle();
  graphs_.clear();
}

void VulkanOps::ForgetBuffer(OpsBuffer* b) {
  // Queued work that names it (a copy names buffers by handle) runs first.
  const VkBuffer handle = b->buf().buffer();
  for (const Op& op : queue_) {
    if (std::find(op.b, op.b + 6, b) != op.b + 6 ||
        (op.kind == OpKind::kCopy && (op.v[0] == handle || op.v[1] == handle))) {
      (void)Flush();
      break;
    }
  }
  DropGraphs();  // cached command buffers may name it
}

std::unique_ptr<unicorn::Buffer> VulkanOps::Alloc(size_t size) {
  auto buf = device_->allocator().Create(std::max<VkDeviceSize>(size * 4, 16), MemoryUse::kDevice,
                                         absl::StrCat("buffer of ", size, " floats"));
  bool placeholder = false;
  if (!buf.ok()) {
    Fail(buf.status());
    // A tiny buffer keeps callers going; the error is in status().
    buf = device_->allocator().Create(16, MemoryUse::kHost, "placeholder");
    UNICORN_CHECK(buf.ok());
    placeholder = true;
  }
  // Large device buffers are zeroed by the GPU even where the host can map
  // them (a large BAR): a memset across the bus took seconds for a batch's
  // KV stores, long enough for a worker to miss its heartbeats.
  if (buf->mapped() != nullptr && (placeholder || buf->size() < (VkDeviceSize(1) << 20))) {
    std::memset(buf->mapped(), 0, buf->size());
  } else if (Status s = device_->allocator().Zero(buf->All()); !s.ok()) {
    Fail(s);
  }
  return std::make_unique<OpsBuffer>(this, size, std::move(*buf));
}

StatusOr<SubBuffer> VulkanOps::Arena(uint64_t bytes, const std::string& what, Buffer** owner,
                                     VkDeviceSize* offset) {
  const VkDeviceSize align =
      std::max<VkDeviceSize>(256, device_->caps().min_storage_offset_alignment);
  VkDeviceSize at = (arena_used_ + align - 1) / align * align;
  if (arenas_.empty() || at + bytes > arenas_.back().size()) {
    VkDeviceSize size =
        arenas_.empty() ? kFirstArena : std::min(arenas_.back().size() * 2, kMaxArena);
    size = std::max<VkDeviceSize>(size, bytes);
    if (size > device_->caps().max_storage_buffer_range) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "[vk] ", what, ": ", HumanBytes(bytes), " exceeds the device's storage buffer range of ",
          HumanBytes(device_->caps().max_storage_buffer_range)));
    }
    UNICORN_ASSIGN_OR_RETURN(Buffer b, device_->allocator().Create(size, MemoryUse::kDevice,
                                                                   absl::StrCat("weights ", what)));
    arenas_.push_back(std::move(b));
    at = 0;
  }
  arena_used_ = at + bytes;
  *owner = &arenas_.back();
  *offset = at;
  return arenas_.back().Sub(at, bytes);
}

StatusOr<std::unique_ptr<unicorn::Weight>> VulkanOps::LoadWeight(const TensorInfo& t) {
  std::string ctx = absl::StrCat("[vk] weight ", t.name);
  if (t.shape.empty() || t.numel() <= 0 || t.data == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": empty"));
  }
  const int64_t rows = t.shape.size() == 1 ? 1 : t.shape[0];
  const int64_t cols = t.numel() / rows;
  const DTypeTraits& tr = Traits(t.dtype);
  if (cols % tr.block_elems != 0 || rows > int64_t(UINT32_MAX) || cols > int64_t(UINT32_MAX)) {
    return absl::InvalidArgumentError(absl::StrCat(
        ctx, ": rows of ", cols, " elements are not whole ", std::string(tr.name), " blocks"));
  }
  const size_t bytes = size_t(rows) * RowBytes(t.dtype, cols);
  if (t.nbytes < bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx, ": ", t.nbytes, " bytes, its shape needs ", bytes));
  }
  Buffer* owner = nullptr;
  VkDeviceSize offset = 0;
  if (t.shape.size() == 1) {
    // Norm weights and biases: F32 copies.
    std::vector<float> f(static_cast<size_t>(cols));
    DequantizeRow(t.dtype, t.data, f.data(), cols);
    UNICORN_ASSIGN_OR_RETURN(SubBuffer sub, Arena(f.size() * 4, t.name, &owner, &offset));
    UNICORN_RETURN_IF_ERROR(
        Annotate(device_->allocator().Upload(*owner, offset, f.data(), f.size() * 4), ctx));
    return std::unique_ptr<unicorn::Weight>(new OpsWeight(t.name, DType::kF32, rows, cols, sub));
  }
  if (int(t.dtype) > int(DType::kQ6_K)) {  // the shaders read F32..Q6_K only (dequant.glsl)
    return absl::UnimplementedError(
        absl::StrCat(ctx, ": ", std::string(tr.name),
                     " matrices have no Vulkan kernel yet (the CPU backend runs them)"));
  }
  UNICORN_ASSIGN_OR_RETURN(SubBuffer sub, Arena(bytes, t.name, &owner, &offset));
  UNICORN_RETURN_IF_ERROR(
      Annotate(device_->allocator().Upload(*owner, offset, t.data, bytes), ctx));
  return std::unique_ptr<unicorn::Weight>(new OpsWeight(t.name, t.dtype, rows, cols, sub));
}

// ---- Host transfers -------------------------------------------------------

void VulkanOps::Write(unicorn::Buffer& dst, size_t offset, const void* src, size_t n) {
  const OpsBuffer& d = B(dst);
  UNICORN_CHECK(offset + n <= d.size());
  if (n == 0) return;
  VkDeviceSize at = 0;
  if (const Buffer* imp = FindImport(src, n * 4, &at)) {
    // In place: the device reads the bytes when the queue runs, so the caller
    // keeps them unchanged until the next flush (Read) returns.
    Op op{OpKind::kCopy};
    op.v[0] = imp->buffer();
    op.v[1] = d.buf().buffer();
    op.i[0] = int64_t(at);
    op.i[1] = int64_t(offset * 4);
    op.i[2] = int64_t(n * 4);
    ++stats_.imported_writes;
    return Enqueue(op);
  }
  if (queue_.empty() && d.buf().mapped() != nullptr) {
    std::memcpy(static_cast<uint8_t*>(d.buf().mapped()) + offset * 4, src, n * 4);
    return;
  }
  // Staged: the bytes go to the upload buffer now and a copy joins the
  // queue, so the write lands in order with the queued ops.
  const VkDeviceSize bytes = n * 4;
  if (upload_used_ + bytes > upload_.size()) {
    if (!queue_.empty()) (void)Flush();  // frees the upload buffer
    if (bytes > upload_.size()) {
      DropGraphs();
      auto b = device_->allocator().Create(std::max<VkDeviceSize>(bytes, VkDeviceSize(1) << 20),
                                           MemoryUse::kHost, "upload staging");
      if (!b.ok()) return Fail(b.status());
      upload_ = std::move(*b);
    }
    upload_used_ = 0;
  }
  std::memcpy(static_cast<uint8_t*>(upload_.mapped()) + upload_used_, src, bytes);
  Op op{OpKind::kCopy};
  op.v[0] = upload_.buffer();
  op.v[1] = d.buf().buffer();
  op.i[0] = int64_t(upload_used_);
  op.i[1] = int64_t(offset * 4);
  op.i[2] = int64_t(bytes);
  upload_used_ += (bytes + 15) / 16 * 16;
  Enqueue(op);
}

void VulkanOps::Read(const unicorn::Buffer& src, size_t offset, void* dst, size_t n) {
  const OpsBuffer& s = B(src);
  UNICORN_CHECK(offset + n <= s.size());
  if (n == 0) return;
  VkDeviceSize at = 0;
  if (const Buffer* imp = FindImport(dst, n * 4, &at)) {
    Op op{OpKind::kCopy};
    op.v[0] = s.buf().buffer();
    op.v[1] = imp->buffer();
    op.i[0] = int64_t(offset * 4);
    op.i[1] = int64_t(at);
    op.i[2] = int64_t(n * 4);
    ++stats_.imported_reads;
    Enqueue(op);
    if (!Flush().ok()) std::memset(dst, 0, n * 4);
    return;
  }
  if (queue_.empty() && s.buf().mapped() != nullptr && s.buf().host_cached()) {
    std::memcpy(dst, static_cast<const uint8_t*>(s.buf().mapped()) + offset * 4, n * 4);
    return;
  }
  // The copy into host-cached memory joins the queue (reading device memory
  // through a mapping is slow on discrete GPUs).
  const VkDeviceSize bytes = n * 4;
  if (readback_.size() < bytes) {
    if (!queue_.empty()) (void)Flush();
    DropGraphs();
    auto b = device_->allocator().Create(std::max<VkDeviceSize>(bytes, VkDeviceSize(1) << 20),
                                         MemoryUse::kHost, "readback");
    if (!b.ok()) return Fail(b.status());
    readback_ = std::move(*b);
  }
  Op op{OpKind::kCopy};
  op.v[0] = s.buf().buffer();
  op.v[1] = readback_.buffer();
  op.i[0] = int64_t(offset * 4);
  op.i[1] = 0;
  op.i[2] = int64_t(bytes);
  Enqueue(op);
  if (Status st = Flush(); !st.ok()) {
    std::memset(dst, 0, bytes);
    return;
  }
  std::memcpy(dst, readback_.mapped(), bytes);
}

void VulkanOps::Copy(const unicorn::Buffer& src, size_t src_off, unicorn::Buffer& dst,
                     size_t dst_off, size_t n) {
  UNICORN_CHECK(src_off + n <= src.size() && dst_off + n <= dst.size());
  Op op{OpKind::kCopy};
  op.v[0] = B(src).buf().buffer();
  op.v[1] = B(dst).buf().buffer();
  op.i[0] = int64_t(src_off * 4);
  op.i[1] = int64_t(dst_off * 4);
  op.i[2] = int64_t(n * 4);
  Enqueue(op);
}

// ---- Imported host memory ---------------------------------------------------

Status VulkanOps::ImportHostMemory(void* data, size_t bytes, int dma_buf_fd,
                                   const std::string& what) {
  if (EnvIs("UNICORN_VK_IMPORT", "0")) {
    return absl::UnavailableError(absl::StrCat("[vk] import of ", what, ": UNICORN_VK_IMPORT=0"));
  }
  StatusOr<Buffer> buf = absl::UnavailableError("no dma-buf");
  std::string dma_buf_error;
  if (dma_buf_fd >= 0) {
    buf = ExternalMemory::ImportDmaBuf(*device_, dma_buf_fd, bytes, what);
    if (!buf.ok()) dma_buf_error = absl::StrCat(buf.status().message(), "; ");
  }
  if (!buf.ok()) buf = ExternalMemory::ImportHost(*device_, data, bytes, what);
  if (!buf.ok()) {
    return absl::UnavailableError(absl::StrCat(dma_buf_error, buf.status().message()));
  }
  imports_.push_back({static_cast<const uint8_t*>(data), std::move(*buf)});
  return absl::OkStatus();
}

void VulkanOps::ForgetHostMemory() {
  if (imports_.empty()) return;
  if (!queue_.empty()) (void)Flush();
  DropGraphs();  // cached command buffers may name the imports
  (void)device_->WaitIdle();
  imports_.clear();
}

uint64_t VulkanOps::imported_bytes() const {
  uint64_t n = 0;
  for (const HostImport& h : imports_) n += h.buf.size();
  return n;
}

VulkanOps::Graph* VulkanOps::FindGraph(const std::vector<Op>& ops, uint64_t* hash) {
  uint64_t h = 0;
  for (const Op& op : ops) h = Mix(h, op.Hash());
  *hash = h;
  auto range = graphs_.equal_range(h);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second->ops == ops) return it->second.get();
  }
  return nullptr;
}

bool VulkanOps::IsImport(VkBuffer b) const {
  for (const HostImport& h : imports_) {
    if (h.buf.buffer() == b) return true;
  }
  return false;
}

Status VulkanOps::RecordEdge(CommandBuffer& cmd, size_t first, size_t last, bool barrier_first) {
  cmd.Begin();
  if (barrier_first) cmd.Barrier();
  for (size_t k = first; k < last; ++k) {
    const Op& op = queue_[k];
    const VkDeviceSize bytes = VkDeviceSize(op.i[2]);
    cmd.Copy({op.v[0], VkDeviceSize(op.i[0]), bytes}, {op.v[1], VkDeviceSize(op.i[1]), bytes},
             bytes);
  }
  if (!barrier_first) cmd.Barrier();
  return cmd.End();
}

const Buffer* VulkanOps::FindImport(const void* p, size_t bytes, VkDeviceSize* offset) const {
  const uintptr_t q = reinterpret_cast<uintptr_t>(p);
  for (const HostImport& h : imports_) {
    const uintptr_t base = reinterpret_cast<uintptr_t>(h.data);
    if (q >= base && bytes <= h.buf.size() && q - base <= h.buf.size() - bytes) {
      *offset = VkDeviceSize(q - base);
      return &h.buf;
    }
  }
  return nullptr;
}

// ---- Device-timed trace spans ---------------------------------------------

bool VulkanOps::DeviceSpans() {
  if (!trace::Enabled()) return false;
  if (device_->caps().timestamps) {
    if (!said_clock_) {
      said_clock_ = true;
      LOG_INFO("[vk] traced spans: GPU timestamps put on CLOCK_MONOTONIC by {}",
               clock_.calibrated() ? "VK_EXT_calibrated_timestamps (re-sampled every few seconds)"
                                   : "pinning each submission's last mark to its fence wait");
    }
    return true;
  }
  if (!said_no_timestamps_) {
    said_no_timestamps_ = true;
    LOG_WARN(
        "[vk] {} cannot write timestamps (timestampValidBits 0): traced layer spans time "
        "the host, not the GPU",
        device_->caps().name);
  }
  return false;
}

void VulkanOps::MarkSpan(int kind, int layer) {
  Op op{OpKind::kMark};
  op.i[0] = kind;
  op.i[1] = layer;
  Enqueue(op);
}

// ---- Compute ops (queued) ---------------------------------------------------

void VulkanOps::Enqueue(Op op) { queue_.push_back(op); }

void VulkanOps::Embed(const unicorn::Buffer& ids, const unicorn::Weight& table, float scale, int n,
                      unicorn::Buffer& out) {
  Op op{OpKind::kEmbed};
  op.b[0] = &B(ids);
  op.b[1] = &B(out);
  op.w[0] = &W(table);
  op.i[0] = n;
  op.f[0] = scale;
  Enqueue(op);
}

void VulkanOps::RmsNorm(const unicorn::Buffer& x, const unicorn::Weight& w, int rows, int dim,
                        float eps, unicorn::Buffer& out) {
  Op op{OpKind::kRmsNorm};
  op.b[0] = &B(x);
  op.b[1] = &B(out);
  op.w[0] = &W(w);
  op.i[0] = rows;
  op.i[1] = dim;
  op.f[0] = eps;
  Enqueue(op);
}

void VulkanOps::LayerNorm(const unicorn::Buffer& x, const unicorn::Weight& w,
                          const unicorn::Weight& b, int rows, int dim, float eps,
                          unicorn::Buffer& out) {
  Op op{OpKind::kLayerNorm};
  op.b[0] = &B(x);
  op.b[1] = &B(out);
  op.w[0] = &W(w);
  op.w[1] = &W(b);
  op.i[0] = rows;
  op.i[1] = dim;
  op.f[0] = eps;
  Enqueue(op);
}

void VulkanOps::MatMul(const unicorn::Buffer& x, const unicorn::Weight& w,
                       const unicorn::Weight* bias, int n, unicorn::Buffer& y) {
  Op op{OpKind::kMatMul};
  op.b[0] = &B(x);
  op.b[1] = &B(y);
  op.w[0] = &W(w);
  op.w[1] = bias ? &W(*bias) : nullptr;
  op.i[0] = n;
  Enqueue(op);
}

void VulkanOps::MatMulMulti(const unicorn::Buffer& x, const std::vector<const unicorn::Weight*>& ws,
                            int n, const std::vector<unicorn::Buffer*>& ys) {
  UNICORN_CHECK(ws.size() == ys.size());
  // Independent products: recorded without barriers between them, so the GPU
  // runs them together.
  for (size_t j = 0; j < ws.size(); ++j) MatMul(x, *ws[j], nullptr, n, *ys[j]);
}

void VulkanOps::Rope(unicorn::Buffer& x, const unicorn::Buffer& pos, int n, int heads, int head_dim,
                     const RopeParams& p) {
  Op op{OpKind::kRope};
  op.b[0] = &B(x);
  op.b[1] = &B(pos);
  op.i[0] = n;
  op.i[1] = heads;
  op.i[2] = head_dim;
  op.f[0] = p.theta;
  op.f[1] = p.linear_factor;
  Enqueue(op);
}

void VulkanOps::StoreKv(const unicorn::Buffer& k, const unicorn::Buffer& v,
                        const unicorn::Buffer& pos, const unicorn::Buffer* rings, int n, int kv_dim,
                        int capacity, unicorn::Buffer& k_store, unicorn::Buffer& v_store) {
  Op op{OpKind::kStoreKv};
  op.b[0] = &B(k);
  op.b[1] = &B(v);
  op.b[2] = &B(pos);
  op.b[3] = &B(k_store);
  op.b[4] = &B(v_store);
  op.b[5] = rings != nullptr ? &B(*rings) : nullptr;
  op.i[0] = n;
  op.i[1] = kv_dim;
  op.i[2] = capacity;
  Enqueue(op);
}

void VulkanOps::Attention(const unicorn::Buffer& q, const unicorn::Buffer& k_store,
                          const unicorn::Buffer& v_store, const unicorn::Buffer& spans,
                          const unicorn::Buffer* rings, int n, const AttentionParams& p,
                          unicorn::Buffer& out) {
  Op op{OpKind::kAttention};
  op.b[0] = &B(q);
  op.b[1] = &B(k_store);
  op.b[2] = &B(v_store);
  op.b[3] = &B(spans);
  op.b[4] = &B(out);
  op.b[5] = rings != nullptr ? &B(*rings) : nullptr;
  op.i[0] = n;
  op.i[1] = p.n_heads;
  op.i[2] = p.n_kv_heads;
  op.i[3] = p.head_dim;
  op.i[4] = p.capacity;
  op.f[0] = p.scale;
  op.f[1] = p.softcap;
  Enqueue(op);
}

void VulkanOps::GeluMul(const unicorn::Buffer& gate, const unicorn::Buffer& up, size_t n,
                        unicorn::Buffer& out) {
  Op op{OpKind::kGeluMul};
  op.b[0] = &B(gate);
  op.b[1] = &B(up);
  op.b[2] = &B(out);
  op.i[0] = int64_t(n);
  Enqueue(op);
}

void VulkanOps::Gelu(unicorn::Buffer& x, size_t n) {
  Op op{OpKind::kGelu};
  op.b[0] = &B(x);
  op.i[0] = int64_t(n);
  Enqueue(op);
}

void VulkanOps::Add(const unicorn::Buffer& a, const unicorn::Buffer& b, size_t n,
                    unicorn::Buffer& out) {
  Op op{OpKind::kAdd};
  op.b[0] = &B(a);
  op.b[1] = &B(b);
  op.b[2] = &B(out);
  op.i[0] = int64_t(n);
  Enqueue(op);
}

void VulkanOps::SoftCap(unicorn::Buffer& x, size_t n, float cap) {
  Op op{OpKind::kSoftCap};
  op.b[0] = &B(x);
  op.i[0] = int64_t(n);
  op.f[0] = cap;
  Enqueue(op);
}

void VulkanOps::Argmax(const unicorn::Buffer& x, int rows, int n, unicorn::Buffer& ids) {
  Op op{OpKind::kArgmax};
  op.b[0] = &B(x);
  op.b[1] = &B(ids);
  op.i[0] = rows;
  op.i[1] = n;
  Enqueue(op);
}

void VulkanOps::AvgPool(const unicorn::Buffer& x, int side, int c, int k, unicorn::Buffer& out) {
  Op op{OpKind::kAvgPool};
  op.b[0] = &B(x);
  op.b[1] = &B(out);
  op.i[0] = side;
  op.i[1] = c;
  op.i[2] = k;
  Enqueue(op);
}

std::string VulkanOps::ProfileReport() const {
  std::string out;
  for (const std::string& t : kernels_->tuning_log()) absl::StrAppend(&out, "tuned ", t, "\n");
  for (const auto& [tokens, t] : profile_totals_) {
    if (t.steps == 0) continue;
    std::vector<std::pair<std::string, OpTotals>> rows(t.ops.begin(), t.ops.end());
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    double total = 0;
    uint64_t bytes = 0;
    for (const auto& r : rows) {
      total += r.second.ms;
      bytes += r.second.bytes;
    }
    const double steps = double(t.steps);
    absl::StrAppendFormat(&out,
                          "steps of %d token(s): %llu steps, GPU %.3f ms/step, weights %.3f GB/step"
                          " (%.0f GB/s over the whole step)\n",
                          int(tokens), (unsigned long long)t.steps, total / steps,
                          double(bytes) / steps * 1e-9,
                          total > 0 ? double(bytes) / (total * 1e-3) * 1e-9 : 0.0);
    absl::StrAppendFormat(&out, "  %-34s %10s %7s %9s %10s %9s\n", "op", "ms/step", "share",
                          "calls", "MB/step", "GB/s");
    for (const auto& [label, o] : rows) {
      absl::StrAppendFormat(&out, "  %-34s %10.4f %6.1f%% %9.1f %10.2f %9.0f\n", label,
                            o.ms / steps, total > 0 ? 100 * o.ms / total : 0.0,
                            double(o.count) / steps, double(o.bytes) / steps * 1e-6,
                            o.ms > 0 ? double(o.bytes) / (o.ms * 1e-3) * 1e-9 : 0.0);
    }
  }
  return out;
}

// ---- Flush: reuse or record, submit, wait ---------------------------------

void VulkanOps::RecordMarks(const Graph& g, int64_t submitted_ns, int64_t done_ns) {
  auto ticks = g.cmd->MarkTicks();
  if (!ticks.ok() || ticks->size() != g.marks.size() || ticks->empty()) return;
  constexpr int64_t kRecalibrateNs = 3'000'000'000;  // follows drift over traced steps
  if (clock_.calibrated() && done_ns - clock_.calibrated_ns() > kRecalibrateNs) Recalibrate();
  // Marks in recording order: a part mark opens a part (closing the one
  // before); an op mark ends an op that began at the previous mark. Times
  // never go back, so ops nest in their part.
  int64_t prev = submitted_ns, part_start = 0;
  int open_kind = -1, open_layer = -1;
  for (size_t k = 0; k < ticks->size(); ++k) {
    const int64_t t = std::max(
        prev, std::clamp(clock_.ToNs((*ticks)[k], ticks->back(), done_ns), submitted_ns, done_ns));
    const auto [kind, layer] = g.marks[k];
    trace::Kind tk;
    const bool known = kind >= 0 && trace::KindFromInt(kind, &tk);
    if (known && trace::IsOp(tk)) {
      if (open_kind >= 0) trace::RecordDevice(tk, prev, t, layer);
    } else {
      if (open_kind >= 0) trace::RecordDevice(trace::Kind(open_kind), part_start, t, open_layer);
      open_kind = known ? kind : -1;
      open_layer = layer;
      part_start = t;
    }
    prev = t;
  }
}

StatusOr<SubBuffer> VulkanOps::RopeTable(int head_dim, float theta, float factor) {
  auto key = std::make_tuple(head_dim, theta, factor);
  auto it = rope_tables_.find(key);
  if (it == rope_tables_.end()) {
    std::vector<float> f = Kernels::RopeInvFreq(uint32_t(head_dim), theta, factor);
    UNICORN_ASSIGN_OR_RETURN(Buffer b, device_->allocator().Create(f.size() * 4, MemoryUse::kDevice,
                                                                   "rope frequencies"));
    UNICORN_RETURN_IF_ERROR(device_->allocator().Upload(b, 0, f.data(), f.size() * 4));
    it = rope_tables_.emplace(key, std::move(b)).first;
  }
  return it->second.All();
}

StatusOr<SubBuffer> VulkanOps::Scratch(Buffer* buf, uint64_t bytes, const char* what, bool zero) {
  if (buf->size() < bytes) {
    DropGraphs();
    UNICORN_ASSIGN_OR_RETURN(*buf, device_->allocator().Create(bytes, MemoryUse::kDevice, what));
    if (zero) UNICORN_RETURN_IF_ERROR(device_->allocator().Zero(buf->All()));
  }
  return buf->All();
}

Status VulkanOps::Flush() {
  if (queue_.empty()) return status_;
  if (!status_.ok()) {
    queue_.clear();
    upload_used_ = 0;
    return status_;
  }
  ++stats_.flushes;
  uint64_t h = 0;
  Graph* g = FindGraph(queue_, &h);
  // Copies from imported memory at the start of the queue and into it at the
  // end (a stage's input and output slots) differ by slot and row from step
  // to step. While the cache has room they are part of the cached graph (one
  // command buffer, fastest); once it is full they are recorded apart, each
  // time, and submitted with a cached graph of the rest, which then does not
  // depend on the slots. The edge buffers end/start with a full barrier.
  size_t lead = 0, trail = 0;
  if (g == nullptr && !imports_.empty() && graphs_.size() >= options_.max_graphs) {
    auto is_edge = [&](const Op& op, int side) {
      return op.kind == OpKind::kCopy && IsImport(op.v[side]);
    };
    while (lead < queue_.size() && is_edge(queue_[lead], 0)) ++lead;
    while (trail < queue_.size() - lead && is_edge(queue_[queue_.size() - 1 - trail], 1)) ++trail;
  }
  std::vector<VkCommandBuffer> submit;
  std::vector<Op> split;
  if (lead + trail > 0) {
    if (lead > 0) {
      if (!edge_in_) edge_in_ = std::make_unique<CommandBuffer>(*device_);
      if (Status s = RecordEdge(*edge_in_, 0, lead, false); !s.ok()) Fail(s);
      submit.push_back(edge_in_->handle());
    }
    if (trail > 0) {
      if (!edge_out_) edge_out_ = std::make_unique<CommandBuffer>(*device_);
      if (Status s = RecordEdge(*edge_out_, queue_.size() - trail, queue_.size(), true); !s.ok()) {
        Fail(s);
      }
    }
    split.assign(queue_.begin() + lead, queue_.end() - trail);
    g = FindGraph(split, &h);
  }
  const std::vector<Op>& body = lead + trail > 0 ? split : queue_;
  if (!status_.ok() || body.empty()) {
    // Nothing to record (or an edge failed to record).
  } else if (g != nullptr) {
    ++stats_.reused;
  } else {
    if (graphs_.size() >= options_.max_graphs) {  // evict the least recently used
      auto lru = graphs_.begin();
      for (auto it = graphs_.begin(); it != graphs_.end(); ++it) {
        if (it->second->last_used < lru->second->last_used) lru = it;
      }
      graphs_.erase(lru);
    }
    auto rec = Record(body);
    if (!rec.ok()) {
      Fail(rec.status());
      queue_.clear();
      upload_used_ = 0;
      return status_;
    }
    ++stats_.recorded;
    LOG_DEBUG("[vk] recorded a command buffer of {} ops ({} cached, flush {}, {} reused so far)",
              body.size(), graphs_.size(), stats_.flushes, stats_.reused);
    g = graphs_.emplace(h, std::move(*rec))->second.get();
  }
  if (g != nullptr) {
    g->last_used = ++graph_clock_;
    stats_.dispatches_last = g->dispatches;
    stats_.barriers_last = g->barriers;
    submit.push_back(g->cmd->handle());
  }
  if (trail > 0) submit.push_back(edge_out_->handle());
  queue_.clear();
  upload_used_ = 0;
  if (!status_.ok()) return status_;
  const int64_t submitted_ns = g != nullptr && !g->marks.empty() ? trace::NowNs() : 0;
  int64_t took_ns = 0;
  Status s =
      device_->SubmitAndWait(submit, g != nullptr ? g->last_ns : 0, fence_spin_ns_, &took_ns);
  if (g != nullptr) g->last_ns = took_ns;
  if (!s.ok()) {
    Fail(s);
    return status_;
  }
  if (submitted_ns != 0) RecordMarks(*g, submitted_ns, trace::NowNs());
  if (options_.profile && g != nullptr) {
    auto prof = g->cmd->Profile();
    if (prof.ok()) {
      last_profile_ = std::move(*prof);
      StepTotals& t = profile_totals_[g->tokens];
      ++t.steps;
      std::map<std::string, bool> seen;
      for (const TimestampRecord& r : last_profile_) {
        OpTotals& o = t.ops[r.label];
        o.ms += r.ms;
        ++o.count;
        if (!seen[r.label]) {
          auto it = g->label_bytes.find(r.label);
          if (it != g->label_bytes.end()) o.bytes += it->second;
          seen[r.label] = true;
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace unicorn::vk
