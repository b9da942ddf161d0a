#include "gpu_worker/kernels.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <span>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "gpu_worker/shaders.h"

namespace unicorn::vk {
namespace {

static_assert(UNICORN_DT_F32 == int(DType::kF32) && UNICORN_DT_F16 == int(DType::kF16) &&
                  UNICORN_DT_BF16 == int(DType::kBF16) && UNICORN_DT_Q8_0 == int(DType::kQ8_0) &&
                  UNICORN_DT_Q4_0 == int(DType::kQ4_0) && UNICORN_DT_Q2_K == int(DType::kQ2_K) &&
                  UNICORN_DT_Q3_K == int(DType::kQ3_K) && UNICORN_DT_Q4_K == int(DType::kQ4_K) &&
                  UNICORN_DT_Q5_K == int(DType::kQ5_K) && UNICORN_DT_Q6_K == int(DType::kQ6_K),
              "shader dtype ids must equal unicorn::DType");

struct ShaderInfo {
  const uint32_t* spirv;
  size_t bytes;
  uint32_t push_bytes;
  uint32_t num_buffers;
};

const ShaderInfo* FindShader(const std::string& name) {
  using namespace shaders;  // NOLINT: the generated blob names
  static const std::map<std::string, ShaderInfo> kShaders = {
      {"norm", {norm_spv, norm_spv_size, sizeof(NormPush), 5}},
      {"norm_q8", {norm_q8_spv, norm_q8_spv_size, sizeof(NormPush), 6}},
      {"matvec", {matvec_spv, matvec_spv_size, sizeof(MatMulPush), 4}},
      {"matmul_batch", {matmul_batch_spv, matmul_batch_spv_size, sizeof(MatMulPush), 4}},
      {"matmul", {matmul_spv, matmul_spv_size, sizeof(MatMulPush), 4}},
      {"matmul_coop", {matmul_coop_spv, matmul_coop_spv_size, sizeof(MatMulPush), 4}},
      {"matvec_int8", {matvec_int8_spv, matvec_int8_spv_size, sizeof(MatMulPush), 4}},
      {"matvec_int8_q8", {matvec_int8_q8_spv, matvec_int8_q8_spv_size, sizeof(MatMulPush), 6}},
      {"matmul_int8_rows",
       {matmul_int8_rows_spv, matmul_int8_rows_spv_size, sizeof(MatMulPush), 4}},
      {"matmul_int8_rows_q8",
       {matmul_int8_rows_q8_spv, matmul_int8_rows_q8_spv_size, sizeof(MatMulPush), 6}},
      {"quantize_q8", {quantize_q8_spv, quantize_q8_spv_size, sizeof(MatMulPush), 2}},
      {"embed", {embed_spv, embed_spv_size, sizeof(EmbedPush), 3}},
      {"head_norm_rope", {head_norm_rope_spv, head_norm_rope_spv_size, sizeof(HeadPush), 8}},
      {"attn_decode", {attn_decode_spv, attn_decode_spv_size, sizeof(AttnPush), 7}},
      {"attn_decode_merge",
       {attn_decode_merge_spv, attn_decode_merge_spv_size, sizeof(AttnPush), 9}},
      {"attn_decode_merge_q8",
       {attn_decode_merge_q8_spv, attn_decode_merge_q8_spv_size, sizeof(AttnPush), 10}},
      {"attn_reduce", {attn_reduce_spv, attn_reduce_spv_size, sizeof(AttnPush), 4}},
      {"attn_reduce_q8", {attn_reduce_q8_spv, attn_reduce_q8_spv_size, sizeof(AttnPush), 5}},
      {"attn_prefill", {attn_prefill_spv, attn_prefill_spv_size, sizeof(AttnPush), 5}},
      {"elementwise", {elementwise_spv, elementwise_spv_size, sizeof(ElementwisePush), 3}},
      {"patchify", {patchify_spv, patchify_spv_size, sizeof(PatchPush), 2}},
      {"avg_pool", {avg_pool_spv, avg_pool_spv_size, sizeof(PoolPush), 2}},
      {"argmax", {argmax_spv, argmax_spv_size, sizeof(ArgmaxPush), 2}},
  };
  auto it = kShaders.find(name);
  return it == kShaders.end() ? nullptr : &it->second;
}

uint32_t CeilDiv(uint64_t a, uint64_t b) { return uint32_t((a + b - 1) / b); }

// Matvec shape: output rows per workgroup and workgroup size. Longer rows
// get more invocations so each still loops a few times.
struct MatVecShape {
  uint32_t rows;
  uint32_t wg;
};
MatVecShape PickMatVec(const Weight& w) { return {2, w.cols >= 4096 ? 128u : 64u}; }

// Invocations per row of a norm: few rows (decode) are latency-bound, so a
// wide workgroup loads the whole row at once (one vec4 each); many rows fill
// the GPU with 256-wide workgroups.
uint32_t NormWorkgroup(uint32_t rows, uint32_t n) {
  if (rows > 64) return 256;
  uint32_t wg = 64;
  while (wg < 1024 && wg * 4 < n) wg *= 2;
  return wg;
}

// The matvec kernel reads each weight once per column group, and a step of
// a batch of decoding sequences has one row per sequence: up to 16 tokens
// stay on it (the tiled kernel would waste most of its 64-token tiles).
constexpr uint32_t kMaxVectorTokens = 16;  // more take the tiled kernel
// Tokens per matvec workgroup: column groups of the same rows run in
// neighbouring workgroups, so the second group's weights come from the cache.
uint32_t MatVecCols(uint32_t n) { return n == 1 ? 1 : n <= 4 ? 4 : 8; }
// The batch kernel (matmul_batch.comp): a workgroup of 128 owns 16 weight
// rows for all tokens (4, 8 or 16), slices of 128 or 256 along k. In tuning
// candidates and RecordMatMul it is the "vector" shape (0 rows, BK | 1 when
// it prefetches). Only autotuning or Path::kBatch picks it.
constexpr uint32_t kBatchWorkgroup = 128;
uint32_t BatchTokens(uint32_t n) { return n <= 4 ? 4 : n <= 8 ? 8 : 16; }
// The matvec's tokens per workgroup or the batch kernel's, whichever is finer.
uint32_t FewTokenClass(uint32_t n) { return n == 1 ? 1 : BatchTokens(n); }
// The int8 kernel (matvec_int8.comp), untimed: 2 rows on 32 invocations,
// 8 tokens per workgroup (two neighbouring column groups at 16 tokens), the
// shape that won most 4B products on an H100 (gpu_worker/BENCHMARKS.md).
constexpr uint32_t kInt8Rows = 2, kInt8Workgroup = 32;
// In an int8 shape: the weights-in-registers loop order (W_REGS), or the
// lanes over rows (matmul_int8_rows.comp) with this many row lanes.
constexpr uint32_t kInt8WeightsInRegisters = 1u << 16;
constexpr uint32_t kInt8RowLanesShift = 20;
uint32_t Int8RowLanes(uint32_t shape) { return shape >> kInt8RowLanesShift; }
// Rows per workgroup of an int8 shape.
uint32_t Int8WorkgroupRows(uint32_t shape) {
  const uint32_t lanes = Int8RowLanes(shape);
  return (shape & 0xFF) * (lanes ? lanes : 1);
}
uint32_t Int8Cols(uint32_t n) { return n == 1 ? 1 : 8; }
// The tensor-core kernel's shape fields (Kernels::CoopShape).
struct CoopTile {
  uint32_t bm, bn, wm, bk, prefetch;
};
CoopTile DecodeCoop(uint32_t a) {
  return {a & 0xFF, (a >> 8) & 0xFF, (a >> 16) & 0xFF, ((a >> 24) & 0xF) * 32, a >> 28};
}
// Its tokens per workgroup for n tokens: 16 or 32 for few tokens (a decode
// step's rows), then 64 or 128.
uint32_t CoopTokens(uint32_t n) { return n <= 16 ? 16 : n <= 32 ? 32 : n <= 64 ? 64 : 128; }
uint32_t CoopSharedBytes(const CoopTile& t, uint32_t wg, bool x_f16) {
  return (t.bm + (x_f16 ? 1 : 2) * t.bn) * (t.bk + 8) * 2 + (wg / 32) * 2048;
}
constexpr uint32_t kQuantizeWorkgroup = 64;
constexpr uint32_t kAttnPrefillRows = 8;  // attn_prefill.comp's BR
// attn_decode.comp's invocations: 8 subgroups of 32 on an NVIDIA H100 were
// as fast as 4 at 128-1024 keys and up to 1.7x faster at 4096 with few
// splits (F16 store; gpu_worker/BENCHMARKS.md, fifth round).
constexpr uint32_t kAttnDecodeWorkgroup = 256;
constexpr uint32_t kMaxHeadDim = UNICORN_MAX_HEAD_DIM;

}  // namespace

StatusOr<std::unique_ptr<Kernels>> Kernels::Create(Device& device) {
  std::unique_ptr<Kernels> k(new Kernels(device));
  // Build the most common pipeline now, so a broken driver shows at once.
  UNICORN_RETURN_IF_ERROR(k->Get("norm", 256, {UNICORN_NORM_RMS}).status());
  return k;
}

StatusOr<const Pipeline*> Kernels::Get(const std::string& shader, uint32_t workgroup,
                                       const std::vector<uint32_t>& spec) {
  std::string key = absl::StrCat(shader, "/", workgroup, "/", absl::StrJoin(spec, ","));
  auto it = pipelines_.find(key);
  if (it != pipelines_.end()) return it->second.get();
  const ShaderInfo* info = FindShader(shader);
  UNICORN_CHECK(info != nullptr);
  PipelineDesc desc{.name = shader,
                    .spirv = info->spirv,
                    .spirv_bytes = info->bytes,
                    .push_constant_bytes = info->push_bytes,
                    .num_buffers = info->num_buffers,
                    .workgroup = {workgroup, 1, 1},
                    .spec_constants = spec};
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<Pipeline> p, Pipeline::Create(device_, desc));
  const Pipeline* raw = p.get();
  pipelines_[key] = std::move(p);
  return raw;
}

