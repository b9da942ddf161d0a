// unicorn-vk-kernel-bench: GPU time of the hot kernels at Gemma 3 4B shapes,
// from timestamp queries, for tuning (not a test):
//   - matvec (decode) of Q4_0 / Q8_0 / Q4_K / Q6_K matrices per workgroup
//     shape: GB/s;
//   - 16 tokens (a batched decode step): F32 matvec shapes, the batch
//     kernel, and int8 activations (matvec_int8.comp): TFLOP/s;
//   - the tiled product (prefill, 512 tokens) per tile size: TFLOP/s;
//   - the tensor-core product (16 and 512 tokens) per tile, where the
//     device has VK_NV_cooperative_matrix: TFLOP/s;
//   - decode attention at a few context lengths;
//   - the cost of a dependent dispatch (a barrier and a tiny kernel).
//   unicorn-vk-kernel-bench [--device SEL] [--only SECTION,...]
// (sections: matvec, f32x16, int8, batch, tiled, coop, attention, dependent)
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gpu_worker/kernels.h"
#include "model/quant.h"

namespace unicorn::vk {
namespace {

Buffer RandomBytes(Device& d, size_t bytes, DType t) {
  std::vector<uint8_t> v(bytes);
  std::mt19937 rng(1);
  for (auto& b : v) b = uint8_t(rng());
  // Keep quant scales and F16/F32 values finite and small.
  if (t == DType::kQ4_0 || t == DType::kQ8_0) {
    const size_t bb = t == DType::kQ4_0 ? 18 : 34;
    for (size_t i = 0; i + bb <= bytes; i += bb) {
      uint16_t s = F32ToF16(0.01f);
      std::memcpy(&v[i], &s, 2);
    }
  } else if (t >= DType::kQ2_K && t <= DType::kQ6_K) {
    // Random codes and sub-block scales; the f16 super-block scales small.
    const size_t bb = size_t(Traits(t).block_bytes);
    const size_t off = t == DType::kQ2_K   ? 80
                       : t == DType::kQ3_K ? 108
                       : t == DType::kQ6_K ? 208
                                           : 0;
    const bool two = t == DType::kQ2_K || t == DType::kQ4_K || t == DType::kQ5_K;
    const uint16_t s = F32ToF16(0.001f);
    for (size_t i = 0; i + bb <= bytes; i += bb) {
      std::memcpy(&v[i + off], &s, 2);
      if (two) std::memcpy(&v[i + off + 2], &s, 2);
    }
  } else {
    std::vector<float> f(bytes / 4);
    for (auto& x : f) x = float(rng() % 1000) * 1e-4f;
    std::memcpy(v.data(), f.data(), f.size() * 4);
  }
  auto b = d.allocator().Create(bytes, MemoryUse::kDevice, "bench");
  UNICORN_CHECK(b.ok());
  UNICORN_CHECK(d.allocator().Upload(*b, 0, v.data(), bytes).ok());
  return std::move(*b);
}

// Median GPU ms of `fn` over `reps` recordings of `inner` back-to-back calls
// (each followed by a barrier), per call.
template <class Fn>
double TimeMs(Device& d, int inner, Fn&& fn, int reps = 5, bool compute_barrier = false) {
  std::vector<double> t;
  CommandBuffer cmd(d, 4096);
  for (int r = 0; r < reps; ++r) {
    cmd.Begin();
    for (int i = 0; i < inner; ++i) {
      fn(cmd);
      if (compute_barrier) {
        cmd.ComputeBarrier();
      } else {
        cmd.Barrier();
      }
    }
    UNICORN_CHECK(cmd.End().ok());
    UNICORN_CHECK(cmd.SubmitAndWait().ok());
    auto prof = cmd.Profile();
    UNICORN_CHECK(prof.ok());
    double sum = 0;
    for (auto& p : *prof) sum += p.ms;
    t.push_back(sum / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// The same calls' wall time on the GPU, per call: from a timestamp before
// the first to one after the last, so launch gaps and barriers count too.
template <class Fn>
double WallMs(Device& d, int inner, Fn&& fn, int reps = 5) {
  std::vector<double> t;
  CommandBuffer cmd(d);
  UNICORN_CHECK(cmd.ReserveMarks(2));
  for (int r = 0; r < reps; ++r) {
    cmd.Begin();
    cmd.Mark();
    for (int i = 0; i < inner; ++i) {
      fn(cmd);
      cmd.Barrier();
    }
    cmd.Mark();
    UNICORN_CHECK(cmd.End().ok());
    UNICORN_CHECK(cmd.SubmitAndWait().ok());
    auto ticks = cmd.MarkTicks();
    UNICORN_CHECK(ticks.ok() && ticks->size() == 2);
    t.push_back(double((*ticks)[1] - (*ticks)[0]) * d.caps().timestamp_period_ns / 1e6 / inner);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Decode attention over 128..4096 keys of one token, by split count.
void BenchAttention(Device& d, Kernels& k, const Buffer& x, const Buffer& y) {
  // Splits: at most that many, of at least UNICORN_ATTN_MIN_CHUNK keys.
  for (bool f16 : {true, false}) {
    std::printf(
        "\ndecode attention, 8 heads / 4 kv heads of 256, %s store: ms of kernel "
        "time (wall time from the first call's start to the last's end)\n",
        f16 ? "F16 (the models')" : "F32");
    for (uint32_t ctx : {128u, 640u, 1024u, 4096u}) {
      const DType st = f16 ? DType::kF16 : DType::kF32;
      Buffer ks = RandomBytes(d, size_t(ctx) * 4 * 256 * (f16 ? 2 : 4), st);
      Buffer vs = RandomBytes(d, size_t(ctx) * 4 * 256 * (f16 ? 2 : 4), st);
      std::vector<int32_t> span = {0, int32_t(ctx - 1)};
      auto sb = d.allocator().Create(8, MemoryUse::kDevice, "span");
      UNICORN_CHECK(sb.ok() && d.allocator().Upload(*sb, 0, span.data(), 8).ok());
      for (uint32_t wg : {128u, 256u})
        for (uint32_t splits : {8u, 32u, 64u}) {
          AttnParams ap;
          ap.n_tokens = 1;
          ap.n_heads = 8;
          ap.n_kv_heads = 4;
          ap.head_dim = 256;
          ap.cap = ctx;
          ap.scale = 0.0625f;
          ap.n_splits = splits;
          ap.kv_f16 = f16;
          ap.decode_workgroup = wg;
          ap.path = AttnParams::Path::kDecode;
          Buffer scratch = RandomBytes(d, Kernels::AttnScratchBytes(ap) + 16, DType::kF32);
          auto call = [&](CommandBuffer& c) {
            UNICORN_CHECK(
                k.Attention(c, x.All(), ks.All(), vs.All(), sb->All(), y.All(), scratch.All(), ap)
                    .ok());
          };
          const double ms = TimeMs(d, 10, call), wall = WallMs(d, 10, call);
          std::printf("  ctx %5u splits %2u wg %3u: %.4f ms (%.4f)\n", ctx, splits, wg, ms, wall);
        }
    }
  }
}

// Prefill attention over one 512-token causal prompt (F16 store), on each
// prefill kernel that runs here: 4B's heads (8 / 4 kv of 256) and 27B's
// (32 / 16 kv of 128).
void BenchPrefillAttention(Device& d, Kernels& k, const Buffer& x, const Buffer& y) {
  using Path = AttnParams::Path;
  constexpr uint32_t n = 512;
  std::printf("\nprefill attention, %u tokens, causal, F16 store: ms (TFLOP/s)\n", n);
  std::vector<int32_t> span;
  for (uint32_t t = 0; t < n; ++t) span.insert(span.end(), {0, int32_t(t)});
  auto sb = d.allocator().Create(span.size() * 4, MemoryUse::kDevice, "spans");
  UNICORN_CHECK(sb.ok() && d.allocator().Upload(*sb, 0, span.data(), span.size() * 4).ok());
  for (auto [heads, kv, dim] : {std::tuple{8u, 4u, 256u}, std::tuple{32u, 16u, 128u}}) {
    Buffer ks = RandomBytes(d, size_t(n) * kv * dim * 2, DType::kF16);
    Buffer vs = RandomBytes(d, size_t(n) * kv * dim * 2, DType::kF16);
    std::printf("%2u heads / %2u kv of %3u:", heads, kv, dim);
    for (Path path : {Path::kPrefill, Path::kPrefillTiled, Path::kPrefillCoop}) {
      AttnParams ap;
      ap.n_tokens = n;
      ap.n_heads = heads;
      ap.n_kv_heads = kv;
      ap.head_dim = dim;
      ap.cap = n;
      ap.scale = 1.0f / std::sqrt(float(dim));
      ap.kv_f16 = true;
      ap.path = path;
      const char* name = path == Path::kPrefill        ? "8-row"
                         : path == Path::kPrefillTiled ? "tiled"
                                                       : "coop";
      CommandBuffer probe(d);
      probe.Begin();
      if (!k.Attention(probe, x.All(), ks.All(), vs.All(), sb->All(), y.All(), y.All(), ap).ok()) {
        std::printf("  %s -", name);
        continue;
      }
      const double ms = TimeMs(d, 5, [&](CommandBuffer& c) {
        UNICORN_CHECK(
            k.Attention(c, x.All(), ks.All(), vs.All(), sb->All(), y.All(), y.All(), ap).ok());
      });
      // Q K^T and P V over the causal half: n^2 / 2 scores of D multiply-adds each, twice.
      const double flop = 2.0 * n * n * dim * heads;
      std::printf("  %s %.3f (%.1f)", name, ms, flop / (ms * 1e-3) * 1e-12);
    }
    std::printf("\n");
  }
}

int Main(int argc, char** argv) {
  std::string sel, only;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--device") == 0) sel = argv[i + 1];
    if (std::strcmp(argv[i], "--only") == 0) only = argv[i + 1];
  }
  // --only a,b: the named sections only (a device run's time is scarce).
  const std::vector<std::string> kSections = {"matvec", "f32x16", "int8",      "batch",
                                              "tiled",  "coop",   "attention", "dependent"};
  const std::vector<std::string> picked = absl::StrSplit(only, ',', absl::SkipEmpty());
  for (const std::string& sec : picked) {
    if (std::find(kSections.begin(), kSections.end(), sec) == kSections.end()) {
      std::fprintf(stderr, "--only %s: sections are %s\n", sec.c_str(),
                   absl::StrJoin(kSections, ", ").c_str());
      return 2;
    }
  }
  auto want = [&](const char* sec) {
    return picked.empty() || std::find(picked.begin(), picked.end(), sec) != picked.end();
  };
  auto dev = Device::Open(sel);
  if (!dev.ok()) {
    std::fprintf(stderr, "%s\n", std::string(dev.status().message()).c_str());
    return 1;
  }
  Device& d = **dev;
  auto kr = Kernels::Create(d);
  UNICORN_CHECK(kr.ok());
  Kernels& k = **kr;
  std::printf("device: %s\n", d.Describe().c_str());
  if (!d.caps().timestamps) {
    std::printf("no timestamps on this queue\n");
    return 1;
  }
  Buffer x = RandomBytes(d, 512 * 10240 * 4, DType::kF32);
  Buffer y = RandomBytes(d, 512 * 262144 * 4 / 64, DType::kF32);
  Buffer ylogits = RandomBytes(d, 262144 * 4, DType::kF32);

  struct Mat {
    const char* name;
    DType t;
    uint32_t rows, cols;
  };
  const Mat mats[] = {{"attn_q 2048x2560 q4_0", DType::kQ4_0, 2048, 2560},
                      {"ffn_up 10240x2560 q4_0", DType::kQ4_0, 10240, 2560},
                      {"ffn_down 2560x10240 q4_0", DType::kQ4_0, 2560, 10240},
                      {"gate+up geglu 2x10240x2560", DType::kQ4_0, 20480, 2560},
                      {"ffn_up 10240x2560 q4_k", DType::kQ4_K, 10240, 2560},
                      {"ffn_down 2560x10240 q4_k", DType::kQ4_K, 2560, 10240},
                      {"gate+up geglu q4_k", DType::kQ4_K, 20480, 2560},
                      {"ffn_down 2560x10240 q6_k", DType::kQ6_K, 2560, 10240},
                      {"lm_head 262144x2560 q6_k", DType::kQ6_K, 262144, 2560},
                      {"lm_head 262144x2560 q8_0", DType::kQ8_0, 262144, 2560}};
  if (want("matvec")) {
    std::printf("\nmatvec (1 token): GB/s of weights (ms per call)\n");
    std::printf("%-30s", "matrix \\ rows x wg");
    const uint32_t shapes[][2] = {{1, 64},  {2, 64},  {4, 64}, {1, 128}, {2, 128},
                                  {4, 128}, {2, 256}, {1, 32}, {2, 32}};
    for (auto& s : shapes) std::printf(" %11s", absl::StrFormat("%ux%u", s[0], s[1]).c_str());
    std::printf("\n");
    for (const Mat& m : mats) {
      const size_t bytes = size_t(m.rows) * RowBytes(m.t, m.cols);
      Buffer w = RandomBytes(d, bytes, m.t);
      const bool geglu = std::strstr(m.name, "geglu") != nullptr;
      std::printf("%-30s", m.name);
      for (auto& s : shapes) {
        MatMulOptions opt;
        opt.path = MatMulOptions::Path::kVector;
        opt.matvec_rows = s[0];
        opt.matvec_wg = s[1];
        if (geglu) opt.flags = UNICORN_MM_GEGLU;
        const Buffer& out = m.rows > 20480 ? ylogits : y;
        double ms = TimeMs(d, 20, [&](CommandBuffer& c) {
          UNICORN_CHECK(
              k.MatMul(c, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), 1, opt).ok());
        });
        std::printf(" %5.0f(%.3f)", double(bytes) / (ms * 1e-3) * 1e-9, ms);
      }
      std::printf("\n");
    }
  }

  // A step of 16 decoding sequences: the matvec's shapes against the batch
  // kernel's k slices, without and with prefetching.
  struct FewShape {
    uint32_t rows, wg;  // matvec (rows > 0)
    uint32_t k_slice;   // batch kernel (rows == 0)
    bool prefetch;
  };
  const FewShape fshapes[] = {{2, 32, 0, false},  {2, 64, 0, false},  {4, 32, 0, false},
                              {4, 64, 0, false},  {8, 32, 0, false},  {8, 64, 0, false},
                              {0, 0, 128, false}, {0, 0, 256, false}, {0, 0, 128, true},
                              {0, 0, 256, true}};
  auto few_options = [&](const FewShape& s, bool geglu) {
    MatMulOptions opt;
    opt.path = s.rows ? MatMulOptions::Path::kVector : MatMulOptions::Path::kBatch;
    opt.matvec_rows = s.rows;
    opt.matvec_wg = s.wg;
    opt.batch_k = s.k_slice;
    opt.batch_prefetch = s.prefetch;
    if (geglu) opt.flags = UNICORN_MM_GEGLU;
    return opt;
  };
  auto fits = [&](const FewShape& s, bool geglu) {
    const uint32_t shared = s.rows ? (geglu ? 2 : 1) * s.rows * 8 * s.wg * 4  // red[], 8 tokens
                                   : Kernels::BatchSharedBytes(16, s.k_slice);
    return shared <= d.caps().max_shared_memory;
  };
  if (want("f32x16")) {
    std::printf("\n16 tokens (a batch of decoding sequences): TFLOP/s (ms per call)\n");
    std::printf("%-30s", "matrix \\ rows x wg");
    for (const FewShape& s : fshapes) {
      std::printf(" %12s",
                  s.rows ? absl::StrFormat("%ux%u", s.rows, s.wg).c_str()
                         : absl::StrFormat("batch/%u%s", s.k_slice, s.prefetch ? "p" : "").c_str());
    }
    std::printf("\n");
    for (const Mat& m : mats) {
      const size_t bytes = size_t(m.rows) * RowBytes(m.t, m.cols);
      Buffer w = RandomBytes(d, bytes, m.t);
      const bool geglu = std::strstr(m.name, "geglu") != nullptr;
      Buffer out = RandomBytes(d, size_t(16) * m.rows * 4, DType::kF32);
      std::printf("%-30s", m.name);
      for (const FewShape& s : fshapes) {
        if (!fits(s, geglu)) {
          std::printf(" %12s", "-");
          continue;
        }
        const MatMulOptions opt = few_options(s, geglu);
        double ms = TimeMs(d, 10, [&](CommandBuffer& c) {
          UNICORN_CHECK(
              k.MatMul(c, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), 16, opt).ok());
        });
        std::printf(" %5.1f(%.3f)", 2.0 * m.rows * m.cols * 16 / (ms * 1e-3) * 1e-12, ms);
      }
      std::printf("\n");
    }
  }

  // A matrix's random weights and a 16-token output buffer.
  struct Prepared {
    Buffer w, out;
    bool geglu;
  };
  auto prepare = [&](const Mat& m) {
    return Prepared{RandomBytes(d, size_t(m.rows) * RowBytes(m.t, m.cols), m.t),
                    RandomBytes(d, size_t(16) * m.rows * 4, DType::kF32),
                    std::strstr(m.name, "geglu") != nullptr};
  };

  // Int8 activations (matvec_int8.comp) where the device has int8 dot
  // products: rows x invocations x tokens per workgroup, at 16 tokens and
  // at 1, "w" for the weights-in-registers loop order (W_REGS), "Ln" for the
  // lanes over rows on n row lanes (matmul_int8_rows.comp), "cK" for the
  // tensor cores (matmul_int8_coop.comp: rows = fragments of 16 rows, k
  // steps of K blocks; "-" without them); "quant" is quantize_q8.comp's own
  // time for the 16 rows of x.
  k.set_int8(true);
  if (k.int8() && want("int8")) {
    // rows, invocations, tokens, W_REGS, row lanes, tensor-core k step
    const uint32_t i8[][6] = {
        {1, 32, 16, 0, 0, 0},   {2, 32, 16, 0, 0, 0},   {4, 32, 16, 0, 0, 0},
        {2, 32, 8, 0, 0, 0},    {4, 32, 8, 0, 0, 0},    {2, 32, 1, 0, 0, 0},
        {4, 32, 16, 1, 0, 0},   {4, 64, 16, 1, 0, 0},   {1, 64, 16, 0, 8, 0},
        {1, 128, 16, 0, 8, 0},  {1, 128, 16, 0, 16, 0}, {2, 128, 16, 0, 16, 0},
        {1, 64, 16, 0, 32, 0},  {1, 128, 16, 0, 32, 0}, {1, 256, 16, 0, 32, 0},
        {2, 128, 16, 0, 32, 0}, {1, 64, 16, 0, 0, 1},   {1, 128, 16, 0, 0, 1},
        {1, 256, 16, 0, 0, 1},  {2, 128, 16, 0, 0, 1},  {1, 128, 16, 0, 0, 2},
        {2, 128, 16, 0, 0, 2},  {2, 256, 16, 0, 0, 1},  {1, 256, 16, 0, 0, 2},
        {4, 128, 16, 0, 0, 1},  {4, 256, 16, 0, 0, 1}};
    std::printf("\nint8 activations (%s in hardware): TFLOP/s (ms per call)\n",
                d.caps().int8_dot_accelerated ? "dot products" : "NOT");
    std::printf("%-30s %12s", "matrix \\ rows x wg x tokens", "quant");
    for (auto& s : i8) {
      std::printf(" %12s",
                  absl::StrFormat("%ux%ux%u%s%s%s%s", s[0], s[1], s[2], s[3] ? "w" : "",
                                  s[4] ? absl::StrCat("L", s[4]) : "",
                                  s[5] ? absl::StrCat("c", s[5]) : "", s[2] == 1 ? "(n1)" : "")
                      .c_str());
    }
    std::printf("\n");
    Buffer xq = RandomBytes(d, Kernels::Q8ActivationBytes(16, 10240), DType::kF32);
    for (const Mat& m : mats) {
      if (m.t != DType::kQ4_0 && m.t != DType::kQ8_0) continue;
      const auto [w, out, geglu] = prepare(m);
      std::printf("%-30s", m.name);
      double qms = TimeMs(d, 10, [&](CommandBuffer& c) {
        UNICORN_CHECK(k.QuantizeQ8(c, x.All(), xq.All(), 16, m.cols).ok());
      });
      std::printf(" %12.4f", qms);
      for (auto& s : i8) {
        const uint32_t n = s[2] == 1 ? 1 : 16;
        MatMulOptions opt;
        opt.xq = xq.All();
        opt.matvec_rows = s[0];
        opt.matvec_wg = s[1];
        opt.int8_cols = s[2];
        opt.int8_order = s[5]   ? MatMulOptions::Int8Order::kTensorCores
                         : s[4] ? MatMulOptions::Int8Order::kRowLanes
                         : s[3] ? MatMulOptions::Int8Order::kWeights
                                : MatMulOptions::Int8Order::kActivations;
        opt.int8_row_lanes = s[4];
        opt.int8_coop_blocks = s[5];
        if (geglu) opt.flags = UNICORN_MM_GEGLU;
        {  // a shape this device cannot run (shared memory; k for the row lanes)
          CommandBuffer probe(d);
          probe.Begin();
          if (!k.MatMul(probe, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), n, opt).ok()) {
            std::printf(" %12s", "-");
            continue;
          }
        }
        double ms = TimeMs(d, 10, [&](CommandBuffer& c) {
          UNICORN_CHECK(
              k.MatMul(c, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), n, opt).ok());
        });
        std::printf(" %5.1f(%.3f)", 2.0 * m.rows * m.cols * n / (ms * 1e-3) * 1e-12, ms);
      }
      std::printf("\n");
    }
  }

  // Where the batch kernel's time goes: the same product with parts left
  // out (1 weight loads, 2 x loads, 4 the FMAs, 8 the cross-group sums), at
  // 16 tokens; then all of it at 8 tokens, and with prefetching.
  struct Variant {
    uint32_t n;
    bool prefetch;
    uint32_t ablation;
  };
  std::vector<Variant> variants;
  for (uint32_t abl : {0u, 1u, 2u, 3u, 4u, 8u, 12u, 15u}) variants.push_back({16, false, abl});
  for (Variant v : {Variant{8, false, 0}, Variant{16, true, 0}, Variant{8, true, 0}}) {
    variants.push_back(v);
  }
  if (want("batch")) {
    std::printf("\nbatch kernel, largest k slice, parts left out: ms (n tokens%s/parts left out)\n",
                ", p = prefetching");
    for (const Mat& m : mats) {
      if (m.t != DType::kQ4_0 && m.t != DType::kQ8_0) continue;
      const auto [w, out, geglu] = prepare(m);
      std::printf("%-30s", m.name);
      for (const Variant& v : variants) {
        MatMulOptions opt = few_options({0, 0, 0, v.prefetch}, geglu);
        opt.batch_ablation = v.ablation;
        double ms = TimeMs(d, 10, [&](CommandBuffer& c) {
          UNICORN_CHECK(
              k.MatMul(c, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), v.n, opt).ok());
        });
        std::printf(" n%u%s/%u %.4f", v.n, v.prefetch ? "p" : "", v.ablation, ms);
      }
      std::printf("\n");
    }
  }

