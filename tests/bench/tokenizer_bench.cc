// Encoding speed of the Gemma 3 tokenizer on 1 MB of mixed text (the test
// corpus cycled: prose in many scripts, code, whitespace runs, long words).
//   ninja -C build benchmarks && build/bench/tokenizer_bench
// Needs ../shared/gemma3-tokenizer beside the checkout.
#include <benchmark/benchmark.h>

#include "tests/model/tokenizer_test_util.h"

namespace unicorn {
namespace {

Tokenizer* LoadOrSkip(benchmark::State& state) {
  std::string why;
  const Tokenizer* tok = testing::RealTokenizer(&why);
  if (tok == nullptr) {
    state.SkipWithError(
        ("no tokenizer at " + std::string(testing::kRealTokenizerDir) + ": " + why).c_str());
  }
  return const_cast<Tokenizer*>(tok);
}

const std::string& MixedText() {
  static const std::string text = testing::BenchText(testing::CorpusTexts());
  return text;
}

void BM_Encode1MB(benchmark::State& state) {
  Tokenizer* tok = LoadOrSkip(state);
  if (tok == nullptr) return;
  tok->set_chunking_for_testing(state.range(0) != 0);
  const std::string& text = MixedText();
  size_t n_ids = 0;
  for (auto _ : state) {
    auto ids = tok->Encode(text, false);
    n_ids = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  tok->set_chunking_for_testing(true);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
  state.counters["ids"] = double(n_ids);
}
BENCHMARK(BM_Encode1MB)->ArgName("chunked")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond);

void BM_Decode1MB(benchmark::State& state) {
  Tokenizer* tok = LoadOrSkip(state);
  if (tok == nullptr) return;
  const std::string& text = MixedText();
  const auto ids = tok->Encode(text, false);
  for (auto _ : state) {
    auto out = tok->Decode(ids);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(text.size()));
}
BENCHMARK(BM_Decode1MB)->Unit(benchmark::kMillisecond);

void BM_Load(benchmark::State& state) {
  for (auto _ : state) {
    auto t = Tokenizer::FromFolder(testing::kRealTokenizerDir);
    if (!t.ok()) {
      state.SkipWithError(t.status().ToString().c_str());
      return;
    }
  }
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace unicorn

BENCHMARK_MAIN();