uint32_t Kernels::BatchSharedBytes(uint32_t tokens, uint32_t k_slice) {
  // As[BK][5] and Bs[BK][TN / 4 + 1] vec4s, red[64 * 32] floats.
  const uint32_t tn = BatchTokens(tokens);
  return k_slice * (20 + 4 * (tn / 4 + 1)) * 4 + 64 * 32 * 4;
}

Groups Kernels::Grid(uint64_t groups) const {
  constexpr uint64_t kMaxX = 65535;  // the limit every Vulkan device supports
  if (groups <= kMaxX) return {uint32_t(std::max<uint64_t>(groups, 1)), 1, 1};
  return {uint32_t(kMaxX), CeilDiv(groups, kMaxX), 1};
}

Status Kernels::RmsNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w,
                        const SubBuffer& y, uint32_t rows, uint32_t n, float eps, uint32_t x_stride,
                        uint32_t y_stride) {
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p,
                           Get("norm", NormWorkgroup(rows, n), {UNICORN_NORM_RMS}));
  NormPush push{rows, n, x_stride ? x_stride : n, y_stride ? y_stride : n, 0, eps};
  cmd.Dispatch(*p, {x, w, y, w, y}, push, Grid(rows));
  return absl::OkStatus();
}

Status Kernels::LayerNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w,
                          const SubBuffer& b, const SubBuffer& y, uint32_t rows, uint32_t n,
                          float eps) {
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("norm", 256, {UNICORN_NORM_LAYER}));
  NormPush push{rows, n, n, n, 0, eps};
  cmd.Dispatch(*p, {x, w, y, b, y}, push, Grid(rows));
  return absl::OkStatus();
}

bool Kernels::CanQuantizeInNorm(uint32_t n) const {
  return int8_ && n % 32 == 0 && device_.caps().subgroup_shuffle &&
         device_.caps().subgroup_size >= 8;
}

Status Kernels::AddRmsNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w_post,
                           const SubBuffer& h, const SubBuffer& w_next, const SubBuffer& y,
                           uint32_t rows, uint32_t n, float eps, const SubBuffer& xq) {
  const bool next = w_next.size > 0;
  const bool quant = xq.size > 0;
  if (quant && (!next || !CanQuantizeInNorm(n) || xq.size < Q8ActivationBytes(rows, n))) {
    return absl::InvalidArgumentError(
        absl::StrCat("[vk] add_rms_norm: cannot also write int8 activations (", rows, " rows of ",
                     n, next ? "" : ", no next norm", ", ", xq.size, " bytes out)"));
  }
  UNICORN_ASSIGN_OR_RETURN(
      const Pipeline* p, Get(quant ? "norm_q8" : "norm", NormWorkgroup(rows, n),
                             {next ? uint32_t(UNICORN_NORM_ADD_RMS) : uint32_t(UNICORN_NORM_ADD)}));
  NormPush push{rows, n, n, n, n, eps};
  if (quant) {
    cmd.Dispatch(*p, {x, w_post, y, w_next, h, xq}, push, Grid(rows));
  } else {
    cmd.Dispatch(*p, {x, w_post, next ? y : h, next ? w_next : w_post, h}, push, Grid(rows));
  }
  return absl::OkStatus();
}

