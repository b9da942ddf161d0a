#include "gpu_worker/kernels.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "absl/strings/str_cat.h"
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
      {"matmul_coop_emu", {matmul_coop_emu_spv, matmul_coop_emu_spv_size, sizeof(MatMulPush), 4}},
      {"matvec_int8", {matvec_int8_spv, matvec_int8_spv_size, sizeof(MatMulPush), 4}},
      {"matvec_int8_q8", {matvec_int8_q8_spv, matvec_int8_q8_spv_size, sizeof(MatMulPush), 6}},
      {"matmul_int8_rows",
       {matmul_int8_rows_spv, matmul_int8_rows_spv_size, sizeof(MatMulPush), 4}},
      {"matmul_int8_rows_q8",
       {matmul_int8_rows_q8_spv, matmul_int8_rows_q8_spv_size, sizeof(MatMulPush), 6}},
      {"matmul_int8_coop",
       {matmul_int8_coop_spv, matmul_int8_coop_spv_size, sizeof(MatMulPush), 4}},
      {"matmul_int8_coop_q8",
       {matmul_int8_coop_q8_spv, matmul_int8_coop_q8_spv_size, sizeof(MatMulPush), 6}},
      {"matmul_int8_coop_emu",
       {matmul_int8_coop_emu_spv, matmul_int8_coop_emu_spv_size, sizeof(MatMulPush), 4}},
      {"matmul_int8_coop_emu_q8",
       {matmul_int8_coop_emu_q8_spv, matmul_int8_coop_emu_q8_spv_size, sizeof(MatMulPush), 6}},
      {"quantize_q8", {quantize_q8_spv, quantize_q8_spv_size, sizeof(MatMulPush), 2}},
      {"embed", {embed_spv, embed_spv_size, sizeof(EmbedPush), 3}},
      {"head_norm_rope", {head_norm_rope_spv, head_norm_rope_spv_size, sizeof(HeadPush), 8}},
      {"attn_decode", {attn_decode_spv, attn_decode_spv_size, sizeof(AttnPush), 7}},
      {"attn_decode_merge",
       {attn_decode_merge_spv, attn_decode_merge_spv_size, sizeof(AttnPush), 9}},
      {"attn_decode_merge_q8",
       {attn_decode_merge_q8_spv, attn_decode_merge_q8_spv_size, sizeof(AttnPush), 10}},
      {"attn_decode_new_kv",
       {attn_decode_new_kv_spv, attn_decode_new_kv_spv_size, sizeof(AttnPush), 13}},
      {"attn_reduce", {attn_reduce_spv, attn_reduce_spv_size, sizeof(AttnPush), 4}},
      {"attn_reduce_q8", {attn_reduce_q8_spv, attn_reduce_q8_spv_size, sizeof(AttnPush), 5}},
      {"attn_prefill", {attn_prefill_spv, attn_prefill_spv_size, sizeof(AttnPush), 5}},
      {"attn_prefill_tiled",
       {attn_prefill_tiled_spv, attn_prefill_tiled_spv_size, sizeof(AttnPush), 5}},
      {"attn_prefill_coop",
       {attn_prefill_coop_spv, attn_prefill_coop_spv_size, sizeof(AttnPush), 5}},
      {"attn_prefill_coop_emu",
       {attn_prefill_coop_emu_spv, attn_prefill_coop_emu_spv_size, sizeof(AttnPush), 5}},
      {"elementwise", {elementwise_spv, elementwise_spv_size, sizeof(ElementwisePush), 3}},
      {"patchify", {patchify_spv, patchify_spv_size, sizeof(PatchPush), 2}},
      {"avg_pool", {avg_pool_spv, avg_pool_spv_size, sizeof(PoolPush), 2}},
      {"argmax", {argmax_spv, argmax_spv_size, sizeof(ArgmaxPush), 2}},
  };
  auto it = kShaders.find(name);
  return it == kShaders.end() ? nullptr : &it->second;
}

uint32_t CeilDiv(uint64_t a, uint64_t b) { return uint32_t((a + b - 1) / b); }

// Invocations per row of a norm: few rows (decode) are latency-bound, so a
// wide workgroup loads the whole row at once (one vec4 each); many rows fill
// the GPU with 256-wide workgroups.
uint32_t NormWorkgroup(uint32_t rows, uint32_t n) {
  if (rows > 64) return 256;
  uint32_t wg = 64;
  while (wg < 1024 && wg * 4 < n) wg *= 2;
  return wg;
}

constexpr uint32_t kAttnPrefillRows = 8;  // attn_prefill.comp's BR
constexpr uint32_t kAttnTiledRows = 16;   // attn_prefill_tiled.comp's BR
// attn_prefill_tiled.comp's shared memory for tiles of bc keys (its header).
uint32_t TiledAttentionBytes(uint32_t head_dim, bool kv_f16, uint32_t bc) {
  const uint32_t qd = CeilDiv(head_dim, 4), kp = kv_f16 ? (qd | 1u) : 2 * qd + 1;
  return kAttnTiledRows * qd * 16 + bc * kp * 8 + 2 * kAttnTiledRows * (bc + 1) * 4;
}
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

bool Kernels::TakesCoopAttention(const AttnParams& ap) const {
  if (ap.path == AttnParams::Path::kPrefillCoop) return true;
  return ap.path == AttnParams::Path::kAuto && coop_attn_ && CoopRuns() && ap.head_dim % 16 == 0 &&
         !UsesDecodePath(ap);
}

