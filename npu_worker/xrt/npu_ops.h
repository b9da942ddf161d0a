// The XRT backend's Ops: GEMM on the NPU for every weight whose shape a
// loaded kernel was built for, every other op (and every other weight) on the
// CPU backend. Buffers are the CPU backend's.
//
// NPU MatMul, per chunk of the kernel's m rows:
//   x [n, in] f32 -> A [m, in] in the kernel's dtype (bf16, or int8 with a
//   per-row scale sa = max|x| / 127), zero rows padding the last chunk;
//   C [m, out] from NpuGemm::Run; y = C (bf16) or C * sa[row] * sw[col] (int8);
//   then the bias, on the CPU.
// Weights are converted once at load: any float or quantized source ->
// bf16 (round to nearest even), or -> int8 with a per-output-row scale
// sw = max|w_row| / 127 (a requantization of Q8_0/Q4_0 blocks).
//
// Ops::MatMul cannot return an error, so a failed NPU run (including a
// sentinel left in place) is logged once with the kernel's name, that kernel
// is disabled, and the product is computed on the CPU: results stay right
// and the log says plainly that the NPU did not do the work.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "model/ops.h"
#include "npu_worker/cpu/cpu_ops.h"
#include "npu_worker/xrt/npu_device.h"
#include "npu_worker/xrt/npu_gemm.h"

namespace unicorn::npu {

class NpuOps final : public Ops {
 public:
  // Loads every kernel of `specs` on `device` (which must outlive this);
  // any kernel that fails to load is an error naming it.
  static StatusOr<std::unique_ptr<NpuOps>> Create(NpuDevice& device,
                                                  const std::vector<GemmSpec>& specs,
                                                  const cpu::CpuOptions& cpu_options);

  std::string Describe() const override;
  // Products run on the NPU so far, and kernels disabled after a failure.
  int64_t npu_matmuls() const { return npu_matmuls_; }
  int disabled_kernels() const;

  std::unique_ptr<Buffer> Alloc(size_t size) override { return cpu_.Alloc(size); }
  StatusOr<std::unique_ptr<Weight>> LoadWeight(const TensorInfo& t) override;
  void Write(Buffer& dst, size_t offset, const void* src, size_t n) override {
    cpu_.Write(dst, offset, src, n);
  }
  void Read(const Buffer& src, size_t offset, void* dst, size_t n) override {
    cpu_.Read(src, offset, dst, n);
  }
  void Copy(const Buffer& src, size_t src_off, Buffer& dst, size_t dst_off, size_t n) override {
    cpu_.Copy(src, src_off, dst, dst_off, n);
  }

  void Embed(const Buffer& ids, const Weight& table, float scale, int n, Buffer& out) override;
  void RmsNorm(const Buffer& x, const Weight& w, int rows, int dim, float eps,
               Buffer& out) override;
  void LayerNorm(const Buffer& x, const Weight& w, const Weight& b, int rows, int dim, float eps,
                 Buffer& out) override;
  void MatMul(const Buffer& x, const Weight& w, const Weight* bias, int n, Buffer& y) override;
  void MatMulMulti(const Buffer& x, const std::vector<const Weight*>& ws, int n,
                   const std::vector<Buffer*>& ys) override;
  void Rope(Buffer& x, const Buffer& pos, int n, int heads, int head_dim,
            const RopeParams& p) override {
    cpu_.Rope(x, pos, n, heads, head_dim, p);
  }
  void StoreKv(const Buffer& k, const Buffer& v, const Buffer& pos, const Buffer* rings, int n,
               int kv_dim, int capacity, Buffer& k_store, Buffer& v_store) override {
    cpu_.StoreKv(k, v, pos, rings, n, kv_dim, capacity, k_store, v_store);
  }
  void Attention(const Buffer& q, const Buffer& k_store, const Buffer& v_store, const Buffer& spans,
                 const Buffer* rings, int n, const AttentionParams& p, Buffer& out) override {
    cpu_.Attention(q, k_store, v_store, spans, rings, n, p, out);
  }
  void GeluMul(const Buffer& gate, const Buffer& up, size_t n, Buffer& out) override {
    cpu_.GeluMul(gate, up, n, out);
  }
  void Gelu(Buffer& x, size_t n) override { cpu_.Gelu(x, n); }
  void Add(const Buffer& a, const Buffer& b, size_t n, Buffer& out) override {
    cpu_.Add(a, b, n, out);
  }
  void SoftCap(Buffer& x, size_t n, float cap) override { cpu_.SoftCap(x, n, cap); }
  void AvgPool(const Buffer& x, int side, int c, int k, Buffer& out) override {
    cpu_.AvgPool(x, side, c, k, out);
  }

  // The NPU product alone (no CPU fallback), for the hardware tests:
  // y [n, out] = x [n, in] w^T. Errors if no kernel serves `w`.
  Status NpuMatMul(const Buffer& x, const Weight& w, int n, Buffer& y);

 private:
  struct Kernel {
    std::unique_ptr<NpuGemm> gemm;
    bool disabled = false;
  };
  NpuOps(NpuDevice& device, const cpu::CpuOptions& o) : device_(device), cpu_(o) {}

  NpuDevice& device_;
  cpu::CpuOps cpu_;
  std::vector<Kernel> kernels_;
  int64_t npu_matmuls_ = 0;
  // Staging for one chunk (kept to avoid allocating per call).
  std::vector<float> x_, y_;
  std::vector<uint8_t> a_;
  std::vector<float> a_scale_;
  std::vector<uint32_t> c_;
  std::vector<const Weight*> cpu_ws_;
};

}  // namespace unicorn::npu