Status Kernels::MatMul(CommandBuffer& cmd, const Weight& w, const SubBuffer& x, const SubBuffer& y,
                       uint32_t n, const MatMulOptions& opt) {
  const bool geglu = opt.flags & UNICORN_MM_GEGLU;
  const uint32_t m = geglu ? w.rows / 2 : w.rows;
  const uint32_t block = uint32_t(Traits(w.dtype).block_elems);
  if (w.cols % block != 0 || (geglu && w.rows % 2 != 0) || n == 0 || m == 0) {
    return absl::InvalidArgumentError(absl::StrCat("[vk] matmul: bad shape [", w.rows, ", ", w.cols,
                                                   "] ", std::string(Traits(w.dtype).name), " x ",
                                                   n, " tokens", geglu ? " (geglu)" : ""));
  }
  if (opt.xq.size > 0) {
    if (!Int8Eligible(w, n)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[vk] matmul: int8 activations need a device with int8 dot products and Q4_0/Q8_0 "
          "weights over 1..16 tokens (got ",
          std::string(Traits(w.dtype).name), ", ", n, " tokens)"));
    }
    if (opt.xq.size < Q8ActivationBytes(n, w.cols)) {
      return absl::InvalidArgumentError("[vk] matmul: int8 activation buffer too small");
    }
    UNICORN_ASSIGN_OR_RETURN(auto shape, Int8Shape(w, n, opt));
    const uint32_t wg_rows = Int8WorkgroupRows(shape.first);
    if (opt.xq_out.size > 0 &&
        (m % 32 != 0 || (32 % wg_rows != 0 && wg_rows % 32 != 0) ||
         opt.xq_out.size < Q8ActivationBytes(n, m) || opt.counters.size < m / 32 * 4)) {
      return absl::InvalidArgumentError(
          absl::StrCat("[vk] matmul: cannot also write int8 activations (", m, " outputs of ",
                       wg_rows, "-row workgroups, ", opt.xq_out.size, " bytes out, ",
                       opt.counters.size, " bytes of counters)"));
    }
    return RecordMatMul(cmd, w, opt.xq, y, n, opt, Kind::kInt8, shape.first, shape.second);
  }
  if (opt.path == MatMulOptions::Path::kCoop ||
      (opt.path == MatMulOptions::Path::kAuto && TakesCoop(w.dtype, n))) {
    if (!coopmat()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[vk] matmul: ", device_.caps().name,
          " has no tensor-core products (VK_NV_cooperative_matrix with 16x16x16 F16 fragments)"));
    }
    MatMulOptions o = opt;
    o.coop_x_f16 = opt.coop_x_f16 || coop_x_f16_;
    UNICORN_ASSIGN_OR_RETURN(auto shape, CoopShapeFor(w, n, o));
    return RecordMatMul(cmd, w, x, y, n, o, Kind::kCoop, shape.first, shape.second);
  }
  const bool vector = opt.path == MatMulOptions::Path::kVector ||
                      opt.path == MatMulOptions::Path::kBatch ||
                      (opt.path == MatMulOptions::Path::kAuto && n <= kMaxVectorTokens);
  if (geglu && !vector) {
    return absl::InvalidArgumentError(
        "[vk] matmul: GEGLU is fused only into the few-token kernel; use GeGlu() after");
  }
  const uint32_t max_shared = device_.caps().max_shared_memory;
  // The batch kernel serves 2..16 tokens of chunked rows (whole 8-weight
  // chunks, 16-byte aligned activations).
  const uint32_t x_stride = opt.x_stride ? opt.x_stride : w.cols;
  std::vector<uint32_t> batch_bk;
  if (n >= 2 && n <= kMaxVectorTokens && w.cols % 8 == 0 && x_stride % 4 == 0 &&
      kBatchWorkgroup <= device_.caps().max_workgroup_invocations) {
    for (uint32_t bk : {256u, 128u}) {
      if (BatchSharedBytes(n, bk) <= max_shared) batch_bk.push_back(bk);
    }
  }
  if (opt.path == MatMulOptions::Path::kBatch) {
    if (batch_bk.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[vk] matmul: the batch kernel takes 2..16 tokens of rows in whole 8-weight chunks "
          "(got ",
          n, " tokens, k ", w.cols, ", x stride ", x_stride, ")"));
    }
    const uint32_t bk = opt.batch_k ? opt.batch_k : batch_bk.front();
    if (std::find(batch_bk.begin(), batch_bk.end(), bk) == batch_bk.end()) {
      return absl::InvalidArgumentError(absl::StrCat("[vk] matmul: no batch slice of ", bk));
    }
    return RecordMatMul(cmd, w, x, y, n, opt, Kind::kVector, 0,
                        bk | (opt.batch_prefetch ? 1u : 0u));
  }
  if (opt.path != MatMulOptions::Path::kAuto) batch_bk.clear();  // kVector: the matvec only
  if (vector) {
    MatVecShape s = PickMatVec(w);
    const uint32_t cols = MatVecCols(n);
    const uint32_t mats = geglu ? 2 : 1;
    if (autotune_ && opt.matvec_rows == 0 && opt.matvec_wg == 0 && device_.caps().timestamps) {
      std::vector<std::pair<uint32_t, uint32_t>> cands;
      for (auto [r, g] : std::initializer_list<std::pair<uint32_t, uint32_t>>{{1, 32},
                                                                              {2, 32},
                                                                              {1, 64},
                                                                              {2, 64},
                                                                              {4, 64},
                                                                              {1, 128},
                                                                              {2, 128},
                                                                              {4, 128},
                                                                              {8, 32},
                                                                              {8, 64},
                                                                              {8, 128},
                                                                              {1, 256},
                                                                              {2, 256}}) {
        // More rows per invocation reuse each loaded x chunk for more FMAs
        // (at 8 tokens the x loads bound the 2-row shape: BENCHMARKS.md).
        if (mats * r * cols * g * 4 <= max_shared &&
            g <= device_.caps().max_workgroup_invocations) {
          cands.push_back({r, g});
        }
      }
      for (uint32_t bk : batch_bk) {  // with and without prefetching (bit 0)
        cands.push_back({0, bk});
        cands.push_back({0, bk | 1u});
      }
      UNICORN_ASSIGN_OR_RETURN(auto best, Tune(w, n, opt, Kind::kVector, cands));
      s = {best.first, best.second};
    }
    // Untimed, the matvec: on the one GPU measured (an H100) it beat the
    // batch kernel at every 16-token shape but the LM head's 262144 rows,
    // where timing picks the batch kernel (gpu_worker/BENCHMARKS.md).
    if (opt.matvec_rows) s.rows = opt.matvec_rows;
    if (opt.matvec_wg) s.wg = opt.matvec_wg;
    return RecordMatMul(cmd, w, x, y, n, opt, Kind::kVector, s.rows, s.wg);
  }
  // Tiles of 128 where the shape fills them and shared memory holds them
  // (32 * (BM + BN + 8) floats).
  auto fits = [&](uint32_t bm, uint32_t bn) { return 32u * (bm + bn + 8) * 4 <= max_shared; };
  uint32_t bm = opt.tile_m ? opt.tile_m : (m >= 128 && fits(128, 128) ? 128 : 64);
  uint32_t bn = opt.tile_n ? opt.tile_n : (n > 64 && fits(bm, 128) ? 128 : 64);
  if (autotune_ && opt.tile_m == 0 && opt.tile_n == 0 && device_.caps().timestamps) {
    std::vector<std::pair<uint32_t, uint32_t>> cands;
    for (uint32_t a : {64u, 128u}) {
      for (uint32_t b : {64u, 128u}) {
        if (fits(a, b)) cands.push_back({a, b});
      }
    }
    UNICORN_ASSIGN_OR_RETURN(auto best, Tune(w, n, opt, Kind::kTiled, cands));
    bm = best.first;
    bn = best.second;
  }
  if ((bm != 64 && bm != 128) || (bn != 64 && bn != 128) || !fits(bm, bn)) {
    return absl::InvalidArgumentError(absl::StrCat("[vk] matmul: no ", bm, " x ", bn, " tile"));
  }
  return RecordMatMul(cmd, w, x, y, n, opt, Kind::kTiled, bm, bn);
}