StatusOr<uint32_t> Kernels::CoopAttentionWorkgroup(const AttnParams& ap) const {
  if (!CoopRuns()) return absl::InvalidArgumentError("[vk] attention: " + NoTensorCores());
  if (ap.head_dim % 16 != 0 || ap.rings.size > 0 || ap.xq.size > 0 || ap.counters.size > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[vk] attention: the tensor-core prefill kernel takes head dims of whole 16-wide "
        "fragments and one sequence, without int8 output or counters (head_dim ",
        ap.head_dim, ")"));
  }
  // attn_prefill_coop.comp: the most subgroups (16 query tokens each, up to
  // 4) whose Q, K/V tile, scores and P fit shared memory.
  const uint32_t hp = ap.head_dim + 8, bc = 32;
  for (uint32_t sgs : {4u, 2u, 1u}) {
    const uint32_t bytes = (16 * sgs + bc) * hp * 2 + sgs * 16 * (bc * 4 + (bc + 8) * 2) + 64 * sgs;
    if (bytes <= device_.caps().max_shared_memory &&
        32 * sgs <= device_.caps().max_workgroup_invocations) {
      return 32 * sgs;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("[vk] attention: the tensor-core prefill kernel for head_dim ", ap.head_dim,
                   " needs more shared memory than ", device_.caps().name, " has"));
}

uint32_t Kernels::TiledAttentionKeys(const AttnParams& ap) const {
  if (ap.rings.size > 0 || ap.xq.size > 0 || ap.counters.size > 0) return 0;
  for (uint32_t bc : {32u, 16u}) {
    if (TiledAttentionBytes(ap.head_dim, ap.kv_f16, bc) <= device_.caps().max_shared_memory) {
      return bc;
    }
  }
  return 0;
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
  if (ap.new_kv.k.size > 0 && !UsesDecodePath(ap)) {
    return absl::InvalidArgumentError("[vk] attention: new keys take the decode path only");
  }
  if (TakesCoopAttention(ap)) {
    UNICORN_ASSIGN_OR_RETURN(const uint32_t wg, CoopAttentionWorkgroup(ap));
    UNICORN_ASSIGN_OR_RETURN(const Pipeline* p, Get(CoopShader("attn_prefill_coop"), wg,
                                                    {uint32_t(ap.kv_f16), ap.head_dim}));
    cmd.Dispatch(*p, {q, k, v, spans, out}, push,
                 {CeilDiv(ap.n_tokens, 16 * (wg / 32)), ap.n_heads, 1});
    return absl::OkStatus();
  }
  // The register-tiled kernel where asked for, or for kAuto prefill where
  // it is on; only then its tile (decode never pays for the check).
  using Path = AttnParams::Path;
  if (ap.path == Path::kPrefillTiled ||
      (ap.path == Path::kAuto && tiled_attn_ && !UsesDecodePath(ap))) {
    if (const uint32_t tiled_keys = TiledAttentionKeys(ap); tiled_keys > 0) {
      UNICORN_ASSIGN_OR_RETURN(const Pipeline* p,
                               Get("attn_prefill_tiled", 128,
                                   {uint32_t(ap.kv_f16), CeilDiv(ap.head_dim, 4), tiled_keys}));
      cmd.Dispatch(*p, {q, k, v, spans, out}, push,
                   {CeilDiv(ap.n_tokens, kAttnTiledRows), ap.n_heads, 1});
      return absl::OkStatus();
    }
    if (ap.path == Path::kPrefillTiled) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[vk] attention: the register-tiled prefill kernel for head_dim ", ap.head_dim, " (",
          ap.kv_f16 ? "F16" : "F32", " store) needs more shared memory than ", device_.caps().name,
          " has, or takes one sequence only"));
    }
  }
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
  if (const AttnParams::NewKv& nk = ap.new_kv; nk.k.size > 0) {
    const uint64_t kv_bytes = uint64_t(ap.n_tokens) * ap.n_kv_heads * ap.head_dim * 4;
    if (ap.counters.size > 0) {
      return absl::InvalidArgumentError("[vk] attention: new keys take the split + merge form");
    }
    if (ap.kv_f16 || ap.head_dim % 2 != 0 || nk.k.size < kv_bytes || nk.v.size < kv_bytes ||
        nk.q_norm.size < ap.head_dim * 4u || nk.k_norm.size < ap.head_dim * 4u ||
        nk.inv_freq.size < ap.head_dim / 2 * 4u || nk.pos.size < ap.n_tokens * 4u) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[vk] attention: new keys need an F32 store, an even head_dim (", ap.head_dim,
          ") and k, v, norms, frequencies and positions for ", ap.n_tokens, " tokens"));
    }
  }
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
  UNICORN_ASSIGN_OR_RETURN(const Pipeline* red,
                           Get(quant ? "attn_reduce_q8" : "attn_reduce", 128, {}));
  const Groups groups = {push.n_splits, ap.n_kv_heads, ap.n_tokens};
  if (const AttnParams::NewKv& nk = ap.new_kv; nk.k.size > 0) {  // checked above
    std::vector<uint32_t> nk_spec = spec;
    nk_spec.push_back(std::bit_cast<uint32_t>(nk.eps));
    UNICORN_ASSIGN_OR_RETURN(const Pipeline* dec, Get("attn_decode_new_kv", wg, nk_spec));
    cmd.Dispatch(*dec,
                 {q, k, v, spans, o_part, ml_part, rings, nk.k, nk.v, nk.q_norm, nk.k_norm,
                  nk.inv_freq, nk.pos},
                 push, groups);
  } else {
    UNICORN_ASSIGN_OR_RETURN(const Pipeline* dec, Get("attn_decode", wg, spec));
    cmd.Dispatch(*dec, {q, k, v, spans, o_part, ml_part, rings}, push, groups);
  }
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