  // The tensor-core kernel (matmul_coop.comp) where the device has it: a
  // decode step of 16 rows and a 512-token prefill chunk, per tile
  // (rows x tokens / subgroups along m / k step / invocations, "p": prefetching,
  // "x16": x as one F16 value instead of two).
  if (k.coopmat() && want("coop")) {
    struct CoopCase {
      uint32_t bm, bn, wm, bk, wg;
      bool prefetch = false, x_f16 = false;
    };
    std::vector<CoopCase> few, many;
    for (bool pf : {false, true}) {
      for (const CoopCase& c : {CoopCase{32, 16, 2, 128, 64},
                                {64, 16, 4, 128, 128},
                                {64, 16, 4, 64, 128},
                                {128, 16, 4, 64, 128},
                                {128, 16, 8, 64, 256},
                                {128, 16, 8, 128, 256}}) {
        few.push_back({c.bm, c.bn, c.wm, c.bk, c.wg, pf});
      }
      for (const CoopCase& c : {CoopCase{128, 128, 4, 32, 256},
                                {128, 64, 4, 32, 256},
                                {64, 128, 2, 32, 256},
                                {64, 64, 2, 64, 128},
                                {128, 128, 8, 32, 256}}) {
        many.push_back({c.bm, c.bn, c.wm, c.bk, c.wg, pf});
      }
      many.push_back({128, 128, 4, 32, 256, pf, true});
    }
    for (uint32_t n : {16u, 512u}) {
      std::printf("\ntensor cores, %u tokens: TFLOP/s (ms per call)\n", n);
      for (const Mat& m : mats) {
        if (n > 16 && m.rows > 20480) continue;
        const bool geglu = std::strstr(m.name, "geglu") != nullptr;
        const size_t bytes = size_t(m.rows) * RowBytes(m.t, m.cols);
        Buffer w = RandomBytes(d, bytes, m.t);
        Buffer out = RandomBytes(d, size_t(n) * m.rows * 4, DType::kF32);
        std::printf("%-30s", m.name);
        for (const CoopCase& c :
             n <= 16 ? std::span<const CoopCase>(few) : std::span<const CoopCase>(many)) {
          MatMulOptions opt;
          opt.path = MatMulOptions::Path::kCoop;
          opt.coop_shape = Kernels::CoopShape(c.bm, c.bn, c.wm, c.bk, c.prefetch);
          opt.coop_wg = c.wg;
          opt.coop_x_f16 = c.x_f16;
          if (geglu) opt.flags = UNICORN_MM_GEGLU;
          CommandBuffer probe(d);
          probe.Begin();
          const std::string label =
              absl::StrFormat("%ux%u/%u/%u/%u%s%s", c.bm, c.bn, c.wm, c.bk, c.wg,
                              c.prefetch ? "p" : "", c.x_f16 ? "x16" : "");
          if (!k.MatMul(probe, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), n, opt).ok()) {
            std::printf("  %s -", label.c_str());
            continue;
          }
          double ms = TimeMs(d, n <= 16 ? 10 : 3, [&](CommandBuffer& cb) {
            UNICORN_CHECK(
                k.MatMul(cb, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), n, opt).ok());
          });
          std::printf("  %s %5.1f(%.3f)", label.c_str(),
                      2.0 * m.rows * m.cols * n / (ms * 1e-3) * 1e-12, ms);
        }
        std::printf("\n");
      }
    }
  }

  if (want("tiled")) {
    std::printf("\ntiled product, 512 tokens: TFLOP/s (ms)\n");
    for (const Mat& m : mats) {
      if (m.rows > 20000) continue;
      const size_t bytes = size_t(m.rows) * RowBytes(m.t, m.cols);
      Buffer w = RandomBytes(d, bytes, m.t);
      Buffer out = RandomBytes(d, size_t(512) * m.rows * 4, DType::kF32);
      std::printf("%-30s", m.name);
      for (uint32_t tm : {64u, 128u}) {
        for (uint32_t tn : {64u, 128u}) {
          if (32u * (tm + tn + 8) * 4 > d.caps().max_shared_memory) continue;
          MatMulOptions opt;
          opt.path = MatMulOptions::Path::kTiled;
          opt.tile_m = tm;
          opt.tile_n = tn;
          double ms = TimeMs(
              d, 3,
              [&](CommandBuffer& c) {
                UNICORN_CHECK(
                    k.MatMul(c, {w.All(), m.t, m.rows, m.cols}, x.All(), out.All(), 512, opt).ok());
              },
              3);
          std::printf("  %ux%u %5.1f(%.3f)", tm, tn,
                      2.0 * m.rows * m.cols * 512 / (ms * 1e-3) * 1e-12, ms);
        }
      }
      std::printf("\n");
    }
  }

  if (want("attention")) {
    BenchAttention(d, k, x, y);
    BenchPrefillAttention(d, k, x, y);
  }

  if (want("dependent")) {
    std::printf("\ndependent tiny dispatches (barrier + 1-workgroup kernel): us each\n");
    for (bool compute_only : {false, true, false, true}) {
      double ms = TimeMs(
          d, 200,
          [&](CommandBuffer& c) {
            UNICORN_CHECK(k.Add(c, y.Sub(0, 1024), y.Sub(0, 1024), y.Sub(0, 1024), 256).ok());
          },
          5, compute_only);
      std::printf("  %.2f us (%s barrier)\n", ms * 1e3,
                  compute_only ? "compute-only" : "compute + transfer");
    }
  }
  return 0;
}

}  // namespace
}  // namespace unicorn::vk

int main(int argc, char** argv) { return unicorn::vk::Main(argc, argv); }
