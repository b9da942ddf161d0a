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
  // kAuto: 1..16 tokens take the matvec, or at 2+ tokens the batch kernel
  // where timing on first use (devices with timestamps) finds it faster;
  // more take the tiled kernel. kVector: the matvec only.
  // kCoop: the tensor-core kernel (matmul_coop.comp; Kernels::coopmat()),
  // which kAuto takes where TakesCoop().
  enum class Path { kAuto, kVector, kBatch, kTiled, kCoop } path = Path::kAuto;
  bool batch_prefetch = false;      // batch kernel: load the next k slice during this one's sums
  uint32_t batch_ablation = 0;      // batch kernel, benchmarks only: parts of the work left out
  uint32_t batch_k = 0;             // batch kernel: k slice, 128 or 256 (0 = largest that fits)
  uint32_t tile_m = 0, tile_n = 0;  // tiled kernel: 64 or 128 (0 = by shape and device)
  uint32_t matvec_rows = 0, matvec_wg = 0;  // matvec: rows and invocations per workgroup (0 = auto)
  // Tensor-core kernel: Kernels::CoopShape() and invocations (0 = tuned or
  // default); coop_x_f16: x rounded to one F16 value instead of a high and a
  // low part (faster, 2^-11 relative rounding; benchmarks and tests).
  uint32_t coop_shape = 0, coop_wg = 0;
  bool coop_x_f16 = false;
  // x as QuantizeQ8() wrote it: the product takes the int8 kernel
  // (matvec_int8.comp; Int8Eligible() weights and tokens only), reading xq
  // instead of x. Its workgroup shape: matvec_rows x matvec_wg, int8_cols
  // tokens per workgroup (0 = auto or tuned).
  SubBuffer xq;
  uint32_t int8_cols = 0;
  // The int8 kernel's loop order (matvec_int8.comp W_REGS): activations of
  // the column group held in registers, or the rows' weights (tried by
  // autotuning); or kRowLanes, lanes over rows (matmul_int8_rows.comp):
  // matvec_rows rows per lane on int8_row_lanes lanes, the workgroup's other
  // lanes splitting k (2+ tokens, k % 64 == 0); or kTensorCores
  // (matmul_int8_coop.comp; Kernels::coopmat()): 16 * matvec_rows rows (of
  // each matrix) per workgroup, on all tokens, its matvec_wg / 32 subgroups
  // splitting k in steps of int8_coop_blocks blocks of 32. kAuto with an
  // explicit shape: activations.
  enum class Int8Order {
    kAuto,
    kActivations,
    kWeights,
    kRowLanes,
    kTensorCores
  } int8_order = Int8Order::kAuto;
  uint32_t int8_row_lanes = 0;    // kRowLanes: 8, 16 or 32 (0 = 32)
  uint32_t int8_coop_blocks = 0;  // kTensorCores: 1, 2 or 4 (0 = 1)
  // With xq: y is also written as int8 blocks into xq_out, as QuantizeQ8
  // would write it from y (m % 32 == 0), for the next int8 product.
  // `counters`: m / 32 uints, zero before the product and left zero.
  SubBuffer xq_out, counters;
};

// What HeadNormRope does (UNICORN_HEAD_* flags) and its shapes.
struct HeadParams {
  uint32_t flags = 0;
  uint32_t heads = 0, head_dim = 0;
  uint32_t cap = 0;  // K/V store slots (STORE)
  float eps = 1e-6f;
  SubBuffer rings;  // [n] i32 (UNICORN_HEAD_RINGS): token t stores into ring rings[t]
};

