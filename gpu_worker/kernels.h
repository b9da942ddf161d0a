// The compute kernels of the GPU worker and a typed recording function per
// op. Each function records one or two dispatches and no trailing barrier:
// callers put vk::CommandBuffer::Barrier() between dependent ops. Pipelines
// (one per shader variant) are built on first use and kept. Activations are
// F32; weights stay in their GGUF block layout (model/dtype.h).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "gpu_worker/shaders/push_constants.h"
#include "gpu_worker/vk/command.h"
#include "gpu_worker/vk/device.h"
#include "gpu_worker/vk/pipeline.h"
#include "model/dtype.h"

namespace unicorn::vk {

// A weight matrix on the device: [rows, cols], y = W x.
struct Weight {
  SubBuffer buf;
  DType dtype = DType::kF32;
  uint32_t rows = 0;
  uint32_t cols = 0;
};

struct MatMulOptions {
  // UNICORN_MM_* (GEGLU, few-token path only: W is [2m, k], y gets m = rows / 2 columns)
  uint32_t flags = 0;
  SubBuffer bias;         // [m], with UNICORN_MM_BIAS
  float softcap = 0;      // with UNICORN_MM_SOFTCAP
  uint32_t x_stride = 0;  // floats between tokens of x (0 = cols)
  uint32_t y_stride = 0;  // floats between tokens of y (0 = m)
  enum class Path { kAuto, kVector, kTiled } path = Path::kAuto;
};

struct RopeParams {
  uint32_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  uint32_t cap = 0;  // K/V cache slots per head
  bool qk_norm = true;
  float eps = 1e-6f;
};

struct AttnParams {
  uint32_t n_tokens = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  uint32_t cap = 0;                     // slots of the K/V store
  uint32_t window = 0;                  // sliding window (0 = global)
  float scale = 1;                      // query_pre_attn_scalar^-0.5
  float softcap = 0;                    // attention logit soft-capping (0 = none)
  uint32_t q_stride = 0, o_stride = 0;  // 0 = n_heads * head_dim
  bool kv_f16 = true;  // the F16 cache [Hkv, cap, D]; else F32 with the strides below
  uint32_t kv_token_stride = 0, kv_head_stride = 0;  // 0 = the cache layout
  uint32_t n_splits = 0;                             // decode splits (0 = DecodeSplits(cap))
  enum class Path { kAuto, kDecode, kPrefill } path = Path::kAuto;
};

class Kernels {
 public:
  static StatusOr<std::unique_ptr<Kernels>> Create(Device& device);
  Device& device() { return device_; }

  // Gemma RMSNorm: y = x * rsqrt(mean(x^2) + eps) * (1 + w); QK-norm is this
  // with rows = tokens * heads, n = head_dim.
  //   x: [rows, x_stride]  w: [n]  y: [rows, y_stride] (0 = n; y may be x)
  Status RmsNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w, const SubBuffer& y,
                 uint32_t rows, uint32_t n, float eps, uint32_t x_stride = 0,
                 uint32_t y_stride = 0);
  // LayerNorm with bias: y = (x - mean) * rsqrt(var + eps) * w + b.   x, y: [rows, n]
  Status LayerNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w, const SubBuffer& b,
                   const SubBuffer& y, uint32_t rows, uint32_t n, float eps);
  // Post-norm, residual add and the next pre-norm in one pass:
  //   h += RMS(x, w_post); y = RMS(h, w_next).   x, h, y: [rows, n]
  Status AddRmsNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w_post,
                    const SubBuffer& h, const SubBuffer& w_next, const SubBuffer& y, uint32_t rows,
                    uint32_t n, float eps);

  // y = W x for n tokens (x: [n, x_stride], y: [n, y_stride]). Few tokens
  // take the bandwidth-bound matvec kernel, many the tiled one.
  Status MatMul(CommandBuffer& cmd, const Weight& w, const SubBuffer& x, const SubBuffer& y,
                uint32_t n, const MatMulOptions& opt = {});

  // y[t, :] = table[ids[t], :] * scale.   ids: [n] uint32   y: [n, y_stride]
  Status Embed(CommandBuffer& cmd, const Weight& table, const SubBuffer& ids, const SubBuffer& y,
               uint32_t n, float scale, uint32_t y_stride = 0);

  // QK-norm + RoPE of the fused QKV projection, writing q and the K/V cache
  // (qk_norm_rope.comp).   qkv: [n, (H + 2 Hkv) D]   pos: [n] ivec2
  //   inv_freq: [D/2]   q: [n, H, D]   k_cache, v_cache: [Hkv, cap, D] F16
  Status QkNormRope(CommandBuffer& cmd, const SubBuffer& qkv, const SubBuffer& q_norm,
                    const SubBuffer& k_norm, const SubBuffer& inv_freq, const SubBuffer& pos,
                    const SubBuffer& q, const SubBuffer& k_cache, const SubBuffer& v_cache,
                    uint32_t n, const RopeParams& rp);

  // Attention of n query tokens (see AttnPush for the key ranges). Decode
  // (few tokens) splits the key range and merges the splits (two dispatches
  // with a barrier between them); `scratch` must hold AttnScratchBytes().
  //   q: [n, q_stride]   out: [n, o_stride]
  Status Attention(CommandBuffer& cmd, const SubBuffer& q, const SubBuffer& k, const SubBuffer& v,
                   const SubBuffer& pos, const SubBuffer& out, const SubBuffer& scratch,
                   const AttnParams& ap);
  static uint32_t DecodeSplits(uint32_t cap);
  // RoPE inverse frequencies [head_dim / 2] as Hugging Face computes them in
  // F32: 1 / theta^(2i / head_dim), divided by the linear scaling factor.
  static std::vector<float> RopeInvFreq(uint32_t head_dim, double theta, double linear_factor);
  static uint64_t AttnScratchBytes(const AttnParams& ap);
  static bool UsesDecodePath(const AttnParams& ap);

  // y = a + b (n floats; y may alias a or b).
  Status Add(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& b, const SubBuffer& y,
             uint32_t n);
  // y[t, i] = gelu(a[t, i]) * a[t, width + i].   a: [tokens, 2 width]   y: [tokens, width]
  Status GeGlu(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& y, uint32_t tokens,
               uint32_t width);
  // y = cap * tanh(a / cap) (n floats).
  Status SoftCap(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& y, uint32_t n, float cap);
  // image [C, S, S] -> patches [(S/P)^2, C*P*P].
  Status Patchify(CommandBuffer& cmd, const SubBuffer& image, const SubBuffer& patches,
                  uint32_t image_size, uint32_t patch, uint32_t channels);
  // [grid_in^2, C] -> [grid_out^2, C] block means.
  Status AvgPool(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& y, uint32_t grid_in,
                 uint32_t grid_out, uint32_t channels);

 private:
  explicit Kernels(Device& d) : device_(d) {}
  // The pipeline of `shader` with these workgroup and specialization values,
  // built on first use.
  StatusOr<const Pipeline*> Get(const std::string& shader, uint32_t workgroup,
                                const std::vector<uint32_t>& spec);
  // Workgroups for `n` items when each takes `per`, as a grid within the
  // device's per-dimension limit.
  Groups Grid(uint64_t groups) const;

  Device& device_;
  std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
};

}  // namespace unicorn::vk
