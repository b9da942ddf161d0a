// The CPU backend: model/ops.h on a persistent thread pool with Highway SIMD
// kernels (kernels.h). Weights are used in place from the mapped model file;
// activations feeding Q8_0 / Q4_0 weights are quantized to 8-bit blocks, as
// llama.cpp does (optionally with a second 8-bit plane for the rounding
// residual), so those products carry the activation rounding error stated
// in kernels.h. Scratch memory grows to the largest shape seen and is
// then reused: a decode step allocates nothing.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/thread_pool.h"
#include "model/ops.h"

namespace unicorn::cpu {

struct CpuOptions {
  int threads = 0;  // 0 = all hardware threads
  // Activations for Q8_0 / Q4_0 weights in two 8-bit planes (the value and
  // its rounding residual, kernels.h) instead of llama.cpp's one: products
  // then keep the f32 path's top-1 where one plane flips near-ties, for
  // twice the integer work (measured on 2 cores: prefill at half speed,
  // decode ~13% slower).
  bool two_plane_activations = false;
};

class CpuOps final : public Ops {
 public:
  explicit CpuOps(const CpuOptions& options = {});
  ~CpuOps() override;

  std::string Describe() const override;
  int threads() const { return pool_.size(); }

  std::unique_ptr<Buffer> Alloc(size_t size) override;
  StatusOr<std::unique_ptr<Weight>> LoadWeight(const TensorInfo& t) override;
  void Write(Buffer& dst, size_t offset, const void* src, size_t n) override;
  void Read(const Buffer& src, size_t offset, void* dst, size_t n) override;
  void Copy(const Buffer& src, size_t src_off, Buffer& dst, size_t dst_off, size_t n) override;

  void Embed(const Buffer& ids, const Weight& table, float scale, int n, Buffer& out) override;
  void RmsNorm(const Buffer& x, const Weight& w, int rows, int dim, float eps,
               Buffer& out) override;
  void LayerNorm(const Buffer& x, const Weight& w, const Weight& b, int rows, int dim, float eps,
                 Buffer& out) override;
  void MatMul(const Buffer& x, const Weight& w, const Weight* bias, int n, Buffer& y) override;
  void MatMulMulti(const Buffer& x, const std::vector<const Weight*>& ws, int n,
                   const std::vector<Buffer*>& ys) override;
  void Rope(Buffer& x, const Buffer& pos, int n, int heads, int head_dim,
            const RopeParams& p) override;
  void StoreKv(const Buffer& k, const Buffer& v, const Buffer& pos, const Buffer* rings, int n,
               int kv_dim, int capacity, Buffer& k_store, Buffer& v_store) override;
  void Attention(const Buffer& q, const Buffer& k_store, const Buffer& v_store, const Buffer& spans,
                 const Buffer* rings, int n, const AttentionParams& p, Buffer& out) override;
  void GeluMul(const Buffer& gate, const Buffer& up, size_t n, Buffer& out) override;
  void Gelu(Buffer& x, size_t n) override;
  void Add(const Buffer& a, const Buffer& b, size_t n, Buffer& out) override;
  void SoftCap(Buffer& x, size_t n, float cap) override;
  // In place, rows in parallel.
  void Argmax(const Buffer& x, int rows, int n, Buffer& ids) override;
  void AvgPool(const Buffer& x, int side, int c, int k, Buffer& out) override;

 private:
  // y_j = x W_j^T for `count` weights (MatMul and MatMulMulti).
  void MatMulImpl(const Buffer& x, const Weight* const* ws, size_t count, int n, Buffer* const* ys);
  // Quantizes x [n, cols] into q8_ and, with two planes, its residual into
  // q8r_ (for Q8_0 / Q4_0 weights).
  void QuantizeActivations(const float* x, int n, int64_t cols);
  // Quantizes x [n, cols] into q8k_ (for Q2_K..Q6_K weights, blocks of 256).
  void QuantizeActivationsK(const float* x, int n, int64_t cols);
  // inv_freq of one (theta, factor, head_dim), cached.
  const std::vector<float>& InvFreq(const RopeParams& p, int head_dim);

  ThreadPool pool_;
  bool two_planes_;
  // Scratch: quantized activations, and per-thread attention scores.
  std::vector<int8_t> q8_q_;
  std::vector<float> q8_d_;
  std::vector<int32_t> q8_bias_;
  std::vector<int8_t> q8r_q_;  // the residual plane
  std::vector<float> q8r_d_;
  std::vector<int32_t> q8r_bias_;
  std::vector<float> q8r_scratch_;  // [threads, cols]
  std::vector<int8_t> q8k_q_;
  std::vector<float> q8k_d_;
  std::vector<int16_t> q8k_bsums_;
  std::vector<std::vector<float>> scores_;
  std::vector<float> rope_cs_;  // [n, half, 2] cos/sin of the current Rope call
  std::map<std::tuple<float, float, int>, std::vector<float>> inv_freq_;
};

}  // namespace unicorn::cpu