struct AttnParams {
  uint32_t n_tokens = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  uint32_t cap = 0;                     // slots of the K/V store
  float scale = 1;                      // query_pre_attn_scalar^-0.5
  float softcap = 0;                    // attention logit soft-capping (0 = none)
  uint32_t q_stride = 0, o_stride = 0;  // 0 = n_heads * head_dim
  bool kv_f16 = false;                  // F16 elements in the store (else F32)
  // Elements between slots and between heads; 0 = the store [cap, Hkv, D].
  uint32_t kv_token_stride = 0, kv_head_stride = 0;
  uint32_t n_splits = 0;          // decode splits (0 = DecodeSplits(cap))
  uint32_t decode_workgroup = 0;  // decode kernel invocations (0 = kAttnDecodeWorkgroup)
  // kPrefill: the 8-row prefill kernel (attn_prefill.comp); kPrefillTiled:
  // the register-tiled one (attn_prefill_tiled.comp), which kAuto takes
  // where it fits (Kernels::TiledAttentionKeys) and set_tiled_attention is on.
  // kPrefillCoop: the prefill kernel on the tensor cores
  // (attn_prefill_coop.comp; Kernels::coopmat() or set_coop_emulation,
  // head_dim % 16 == 0), which kAuto takes where set_coop_attention is on.
  enum class Path { kAuto, kDecode, kPrefill, kPrefillTiled, kPrefillCoop } path = Path::kAuto;
  // [n] i32 or empty: token t reads ring rings[t] of a store shared by a
  // batch (slots rings[t] * cap + j % cap). Takes the decode kernel.
  SubBuffer rings;
  // Decode path only (CanQuantizeInAttention): the output is also written as
  // int8 blocks, as QuantizeQ8 would write it, for the int8 o product.
  SubBuffer xq;
  // Decode path only: AttnCounterBytes of zeroed counters make it one
  // dispatch (the last split of each token and kv head merges them; the
  // counters are left zero). Empty: a split dispatch, a barrier, a merge.
  SubBuffer counters;
  // Decode path only, F32 store, no counters (attn_decode_new_kv): q and
  // the tokens' own keys and values come raw from their products. The
  // kernel norms every head (RMSNorm with (1 + w) over head_dim) and
  // rotates q and k at pos[t] (inv_freq: [D/2]), as HeadNormRope would,
  // stores k and v in each token's slot, and reads each token's own key from
  // its registers. Contract: no two tokens of the pass share a ring.
  struct NewKv {
    SubBuffer k, v;            // [n, n_kv_heads * head_dim] F32
    SubBuffer q_norm, k_norm;  // [head_dim] F32
    SubBuffer inv_freq, pos;   // [head_dim / 2] F32, [n] i32
    float eps = 1e-6f;
  } new_kv;
};

class Kernels {
 public:
  static StatusOr<std::unique_ptr<Kernels>> Create(Device& device);
  Device& device() { return device_; }

  // Shared memory the batch kernel (matmul_batch.comp) needs for `tokens`
  // (2..16) and a k slice of `k_slice`; it runs where the device has it.
  static uint32_t BatchSharedBytes(uint32_t tokens, uint32_t k_slice);

