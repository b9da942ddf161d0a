// The product kernels of Kernels (kernels.h): shape choice, recording,
// autotuning, int8 activations and the tensor-core tiles. kernels.cc has
// the other ops and the pipeline cache.
#include <algorithm>
#include <bit>
#include <span>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gpu_worker/kernels.h"

namespace unicorn::vk {
namespace {

uint32_t CeilDiv(uint64_t a, uint64_t b) { return uint32_t((a + b - 1) / b); }

// Matvec shape: output rows per workgroup and workgroup size. Longer rows
// get more invocations so each still loops a few times.
struct MatVecShape {
  uint32_t rows;
  uint32_t wg;
};
MatVecShape PickMatVec(const Weight& w) { return {2, w.cols >= 4096 ? 128u : 64u}; }

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
uint32_t Int8RowLanes(uint32_t shape) { return (shape >> kInt8RowLanesShift) & 0x3F; }
// Or the tensor cores (matmul_int8_coop.comp): the rows field counts
// fragments of 16 rows, and the k step (blocks of 32) sits above the lanes.
constexpr uint32_t kInt8TensorCores = 1u << 17;
constexpr uint32_t kInt8BlocksShift = 26;
uint32_t Int8CoopBlocks(uint32_t shape) { return (shape >> kInt8BlocksShift) & 0x7; }
uint32_t Int8CoopShape(uint32_t fragments, uint32_t blocks) {
  return fragments | (16u << 8) | kInt8TensorCores | (blocks << kInt8BlocksShift);
}
// Rows per workgroup of an int8 shape.
uint32_t Int8WorkgroupRows(uint32_t shape) {
  if (shape & kInt8TensorCores) return (shape & 0xFF) * 16;
  const uint32_t lanes = Int8RowLanes(shape);
  return (shape & 0xFF) * (lanes ? lanes : 1);
}
// Shared memory of matmul_int8_coop.comp: each subgroup's F16 slices of
// weights and activations, and the workgroup's F32 sums (and one part).
uint32_t Int8CoopSharedBytes(uint32_t fragments, uint32_t blocks, uint32_t wg, uint32_t mats) {
  return (wg / 32) * (mats * 16 * fragments + 16) * (32 * blocks + 8) * 2 + mats * fragments * 2048;
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
}  // namespace

uint32_t Kernels::BatchSharedBytes(uint32_t tokens, uint32_t k_slice) {
  // As[BK][5] and Bs[BK][TN / 4 + 1] vec4s, red[64 * 32] floats.
  const uint32_t tn = BatchTokens(tokens);
  return k_slice * (20 + 4 * (tn / 4 + 1)) * 4 + 64 * 32 * 4;
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
    if (!CoopRuns()) return absl::InvalidArgumentError("[vk] matmul: " + NoTensorCores());
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
  // The tensor cores: whole subgroups of 32, 1, 2 or 4 fragments, k steps of
  // 1, 2 or 4 blocks, the slices in shared memory.
  auto coop_problem = [&](uint32_t f, uint32_t g, uint32_t blocks) -> std::string {
    if (!CoopRuns()) return NoTensorCores();
    if (f != 1 && f != 2 && f != 4) return absl::StrCat(f, " fragments (1, 2 or 4)");
    if (blocks != 1 && blocks != 2 && blocks != 4)
      return absl::StrCat("k steps of ", blocks, " blocks (1, 2 or 4)");
    if (g == 0 || g % 32 != 0 || g > 256 || g > max_wg) return absl::StrCat(g, " invocations");
    if (Int8CoopSharedBytes(f, blocks, g, mats) > max_shared) {
      return absl::StrCat(Int8CoopSharedBytes(f, blocks, g, mats),
                          " bytes of shared memory (the device has ", max_shared, ")");
    }
    return "";
  };
  using Order = MatMulOptions::Int8Order;
  if (opt.int8_order == Order::kTensorCores) {
    const uint32_t f = opt.matvec_rows ? opt.matvec_rows : 1;
    const uint32_t g = opt.matvec_wg ? opt.matvec_wg : 128;
    const uint32_t blocks = opt.int8_coop_blocks ? opt.int8_coop_blocks : 1;
    const std::string why = coop_problem(f, g, blocks);
    if (!why.empty()) {
      return absl::InvalidArgumentError("[vk] matmul: int8 on the tensor cores: " + why);
    }
    return std::pair{Int8CoopShape(f, blocks), g};
  }
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
  // The tensor cores, for 2..16 tokens (one column group of 16).
  if (n > 1 && int8_coop_ && coopmat()) {
    for (uint32_t f : {1u, 2u, 4u}) {
      for (uint32_t g : {64u, 128u, 256u}) {
        for (uint32_t blocks : {1u, 2u}) {
          // 4 fragments (64 rows: each subgroup's x dequantized for more
          // rows, fewer workgroups) in short steps on 4-8 subgroups only.
          if (f == 4 && (g == 64 || blocks == 2)) continue;
          if (coop_problem(f, g, blocks).empty()) {
            cands.push_back({Int8CoopShape(f, blocks), g});
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
    const bool coop = a & kInt8TensorCores;
    const bool quant = opt.xq_out.size > 0;
    const std::string shader = coop    ? CoopShader("matmul_int8_coop")
                               : lanes ? "matmul_int8_rows"
                                       : "matvec_int8";
    const uint32_t last = coop ? Int8CoopBlocks(a) : lanes ? lanes : w_regs;
    UNICORN_ASSIGN_OR_RETURN(
        const Pipeline* p,
        Get(quant ? shader + "_q8" : shader, b, {uint32_t(w.dtype), rows, opt.flags, cols, last}));
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
        const Pipeline* p, Get(CoopShader("matmul_coop"), b,
                               {uint32_t(w.dtype), 0, opt.flags, t.bm, t.bn, t.wm, t.bk, t.prefetch,
                                opt.coop_x_f16 ? 1u : 0u}));
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
      kind == Kind::kInt8 && (best.first & kInt8TensorCores)
          ? absl::StrCat("tensor cores, ", Int8WorkgroupRows(best.first), " rows, k steps of ",
                         Int8CoopBlocks(best.first), " blocks on ", best.second, " invocations")
      : kind == Kind::kInt8
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

std::string Kernels::NoTensorCores() const {
  return absl::StrCat(
      device_.caps().name,
      " has no tensor-core products (VK_NV_cooperative_matrix with 16x16x16 F16 fragments)");
}

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
          // Not the prefetching variant: it has not run on a GPU yet.
          const uint32_t shape = CoopShape(bm, bn, wm, bk);
          if (CoopShapeProblem(shape, wg, geglu, opt.coop_x_f16).empty()) {
            cands.push_back({shape, wg});
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
