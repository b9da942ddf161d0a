// Greedy sampling over Gemma 3's 262,144 logits, which the coordinator's
// engine thread does once per sequence of every decode step: the one-pass
// Argmax against the earlier two passes (a running maximum, then a search
// for the first equal element) in the same run; the ratio is the speed-up.
//   ninja -C build benchmarks && build/bench/sampler_bench
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <span>
#include <vector>

#include "model/sampler.h"

namespace unicorn {
namespace {

// The baseline: what model/sampler.cc did before the one-pass version.
int TwoPassArgmax(std::span<const float> v) {
  const size_t n = v.size();
  float m[8];
  for (float& x : m) x = -INFINITY;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) m[j] = v[i + j] > m[j] ? v[i + j] : m[j];
  }
  float mx = -INFINITY;
  for (float x : m) mx = x > mx ? x : mx;
  for (; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
  for (size_t k = 0; k < n; ++k) {
    if (v[k] == mx) return int(k);
  }
  return 0;
}

// Logits like a decode step's: normal noise, the winner in the middle (the
// two-pass search stops there, on average).
const std::vector<float>& Logits() {
  static const std::vector<float> v = [] {
    std::vector<float> l(262144);
    std::mt19937 rng(7);
    std::normal_distribution<float> d(0.0f, 3.0f);
    for (float& x : l) x = d(rng);
    l[l.size() / 2] = 40.0f;
    return l;
  }();
  return v;
}

void BM_ArgmaxOnePass(benchmark::State& state) {
  const auto& v = Logits();
  for (auto _ : state) benchmark::DoNotOptimize(Argmax(v));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(v.size() * 4));
}
BENCHMARK(BM_ArgmaxOnePass);

void BM_ArgmaxTwoPassBaseline(benchmark::State& state) {
  const auto& v = Logits();
  for (auto _ : state) benchmark::DoNotOptimize(TwoPassArgmax(v));
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(v.size() * 4));
}
BENCHMARK(BM_ArgmaxTwoPassBaseline);

}  // namespace
}  // namespace unicorn

BENCHMARK_MAIN();