bool Kernels::Int8Eligible(const Weight& w, uint32_t n) const {
  return int8_ && (w.dtype == DType::kQ4_0 || w.dtype == DType::kQ8_0) && n >= 1 &&
         n <= kMaxVectorTokens && w.cols % 32 == 0;
}

uint64_t Kernels::Q8ActivationBytes(uint32_t n, uint32_t k) {
  return uint64_t(n) * k + uint64_t(n) * (k / 32) * 8;
}

Status Kernels::QuantizeQ8(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& xq, uint32_t n,
                           uint32_t k, uint32_t x_stride) {
  if (x_stride == 0) x_stride = k;
  if (n == 0 || k == 0 || k % 32 != 0 || x_stride % 4 != 0 || x_stride < k ||
      xq.size < Q8ActivationBytes(n, k)) {
    return absl::InvalidArgumentError(absl::StrCat("[vk] quantize_q8: ", n, " tokens of ", k,
                                                   " (stride ", x_stride, ", ", xq.size,
                                                   " bytes out); needs k % 32 == 0"));
  }
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("quantize_q8", kQuantizeWorkgroup, {}));
  cmd.Dispatch(*p, {x, xq}, MatMulPush{k, 0, n, x_stride, 0, 0},
               {CeilDiv(k / 32, kQuantizeWorkgroup), n, 1});
  return absl::OkStatus();
}

StatusOr<std::pair<uint32_t, uint32_t>> Kernels::Int8Shape(const Weight& w, uint32_t n,
                                                           const MatMulOptions& opt) {
  const bool geglu = opt.flags & UNICORN_MM_GEGLU;
  const uint32_t mats = geglu ? 2 : 1;
  const uint32_t max_shared = device_.caps().max_shared_memory;
  const uint32_t max_wg = device_.caps().max_workgroup_invocations;
  auto fits = [&](uint32_t r, uint32_t g, uint32_t c) {
    return mats * r * c * g * 4 <= max_shared && g <= max_wg;
  };
  // Lanes over rows (matmul_int8_rows.comp): whole-word rows, an even
  // number of k phases, and its staged weights and partials in shared memory.
  auto fits_rows = [&](uint32_t r, uint32_t g, uint32_t c, uint32_t lanes) {
    if (w.cols % 64 != 0 || lanes == 0 || g % lanes != 0 || (g / lanes) % 2 != 0 || g > max_wg) {
      return false;
    }
    const uint32_t step_words = (g / lanes) * (w.dtype == DType::kQ4_0 ? 9 : 17) / 2;
    const uint64_t words =
        uint64_t(mats) * lanes * r * ((step_words + 1) | 1) + uint64_t(g) * c * mats * r;
    return words * 4 <= max_shared;
  };
  using Order = MatMulOptions::Int8Order;
  if (opt.matvec_rows || opt.matvec_wg || opt.int8_cols || opt.int8_order != Order::kAuto) {
    const bool row_lanes = opt.int8_order == Order::kRowLanes;
    const uint32_t r = opt.matvec_rows ? opt.matvec_rows : row_lanes ? 1 : kInt8Rows;
    const uint32_t g = opt.matvec_wg ? opt.matvec_wg : row_lanes ? 128 : kInt8Workgroup;
    const uint32_t c = opt.int8_cols ? opt.int8_cols : row_lanes ? 16 : Int8Cols(n);
    const uint32_t lanes = opt.int8_row_lanes ? opt.int8_row_lanes : 32;
    if (r == 0 || r > 8 || c == 0 || c > 16 ||
        !(row_lanes ? fits_rows(r, g, c, lanes) : fits(r, g, c))) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[vk] matmul: no int8 shape of ", r, " rows x ", c, " tokens on ", g,
          row_lanes ? absl::StrCat(" with ", lanes, " row lanes (k ", w.cols, ")") : ""));
    }
    const uint32_t order = opt.int8_order == Order::kWeights ? kInt8WeightsInRegisters
                           : row_lanes                       ? lanes << kInt8RowLanesShift
                                                             : 0;
    return std::pair{r | (c << 8) | order, g};
  }
  const uint32_t cols = Int8Cols(n);
  std::pair<uint32_t, uint32_t> shape{kInt8Rows | (cols << 8), kInt8Workgroup};
  if (!fits(kInt8Rows, kInt8Workgroup, cols)) shape = {1 | (cols << 8), kInt8Workgroup};
  if (!autotune_ || !device_.caps().timestamps) return shape;
  // 8 rows and 128 invocations lost at every shape measured: not timed.
  // Weights in registers (W_REGS) is tried for 16 tokens per workgroup (every
  // weight read once) at 2..8 rows, where it holds fewer registers than the
  // activations of 16 tokens would. So are the lanes over rows, with all
  // the tokens in one column group.
  std::vector<std::pair<uint32_t, uint32_t>> cands;
  for (uint32_t c : {cols, n > 8 ? 16u : 0u}) {
    if (c == 0) continue;
    for (uint32_t r : {1u, 2u, 4u}) {
      for (uint32_t g : {32u, 64u}) {
        if (fits(r, g, c)) cands.push_back({r | (c << 8), g});
      }
    }
    for (uint32_t r : {2u, 4u, 8u}) {
      for (uint32_t g : {32u, 64u}) {
        if (c == 16 && fits(r, g, c)) {
          cands.push_back({r | (c << 8) | kInt8WeightsInRegisters, g});
        }
      }
    }
  }
  if (n > 1) {
    const uint32_t c = n > 8 ? 16 : 8;
    for (uint32_t lanes : {8u, 16u, 32u}) {
      for (uint32_t r : {1u, 2u}) {
        for (uint32_t g : {64u, 128u, 256u}) {
          if (fits_rows(r, g, c, lanes)) {
            cands.push_back({r | (c << 8) | (lanes << kInt8RowLanesShift), g});
          }
        }
      }
    }
  }
  if (cands.empty()) return shape;
  return Tune(w, n, opt, Kind::kInt8, cands);
}