  // Whether a product of `w` over n tokens may take int8 activations: the
  // device has packed int8 dot products, int8 is on (set_int8), Q4_0 or
  // Q8_0 weights, 1..16 tokens.
  bool Int8Eligible(const Weight& w, uint32_t n) const;
  // Off by default where the device's int8 dot products are not in hardware
  // (lavapipe); UNICORN_VK_INT8 overrides (VulkanOps::Create).
  void set_int8(bool on) { int8_ = on && device_.caps().int8_dot; }
  bool int8() const { return int8_; }
  // The tensor-core products (matmul_coop.comp) where the device has them
  // (DeviceCaps::coopmat_nv): products of min_tokens (>= 2) or more tokens
  // take them; 0 turns them off.
  void set_coopmat(uint32_t min_tokens) { coop_min_tokens_ = CoopRuns() ? min_tokens : 0; }
  bool coopmat() const { return device_.caps().coopmat_nv; }
  // Whether autotuning also times the tensor-core kernel for int8 products
  // of 2..16 tokens (MatMulOptions::Int8Order::kTensorCores), where the
  // device has it. Off: on an NVIDIA H100 it lost to the int8 kernels at
  // every shape (gpu_worker/BENCHMARKS.md, ninth round); UNICORN_VK_INT8_COOP=1
  // turns it on.
  void set_int8_coop(bool on) { int8_coop_ = on; }
  // Whether kAuto prefill attention takes the tensor cores (AttnParams::Path::
  // kPrefillCoop) where the device has them and head_dim % 16 == 0. Off:
  // 1.8x slower than the F32 kernel at 512 tokens on an NVIDIA H100
  // (BENCHMARKS.md, ninth round); UNICORN_VK_COOP_ATTN=1 turns it on.
  void set_coop_attention(bool on) { coop_attn_ = on; }
  // Whether kAuto prefill attention takes the register-tiled kernel
  // (AttnParams::Path::kPrefillTiled) where it fits. UNICORN_VK_TILED_ATTN=0
  // turns it off.
  void set_tiled_attention(bool on) { tiled_attn_ = on; }
  // Keys per tile of the register-tiled prefill kernel for this attention
  // (32, or 16 where 32 do not fit shared memory); 0 where it cannot take
  // it (too little shared memory, or a batch's rings, int8 output, counters).
  uint32_t TiledAttentionKeys(const AttnParams& ap) const;
  // Tests only: the tensor-core kernels (Path::kCoop, Int8Order::kTensorCores,
  // AttnParams::Path::kPrefillCoop) with their fragments emulated by plain
  // loops (coop_ops.glsl), so that they run, slowly, where the device has
  // F16 arithmetic but no cooperative matrices (lavapipe). kAuto takes them
  // only where set_coopmat / set_coop_attention are called after this
  // (VulkanOps: UNICORN_VK_COOP_EMULATE=1); autotuning never times them.
  void set_coop_emulation(bool on) { coop_emulate_ = on && device_.caps().shader_float16; }
  bool coop_emulation() const { return coop_emulate_; }
  // x as one F16 value in every tensor-core product (MatMulOptions::coop_x_f16).
  void set_coop_x_f16(bool on) { coop_x_f16_ = on; }
  // Whether MatMul's kAuto path gives a product of n tokens to the
  // tensor-core kernel (such products take F32 activations, not int8).
  // F32 weights stay on the F32 kernels: F16 would drop 13 bits of each.
  bool TakesCoop(DType w, uint32_t n) const {
    return coop_min_tokens_ >= 2 && n >= coop_min_tokens_ && w != DType::kF32;
  }
  // A tensor-core tile: bm rows (W rows with GEGLU) x bn tokens, wm
  // subgroups along m, k steps of bk (a multiple of 32); with prefetch, a
  // step's loads are issued during the previous step's products. With wg
  // invocations: subgroups of 32, (wg / 32) / wm along n, 16-multiples of
  // fragments per subgroup, at most 8 chunks of W and 8 runs of x in
  // registers per invocation.
  static uint32_t CoopShape(uint32_t bm, uint32_t bn, uint32_t wm, uint32_t bk,
                            bool prefetch = false) {
    return bm | bn << 8 | wm << 16 | (bk / 32) << 24 | (prefetch ? 1u : 0u) << 28;
  }

