// Decode matrix-vector products on the CPU backend, Q4_K against Q4_0 (and
// Q6_K, Q8_0) at Gemma 3 4B's ffn_up shape (10240 x 2560), through
// CpuOps::MatMul (activation quantization included). Counters: GB/s of
// weight bytes and tok/s-eq, the tokens per second a 4B-shaped model would
// decode if all its 3.88e9 text weights (34 layers of projections plus the
// tied 262144 x 2560 lm_head) streamed at this matrix's rate.
// Run: ninja -C build cpu_kquant_bench && build/bench/cpu_kquant_bench
#include <benchmark/benchmark.h>

#include <random>

#include "model/quant.h"
#include "npu_worker/cpu/cpu_ops.h"

namespace unicorn {
namespace {

constexpr int64_t kRows = 10240, kCols = 2560;
constexpr double kModelWeights = 3.88e9;

void BM_MatVec(benchmark::State& state, DType dtype) {
  const int threads = int(state.range(0));
  const int n = int(state.range(1));
  cpu::CpuOps ops(cpu::CpuOptions{threads});
  std::mt19937 rng(1);
  std::normal_distribution<float> dist(0.0f, 0.02f);
  std::vector<float> src(static_cast<size_t>(kCols));
  const size_t rb = RowBytes(dtype, kCols);
  std::vector<uint8_t> bytes(rb * kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    for (float& v : src) v = dist(rng);
    QuantizeRow(dtype, src.data(), bytes.data() + rb * r, kCols);
  }
  TensorInfo t{"w", dtype, {kRows, kCols}, bytes.data(), bytes.size(), "bench"};
  auto w = ops.LoadWeight(t);
  if (!w.ok()) {
    state.SkipWithError(std::string(w.status().message()).c_str());
    return;
  }
  std::vector<float> xv(size_t(n) * kCols);
  for (float& v : xv) v = dist(rng) * 50;
  auto x = ops.Alloc(xv.size());
  ops.Write(*x, 0, xv.data(), xv.size());
  auto y = ops.Alloc(size_t(n) * kRows);
  for (auto _ : state) {
    ops.MatMul(*x, **w, nullptr, n, *y);
    benchmark::ClobberMemory();
  }
  const double it = double(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(it * double(bytes.size()) / 1e9, benchmark::Counter::kIsRate);
  state.counters["tok/s-eq"] = benchmark::Counter(
      it * double(n) * double(kRows * kCols) / kModelWeights, benchmark::Counter::kIsRate);
  state.SetLabel(ops.Describe());
}

// Args: threads, tokens (1 = decode; 64 = a prefill chunk).
BENCHMARK_CAPTURE(BM_MatVec, q4_0, DType::kQ4_0)
    ->Args({1, 1})
    ->Args({2, 1})
    ->Args({2, 64})
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_MatVec, q4_k, DType::kQ4_K)
    ->Args({1, 1})
    ->Args({2, 1})
    ->Args({2, 64})
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_MatVec, q6_k, DType::kQ6_K)->Args({1, 1})->Args({2, 1})->UseRealTime();
BENCHMARK_CAPTURE(BM_MatVec, q8_0, DType::kQ8_0)->Args({1, 1})->Args({2, 1})->UseRealTime();

}  // namespace
}  // namespace unicorn

BENCHMARK_MAIN();