Status Kernels::RecordMatMul(CommandBuffer& cmd, const Weight& w, const SubBuffer& x,
                             const SubBuffer& y, uint32_t n, const MatMulOptions& opt, Kind kind,
                             uint32_t a, uint32_t b) {
  const bool vector = kind == Kind::kVector;
  const bool geglu = opt.flags & UNICORN_MM_GEGLU;
  const uint32_t m = geglu ? w.rows / 2 : w.rows;
  MatMulPush push{
      w.cols,     m, n, opt.x_stride ? opt.x_stride : w.cols, opt.y_stride ? opt.y_stride : m,
      opt.softcap};
  SubBuffer bias = (opt.flags & UNICORN_MM_BIAS) ? opt.bias : x;
  if (kind == Kind::kInt8) {  // x is the quantized activations
    const uint32_t rows = a & 0xFF, cols = (a >> 8) & 0xFF;
    const uint32_t w_regs = (a & kInt8WeightsInRegisters) ? 1 : 0;
    const uint32_t lanes = Int8RowLanes(a);
    const bool quant = opt.xq_out.size > 0;
    const std::string shader = lanes ? "matmul_int8_rows" : "matvec_int8";
    UNICORN_ASSIGN_OR_RETURN(
        const Pipeline* p, Get(quant ? shader + "_q8" : shader, b,
                               {uint32_t(w.dtype), rows, opt.flags, cols, lanes ? lanes : w_regs}));
    const auto grid = Grid(uint64_t(CeilDiv(m, Int8WorkgroupRows(a))) * CeilDiv(n, cols));
    if (quant) {
      cmd.Dispatch(*p, {w.buf, x, y, bias, opt.xq_out, opt.counters}, push, grid);
    } else {
      cmd.Dispatch(*p, {w.buf, x, y, bias}, push, grid);
    }
    return absl::OkStatus();
  }
  if (kind == Kind::kCoop) {
    const CoopTile t = DecodeCoop(a);
    UNICORN_ASSIGN_OR_RETURN(
        const Pipeline* p,
        Get("matmul_coop", b, {uint32_t(w.dtype), 0, opt.flags, t.bm, t.bn, t.wm, t.bk}));
    const uint32_t out_rows = geglu ? t.bm / 2 : t.bm;
    cmd.Dispatch(*p, {w.buf, x, y, bias}, push, {CeilDiv(m, out_rows), CeilDiv(n, t.bn), 1});
    return absl::OkStatus();
  }
  if (vector && a == 0) {  // the batch kernel, b = its k slice | prefetching (bit 0)
    const uint32_t rm = geglu ? 8 : 16;
    UNICORN_ASSIGN_OR_RETURN(const Pipeline* p,
                             Get("matmul_batch", kBatchWorkgroup,
                                 {uint32_t(w.dtype), 0, opt.flags, BatchTokens(n), b & ~1u,
                                  opt.batch_ablation, b & 1u}));
    cmd.Dispatch(*p, {w.buf, x, y, bias}, push, Grid(CeilDiv(m, rm)));
    return absl::OkStatus();
  }
  if (vector) {
    const uint32_t cols = MatVecCols(n);
    UNICORN_ASSIGN_OR_RETURN(const Pipeline* p,
                             Get("matvec", b, {uint32_t(w.dtype), a, opt.flags, cols}));
    cmd.Dispatch(*p, {w.buf, x, y, bias}, push, Grid(uint64_t(CeilDiv(m, a)) * CeilDiv(n, cols)));
    return absl::OkStatus();
  }
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p,
                           Get("matmul", 256, {uint32_t(w.dtype), 0, opt.flags, a, b}));
  cmd.Dispatch(*p, {w.buf, x, y, bias}, push, {CeilDiv(m, a), CeilDiv(n, b), 1});
  return absl::OkStatus();
}

StatusOr<std::pair<uint32_t, uint32_t>> Kernels::Tune(
    const Weight& w, uint32_t n, const MatMulOptions& opt, Kind kind,
    const std::vector<std::pair<uint32_t, uint32_t>>& candidates) {
  const bool vector = kind == Kind::kVector || kind == Kind::kInt8;
  const bool geglu = opt.flags & UNICORN_MM_GEGLU;
  const uint32_t m = geglu ? w.rows / 2 : w.rows;
  // Shapes that share a kernel variant share the result: n only matters as
  // the matvec's tokens per workgroup, or as the power of two (>= 64) the
  // tiled kernel's rows round up to (few classes: a stage tunes them all
  // when it loads, see Gemma3Batch::WarmUp).
  const uint32_t n_class = vector                           ? FewTokenClass(n)
                           : kind == Kind::kCoop && n <= 32 ? CoopTokens(n)
                                                            : std::max(64u, std::bit_ceil(n));
  const std::string key =
      absl::StrCat(kind == Kind::kInt8   ? "int8 "
                   : kind == Kind::kCoop ? "coop "
                   : vector              ? "matvec "
                                         : "matmul ",
                   std::string(Traits(w.dtype).name), " ", w.rows, "x", w.cols, " flags ",
                   opt.flags, " n", n_class, kind == Kind::kCoop && opt.coop_x_f16 ? " x16" : "");
  auto it = tuned_.find(key);
  if (it != tuned_.end()) return it->second;
  if (candidates.size() == 1) return tuned_[key] = candidates[0];

  // Inputs of the right size: zeros in (F32 activations, or int8 blocks of
  // scale 0), scratch out.
  const uint32_t xs = opt.x_stride ? opt.x_stride : w.cols;
  const uint32_t ys = opt.y_stride ? opt.y_stride : m;
  const VkDeviceSize xb =
      kind == Kind::kInt8 ? Q8ActivationBytes(n, w.cols) : VkDeviceSize(n) * xs * 4;
  const VkDeviceSize yb = VkDeviceSize(n) * ys * 4 + 16;
  if (tune_x_.size() < xb) {
    UNICORN_ASSIGN_OR_RETURN(tune_x_, device_.allocator().Create(xb, MemoryUse::kDevice, "tuning"));
    UNICORN_RETURN_IF_ERROR(device_.allocator().Zero(tune_x_.All()));
  }
  if (tune_y_.size() < yb) {
    UNICORN_ASSIGN_OR_RETURN(tune_y_, device_.allocator().Create(yb, MemoryUse::kDevice, "tuning"));
  }
  MatMulOptions o = opt;
  o.bias = tune_y_.All();  // holds >= m floats; the values do not matter for timing
  // All candidates in one submission, interleaved over rounds, so that each
  // is timed in the same clock state: one at a time, with pipeline compiles
  // between, the GPU idled and the later candidates ran at higher clocks.
  // (Recording compiles every pipeline before anything runs.) The first
  // round warms the clocks up and is not counted; each candidate keeps its
  // fastest dispatch.
  constexpr int kReps = 2, kRounds = 4;
  const size_t per_round = candidates.size() * kReps;
  CommandBuffer tc(device_, uint32_t(2 * per_round * kRounds));
  tc.Begin();
  for (int round = 0; round < kRounds; ++round) {
    for (const auto& c : candidates) {
      for (int r = 0; r < kReps; ++r) {
        UNICORN_RETURN_IF_ERROR(
            RecordMatMul(tc, w, tune_x_.All(), tune_y_.All(), n, o, kind, c.first, c.second));
        tc.Barrier();
      }
    }
  }
  UNICORN_RETURN_IF_ERROR(tc.End());
  UNICORN_RETURN_IF_ERROR(tc.SubmitAndWait());
  UNICORN_ASSIGN_OR_RETURN(std::vector<TimestampRecord> prof, tc.Profile());
  if (prof.size() != per_round * kRounds) {
    return absl::InternalError(absl::StrCat("[vk] autotune: ", prof.size(), " timings for ",
                                            per_round * kRounds, " dispatches"));
  }
  std::pair<uint32_t, uint32_t> best = candidates[0];
  double best_ms = 1e30;
  for (size_t i = 0; i < candidates.size(); ++i) {
    double ms = 1e30;
    for (int round = 1; round < kRounds; ++round) {
      for (int r = 0; r < kReps; ++r) ms = std::min(ms, prof[round * per_round + i * kReps + r].ms);
    }
    if (ms < best_ms) {
      best_ms = ms;
      best = candidates[i];
    }
  }
  tuning_log_.push_back(absl::StrCat(
      key, ": ",
      kind == Kind::kInt8
          ? absl::StrCat(best.first & 0xFF, " rows x ", (best.first >> 8) & 0xFF, " tokens on ",
                         best.second,
                         best.first & kInt8WeightsInRegisters ? ", weights in registers" : "",
                         Int8RowLanes(best.first)
                             ? absl::StrCat(", ", Int8RowLanes(best.first), " row lanes")
                             : "")
      : kind == Kind::kCoop
          ? absl::StrCat(DecodeCoop(best.first).bm, " x ", DecodeCoop(best.first).bn, " tile, ",
                         DecodeCoop(best.first).wm, " subgroups along m, k step ",
                         DecodeCoop(best.first).bk,
                         DecodeCoop(best.first).prefetch ? " (prefetching)" : "", ", ", best.second,
                         " invocations")
      : !vector         ? absl::StrCat(best.first, " x ", best.second)
      : best.first == 0 ? absl::StrCat("batch kernel, k slice ", best.second & ~1u,
                                       best.second & 1u ? ", prefetching" : "")
                        : absl::StrCat(best.first, " rows x ", best.second),
      absl::StrFormat(" (%.4f ms)", best_ms)));
  return tuned_[key] = best;
}