  // Bytes of QuantizeQ8's output for n tokens of k.
  static uint64_t Q8ActivationBytes(uint32_t n, uint32_t k);
  // Activations to int8 blocks of 32 with an F32 scale each, as the CPU
  // backend quantizes them (quantize_q8.comp has the layout).
  //   x: [n, x_stride] (k % 32 == 0, x_stride % 4 == 0)  xq: Q8ActivationBytes(n, k)
  Status QuantizeQ8(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& xq, uint32_t n,
                    uint32_t k, uint32_t x_stride = 0);

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
  // Without w_next (size 0) only h += RMS(x, w_post).
  // With xq (and w_next), y is also written as QuantizeQ8 would write it, for
  // the int8 products that read y (CanQuantizeInNorm).
  Status AddRmsNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w_post,
                    const SubBuffer& h, const SubBuffer& w_next, const SubBuffer& y, uint32_t rows,
                    uint32_t n, float eps, const SubBuffer& xq = {});
  // Whether AddRmsNorm can write int8 activations of rows of n: int8 on,
  // n % 32 == 0, subgroup shuffles on subgroups of 8 or more.
  bool CanQuantizeInNorm(uint32_t n) const;

  // y = W x for n tokens (x: [n, x_stride], y: [n, y_stride]). Few tokens
  // take the bandwidth-bound matvec kernel, many the tiled one.
  Status MatMul(CommandBuffer& cmd, const Weight& w, const SubBuffer& x, const SubBuffer& y,
                uint32_t n, const MatMulOptions& opt = {});

  // With autotune on (and timestamps on the queue), the first product of
  // each shape times the candidate workgroup shapes (matvec rows x
  // invocations, or tile sizes) on the real weights with GPU timestamps and
  // keeps the fastest; later products of that shape use it. The timing runs
  // in its own submissions while `cmd` is being recorded.
  void set_autotune(bool on) { autotune_ = on; }
  bool autotune() const { return autotune_; }
  // "matvec q4_0 10240x2560 flags 4 n1: 2 rows x 64 (0.031 ms)" per tuned shape.
  const std::vector<std::string>& tuning_log() const { return tuning_log_; }

  // y[t, :] = table[ids[t], :] * scale.   ids: [n] i32   y: [n, y_stride]
  Status Embed(CommandBuffer& cmd, const Weight& table, const SubBuffer& ids, const SubBuffer& y,
               uint32_t n, float scale, uint32_t y_stride = 0);

  // Per-head RMS-norm and/or RoPE of x [n, heads, D], in place or (STORE)
  // into the K/V store [cap, heads * D] at slot pos % cap (of ring
  // hp.rings[t] with UNICORN_HEAD_RINGS) together with v
  // [n, heads * D] (head_norm_rope.comp).   w: [D]   inv_freq: [D/2]   pos: [n] i32
  // Buffers a variant does not use may be any buffer.
  Status HeadNormRope(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w,
                      const SubBuffer& inv_freq, const SubBuffer& pos, const SubBuffer& k_store,
                      const SubBuffer& v, const SubBuffer& v_store, uint32_t n,
                      const HeadParams& hp);
  // RoPE inverse frequencies [head_dim / 2] as Hugging Face computes them in
  // F32: 1 / theta^(2i / head_dim), divided by the linear scaling factor.
  static std::vector<float> RopeInvFreq(uint32_t head_dim, double theta, double linear_factor);

  // Attention of n query tokens over spans [n] ivec2 (see AttnPush). Decode
  // (few tokens) splits the key range and merges the splits (two dispatches
  // with a barrier between them, or one with ap.counters); `scratch` must
  // hold AttnScratchBytes(). With ap.xq the merge also writes the output
  // quantized.
  //   q: [n, q_stride]   out: [n, o_stride]
  Status Attention(CommandBuffer& cmd, const SubBuffer& q, const SubBuffer& k, const SubBuffer& v,
                   const SubBuffer& spans, const SubBuffer& out, const SubBuffer& scratch,
                   const AttnParams& ap);
  static uint32_t DecodeSplits(uint32_t cap);
  static uint64_t AttnScratchBytes(const AttnParams& ap);
  static uint64_t AttnCounterBytes(const AttnParams& ap);  // ap.counters' size
  static bool UsesDecodePath(const AttnParams& ap);
  // Whether Attention runs ap on the tensor-core prefill kernel.
  bool TakesCoopAttention(const AttnParams& ap) const;
  // The tensor-core prefill kernel's invocations for ap, or why it cannot run.
  StatusOr<uint32_t> CoopAttentionWorkgroup(const AttnParams& ap) const;
  // Whether Attention can write ap's output as int8 too (ap.xq): int8 on,
  // the decode path, head_dim % 32 == 0, outputs packed (o_stride = H * D).
  bool CanQuantizeInAttention(const AttnParams& ap) const;

  // y = a + b (n floats; y may alias a or b).
  Status Add(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& b, const SubBuffer& y,
             uint32_t n);
  // y = gelu_tanh(a) * b (n floats; y may alias a or b).
  Status GeGlu(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& b, const SubBuffer& y,
               uint32_t n);
  // y = gelu_tanh(a) (n floats; y may alias a).
  Status Gelu(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& y, uint32_t n);
  // y = cap * tanh(a / cap) (n floats).
  Status SoftCap(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& y, uint32_t n, float cap);
  // image [C, S, S] -> patches [(S/P)^2, C*P*P].
  Status Patchify(CommandBuffer& cmd, const SubBuffer& image, const SubBuffer& patches,
                  uint32_t image_size, uint32_t patch, uint32_t channels);
  // ids[r] = the first index of the largest of x[r, 0..n) (model/sampler.h
  // Argmax's rule), r < rows.   x: [rows, stride] f32   ids: [rows] i32
  Status Argmax(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& ids, uint32_t rows,
                uint32_t n, uint32_t stride);
  // [grid_in^2, C] -> [grid_out^2, C] block means.
  Status AvgPool(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& y, uint32_t grid_in,
                 uint32_t grid_out, uint32_t channels);

 private:
  explicit Kernels(Device& d) : device_(d) {}
  // The pipeline of `shader` with these workgroup and specialization values,
  // built on first use.
  StatusOr<const Pipeline*> Get(const std::string& shader, uint32_t workgroup,
                                const std::vector<uint32_t>& spec);
  // A grid of `groups` workgroups within the per-dimension limit every device
  // has (kernels skip the few extra groups of the last row).
  Groups Grid(uint64_t groups) const;

  // The product kernels: tiled (a x b tile), matvec (a rows x b
  // invocations; a = 0: the batch kernel) and int8 (a = rows | tokens << 8
  // | kInt8WeightsInRegisters | row lanes << kInt8RowLanesShift, or
  // fragments | 16 << 8 | kInt8TensorCores | blocks << kInt8BlocksShift; b
  // invocations).
  // kCoop: a = CoopShape(), b invocations.
  enum class Kind { kTiled, kVector, kInt8, kCoop };
  // Records the product with an explicit workgroup shape.
  Status RecordMatMul(CommandBuffer& cmd, const Weight& w, const SubBuffer& x, const SubBuffer& y,
                      uint32_t n, const MatMulOptions& opt, Kind kind, uint32_t a, uint32_t b);
  // The int8 product's shape: explicit, tuned or the default.
  StatusOr<std::pair<uint32_t, uint32_t>> Int8Shape(const Weight& w, uint32_t n,
                                                    const MatMulOptions& opt);
  // Whether the tensor-core kernels run here: on the tensor cores, or with
  // emulated fragments (set_coop_emulation). Else NoTensorCores() says why.
  bool CoopRuns() const { return coopmat() || coop_emulate_; }
  std::string NoTensorCores() const;
  // The build of a tensor-core shader that runs here: `base`, or its
  // emulated build (base + "_emu") on a device without tensor cores.
  std::string CoopShader(const std::string& base) const { return coopmat() ? base : base + "_emu"; }
  // The tensor-core product's shape: explicit, tuned or the default; and
  // why a shape cannot run here (empty: it can).
  StatusOr<std::pair<uint32_t, uint32_t>> CoopShapeFor(const Weight& w, uint32_t n,
                                                       const MatMulOptions& opt);
  std::string CoopShapeProblem(uint32_t shape, uint32_t wg, bool geglu, bool x_f16) const;
  // The fastest of `candidates` for this product (see set_autotune).
  StatusOr<std::pair<uint32_t, uint32_t>> Tune(
      const Weight& w, uint32_t n, const MatMulOptions& opt, Kind kind,
      const std::vector<std::pair<uint32_t, uint32_t>>& candidates);

  Device& device_;
  std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
  bool autotune_ = false;
  bool int8_ = false;
  uint32_t coop_min_tokens_ = 0;
  bool coop_x_f16_ = false;
  bool int8_coop_ = false;
  bool coop_emulate_ = false;
  bool coop_attn_ = false;
  bool tiled_attn_ = true;
  std::map<std::string, std::pair<uint32_t, uint32_t>> tuned_;
  std::vector<std::string> tuning_log_;
  Buffer tune_x_, tune_y_;
};

}  // namespace unicorn::vk