Status Kernels::Embed(CommandBuffer& cmd, const Weight& table, const SubBuffer& ids,
                      const SubBuffer& y, uint32_t n, float scale, uint32_t y_stride) {
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("embed", 64, {uint32_t(table.dtype)}));
  EmbedPush push{table.cols, n, table.rows, y_stride ? y_stride : table.cols, scale};
  cmd.Dispatch(*p, {table.buf, ids, y}, push, Grid(n));
  return absl::OkStatus();
}

Status Kernels::HeadNormRope(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w,
                             const SubBuffer& inv_freq, const SubBuffer& pos,
                             const SubBuffer& k_store, const SubBuffer& v, const SubBuffer& v_store,
                             uint32_t n, const HeadParams& hp) {
  if (hp.head_dim % 2 != 0 || ((hp.flags & UNICORN_HEAD_STORE) && hp.cap == 0) ||
      ((hp.flags & UNICORN_HEAD_RINGS) &&
       (!(hp.flags & UNICORN_HEAD_STORE) || hp.rings.size == 0))) {
    return absl::InvalidArgumentError(
        absl::StrCat("[vk] head norm/rope: head_dim ", hp.head_dim, ", store of ", hp.cap));
  }
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("head_norm_rope", 128, {hp.flags}));
  HeadPush push{hp.heads, hp.head_dim, hp.cap, hp.eps};
  const SubBuffer& r = (hp.flags & UNICORN_HEAD_RINGS) ? hp.rings : pos;
  cmd.Dispatch(*p, {x, w, inv_freq, pos, k_store, v, v_store, r}, push, {hp.heads, n, 1});
  return absl::OkStatus();
}

std::vector<float> Kernels::RopeInvFreq(uint32_t head_dim, double theta, double linear_factor) {
  std::vector<float> f(head_dim / 2);
  for (uint32_t i = 0; i < f.size(); ++i) {
    float e = float(2 * i) / float(head_dim);
    float p = float(std::pow(double(float(theta)), double(e)));
    f[i] = (1.0f / p) / float(linear_factor);
  }
  return f;
}

uint32_t Kernels::DecodeSplits(uint32_t cap) {
  // Enough splits to fill a large GPU at long contexts; the kernel uses
  // only as many as splits of UNICORN_ATTN_MIN_CHUNK keys need.
  return std::clamp<uint32_t>(cap / UNICORN_ATTN_MIN_CHUNK, 1, UNICORN_ATTN_MAX_SPLITS);
}

bool Kernels::UsesDecodePath(const AttnParams& ap) {
  // Rows of several sequences (rings) take the decode kernel: the tiled
  // prefill kernel shares each key tile among its rows.
  if (ap.rings.size > 0) return true;
  if (ap.path != AttnParams::Path::kAuto) return ap.path == AttnParams::Path::kDecode;
  return ap.n_tokens <= 4;
}

bool Kernels::CanQuantizeInAttention(const AttnParams& ap) const {
  const uint32_t hd = ap.n_heads * ap.head_dim;
  return int8_ && UsesDecodePath(ap) && ap.head_dim % 32 == 0 &&
         (ap.o_stride == 0 || ap.o_stride == hd);
}

uint64_t Kernels::AttnCounterBytes(const AttnParams& ap) {
  return uint64_t(ap.n_tokens) * ap.n_kv_heads * 4;
}

uint64_t Kernels::AttnScratchBytes(const AttnParams& ap) {
  if (!UsesDecodePath(ap)) return 0;
  uint64_t s = ap.n_splits ? ap.n_splits : DecodeSplits(ap.cap);
  return uint64_t(ap.n_tokens) * ap.n_heads * s * (ap.head_dim + 2) * 4;
}

Status Kernels::Attention(CommandBuffer& cmd, const SubBuffer& q, const SubBuffer& k,
                          const SubBuffer& v, const SubBuffer& spans, const SubBuffer& out,
                          const SubBuffer& scratch, const AttnParams& ap) {
  if (ap.head_dim > kMaxHeadDim || ap.n_kv_heads == 0 || ap.n_heads % ap.n_kv_heads != 0 ||
      ap.cap == 0 || ap.n_tokens == 0 || ap.n_splits > UNICORN_ATTN_MAX_SPLITS) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[vk] attention: ", ap.n_heads, " heads, ", ap.n_kv_heads, " kv heads of ", ap.head_dim,
        ", ", ap.cap, " slots, ", ap.n_splits, " splits (at most ", UNICORN_ATTN_MAX_SPLITS, ")"));
  }
  const uint32_t hd = ap.n_heads * ap.head_dim;
  AttnPush push{ap.n_tokens,
                ap.n_heads,
                ap.n_kv_heads,
                ap.head_dim,
                ap.cap,
                ap.scale,
                ap.softcap,
                ap.q_stride ? ap.q_stride : hd,
                ap.o_stride ? ap.o_stride : hd,
                ap.kv_token_stride ? ap.kv_token_stride : ap.n_kv_heads * ap.head_dim,
                ap.kv_head_stride ? ap.kv_head_stride : ap.head_dim,
                ap.n_splits ? ap.n_splits : DecodeSplits(ap.cap)};
  if (!UsesDecodePath(ap)) {
    UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("attn_prefill", 128, {uint32_t(ap.kv_f16)}));
    cmd.Dispatch(*p, {q, k, v, spans, out}, push,
                 {CeilDiv(ap.n_tokens, kAttnPrefillRows), ap.n_heads, 1});
    return absl::OkStatus();
  }
  const bool quant = ap.xq.size > 0;
  if (quant && (!CanQuantizeInAttention(ap) || ap.xq.size < Q8ActivationBytes(ap.n_tokens, hd))) {
    return absl::InvalidArgumentError(
        absl::StrCat("[vk] attention: cannot also write int8 activations (", ap.n_tokens,
                     " tokens of ", ap.n_heads, " x ", ap.head_dim, ", o_stride ", push.o_stride,
                     ", ", ap.xq.size, " bytes out)"));
  }
  const uint64_t parts = uint64_t(ap.n_tokens) * ap.n_heads * push.n_splits;
  if (scratch.size < AttnScratchBytes(ap)) {
    return absl::InvalidArgumentError("[vk] attention: scratch buffer too small");
  }
  SubBuffer o_part{scratch.buffer, scratch.offset, parts * ap.head_dim * 4};
  SubBuffer ml_part{scratch.buffer, scratch.offset + o_part.size, parts * 8};
  uint32_t group = ap.n_heads / ap.n_kv_heads;
  // attn_decode.comp spreads a key's dims over a subgroup's lanes.
  const uint32_t sg = device_.caps().subgroup_size;
  if (sg < 4 || sg > 128) {
    return absl::FailedPreconditionError(
        absl::StrCat("[vk] attention: subgroup size ", sg, " (decode attention needs 4 to 128)"));
  }
  const uint32_t lane_dims = 4 * CeilDiv(ap.head_dim, 4 * sg);
  const uint32_t wg = ap.decode_workgroup ? ap.decode_workgroup : kAttnDecodeWorkgroup;
  if (wg % sg != 0 || wg / sg > UNICORN_ATTN_MAX_SUBGROUPS || wg < UNICORN_ATTN_MAX_SPLITS) {
    return absl::InvalidArgumentError(
        absl::StrCat("[vk] attention: decode workgroup of ", wg, " with subgroups of ", sg));
  }
  const std::vector<uint32_t> spec = {uint32_t(ap.kv_f16), group, uint32_t(ap.rings.size > 0),
                                      lane_dims};
  const SubBuffer rings = ap.rings.size > 0 ? ap.rings : spans;
  if (ap.counters.size > 0) {  // one dispatch: the last split merges
    if (ap.counters.size < AttnCounterBytes(ap)) {
      return absl::InvalidArgumentError(absl::StrCat("[vk] attention: ", ap.counters.size,
                                                     " bytes of split counters for ", ap.n_tokens,
                                                     " tokens of ", ap.n_kv_heads, " kv heads"));
    }
    UNICORN_ASSIGN_OR_RETURN(const Pipeline* p,
                             Get(quant ? "attn_decode_merge_q8" : "attn_decode_merge", wg, spec));
    const Groups groups = {push.n_splits, ap.n_kv_heads, ap.n_tokens};
    if (quant) {
      cmd.Dispatch(*p, {q, k, v, spans, o_part, ml_part, rings, out, ap.counters, ap.xq}, push,
                   groups);
    } else {
      cmd.Dispatch(*p, {q, k, v, spans, o_part, ml_part, rings, out, ap.counters}, push, groups);
    }
    return absl::OkStatus();
  }
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* dec, Get("attn_decode", wg, spec));
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* red,
                           Get(quant ? "attn_reduce_q8" : "attn_reduce", 128, {}));
  cmd.Dispatch(*dec, {q, k, v, spans, o_part, ml_part, rings}, push,
               {push.n_splits, ap.n_kv_heads, ap.n_tokens});
  cmd.ComputeBarrier();
  // The merge's own row in a GPU profile (unlabelled: the pipeline's name).
  const std::string label = cmd.label();
  if (!label.empty()) cmd.SetLabel(label + " (merge)");
  if (quant) {
    cmd.Dispatch(*red, {o_part, ml_part, out, ap.xq, spans}, push, {ap.n_heads, ap.n_tokens, 1});
  } else {
    cmd.Dispatch(*red, {o_part, ml_part, out, spans}, push, {ap.n_heads, ap.n_tokens, 1});
  }
  if (!label.empty()) cmd.SetLabel(label);
  return absl::OkStatus();
}

Status Kernels::Add(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& b, const SubBuffer& y,
                    uint32_t n) {
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("elementwise", 256, {UNICORN_EW_ADD}));
  cmd.Dispatch(*p, {a, b, y}, ElementwisePush{n, 0, 0}, Grid(CeilDiv(n, 256)));
  return absl::OkStatus();
}

Status Kernels::GeGlu(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& b,
                      const SubBuffer& y, uint32_t n) {
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("elementwise", 256, {UNICORN_EW_GEGLU}));
  cmd.Dispatch(*p, {a, b, y}, ElementwisePush{n, 0, 0}, Grid(CeilDiv(n, 256)));
  return absl::OkStatus();
}

Status Kernels::Gelu(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& y, uint32_t n) {
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("elementwise", 256, {UNICORN_EW_GELU}));
  cmd.Dispatch(*p, {a, a, y}, ElementwisePush{n, 0, 0}, Grid(CeilDiv(n, 256)));
  return absl::OkStatus();
}

Status Kernels::SoftCap(CommandBuffer& cmd, const SubBuffer& a, const SubBuffer& y, uint32_t n,
                        float cap) {
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("elementwise", 256, {UNICORN_EW_SOFTCAP}));
  cmd.Dispatch(*p, {a, a, y}, ElementwisePush{n, 0, cap}, Grid(CeilDiv(n, 256)));
  return absl::OkStatus();
}

Status Kernels::Argmax(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& ids, uint32_t rows,
                       uint32_t n, uint32_t stride) {
  if (rows == 0 || n == 0 || stride < n || x.size < (uint64_t(rows - 1) * stride + n) * 4 ||
      ids.size < uint64_t(rows) * 4) {
    return absl::InvalidArgumentError(absl::StrCat("[vk] argmax: ", rows, " rows of ", n,
                                                   " (stride ", stride, ") in ", x.size, " bytes, ",
                                                   ids.size, " bytes of ids"));
  }
  // The most invocations a device allows, as a power of two up to 1024: the
  // few rows of a decode step each scan the whole vocabulary.
  uint32_t wg = 1;
  while (wg < 1024 && wg * 2 <= device_.caps().max_workgroup_invocations) wg *= 2;
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("argmax", wg, {}));
  cmd.Dispatch(*p, {x, ids}, ArgmaxPush{n, stride}, Grid(rows));
  return absl::OkStatus();
}

Status Kernels::Patchify(CommandBuffer& cmd, const SubBuffer& image, const SubBuffer& patches,
                         uint32_t image_size, uint32_t patch, uint32_t channels) {
  if (patch == 0 || image_size % patch != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("[vk] patchify: image ", image_size, " not a multiple of patch ", patch));
  }
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("patchify", 256, {}));
  uint64_t n = uint64_t(image_size) * image_size * channels;
  cmd.Dispatch(*p, {image, patches}, PatchPush{image_size, patch, channels}, Grid(CeilDiv(n, 256)));
  return absl::OkStatus();
}

Status Kernels::AvgPool(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& y,
                        uint32_t grid_in, uint32_t grid_out, uint32_t channels) {
  if (grid_out == 0 || grid_in % grid_out != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("[vk] avg_pool: grid ", grid_in, " does not pool to ", grid_out));
  }
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get("avg_pool", 256, {}));
  cmd.Dispatch(*p, {x, y}, PoolPush{grid_in, grid_out, channels}, {grid_out * grid_out, 1, 1});
  return absl::OkStatus();
}

}  // namespace unicorn::vk

namespace unicorn::vk {

std::string Kernels::CoopShapeProblem(uint32_t shape, uint32_t wg, bool geglu, bool x_f16) const {
  const CoopTile t = DecodeCoop(shape);
  const uint32_t sgs = wg / 32;
  if (wg == 0 || wg % 32 != 0 || wg > device_.caps().max_workgroup_invocations) {
    return absl::StrCat(wg, " invocations (need a multiple of 32 the device allows)");
  }
  if (t.wm == 0 || sgs % t.wm != 0) return absl::StrCat(t.wm, " subgroups along m of ", sgs);
  const uint32_t wn = sgs / t.wm;
  if (t.bm == 0 || t.bm % (16 * t.wm) != 0 || t.bn == 0 || t.bn % (16 * wn) != 0) {
    return absl::StrCat("a ", t.bm, " x ", t.bn, " tile on ", t.wm, " x ", wn,
                        " subgroups (each needs whole 16 x 16 fragments)");
  }
  if (geglu && (t.bm / 16 / t.wm) % 2 != 0) {
    return absl::StrCat("GEGLU needs an even number of fragments per subgroup along m (",
                        t.bm / 16 / t.wm, ")");
  }
  if (t.bk == 0 || t.bk > 256) return absl::StrCat("a k step of ", t.bk);
  const uint32_t w_chunks = CeilDiv(t.bm * t.bk / 8, wg), x_runs = CeilDiv(t.bn * t.bk / 4, wg);
  if (w_chunks > 8 || x_runs > 8) {
    return absl::StrCat(w_chunks, " weight chunks and ", x_runs,
                        " x runs per invocation in registers (at most 8 each)");
  }
  if (CoopSharedBytes(t, wg, x_f16) > device_.caps().max_shared_memory) {
    return absl::StrCat(CoopSharedBytes(t, wg, x_f16), " bytes of shared memory (the device has ",
                        device_.caps().max_shared_memory, ")");
  }
  return "";
}

StatusOr<std::pair<uint32_t, uint32_t>> Kernels::CoopShapeFor(const Weight& w, uint32_t n,
                                                              const MatMulOptions& opt) {
  const bool geglu = opt.flags & UNICORN_MM_GEGLU;
  if (opt.coop_shape != 0 || opt.coop_wg != 0) {
    const std::string why = CoopShapeProblem(opt.coop_shape, opt.coop_wg, geglu, opt.coop_x_f16);
    if (!why.empty()) return absl::InvalidArgumentError("[vk] matmul: tensor-core shape: " + why);
    return std::make_pair(opt.coop_shape, opt.coop_wg);
  }
  const uint32_t bn = CoopTokens(n);
  // Candidates: 2, 4 or 8 subgroups; 1, 2 or 4 of them along n; up to 8
  // fragments each (their sums live in registers); short k steps for big
  // tiles, long ones for few tokens (more weight loads in flight per step).
  std::vector<std::pair<uint32_t, uint32_t>> cands;
  for (uint32_t wg : {64u, 128u, 256u}) {
    const uint32_t sgs = wg / 32;
    for (uint32_t wn : {1u, 2u, 4u}) {
      if (sgs % wn != 0 || bn % (16 * wn) != 0) continue;
      const uint32_t wm = sgs / wn, fn = bn / 16 / wn;
      for (uint32_t fm : {1u, 2u, 4u}) {
        const uint32_t bm = 16 * wm * fm;
        // Many tokens: tiles of 64+ rows on 8 subgroups (smaller ones
        // only re-read x more often; each candidate is a pipeline to
        // compile when a stage loads).
        if (bm > 128 || fm * fn > 8 || (bn >= 64 && (bm < 64 || wg < 256))) continue;
        static constexpr uint32_t kFewK[] = {64, 128, 256}, kManyK[] = {32};
        for (uint32_t bk :
             bn <= 32 ? std::span<const uint32_t>(kFewK) : std::span<const uint32_t>(kManyK)) {
          for (bool prefetch : {false, true}) {
            const uint32_t shape = CoopShape(bm, bn, wm, bk, prefetch);
            if (CoopShapeProblem(shape, wg, geglu, opt.coop_x_f16).empty()) {
              cands.push_back({shape, wg});
            }
          }
        }
      }
    }
  }
  if (cands.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("[vk] matmul: no tensor-core tile fits ", device_.caps().name));
  }
  // Untimed: 4 subgroups along m, 2 fragments each (GEGLU needs pairs); few
  // tokens in k steps of 128, many in 128 x 128 tiles on 8 subgroups.
  std::pair<uint32_t, uint32_t> def = bn <= 32 ? std::make_pair(CoopShape(128, bn, 4, 128), 128u)
                                               : std::make_pair(CoopShape(128, bn, 4, 32), 256u);
  if (!CoopShapeProblem(def.first, def.second, geglu, opt.coop_x_f16).empty()) {
    def = cands.front();
  }
  if (autotune_ && device_.caps().timestamps) return Tune(w, n, opt, Kind::kCoop, cands);
  return def;
}

}  // namespace unicorn::vk
