// The Gemma 3 forward pass (model/gemma3.cc on the CPU backend) against the
// naive reference of gemma3_reference.cc on small random models: one-shot
// prefill, chunked prefill with sliding-window rings that wrap, decode, image
// runs with bidirectional attention, every weight format, and bad input.
#include "model/gemma3.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <new>
#include <numeric>

#include "npu_worker/cpu/cpu_ops.h"
#include "tests/model/gemma3_fixture.h"

// Counts heap allocations while g_count_allocs is set (DecodeDoesNotAllocate).
static std::atomic<bool> g_count_allocs{false};
static std::atomic<long> g_allocs{0};
void* operator new(size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs++;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"  // our new is malloc
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace unicorn {
namespace {

using testing::MakeRandomGemma3;
using testing::MaxAbsDiff;
using testing::RandomVector;
using testing::ReferenceLogits;
using testing::Std;
using testing::TensorStore;
using testing::TinyConfig;
using testing::Tokens;

// One CPU backend for every test's model (weights keep no state in it).
cpu::CpuOps& TestOps() {
  static cpu::CpuOps* ops = new cpu::CpuOps(cpu::CpuOptions{2});
  return *ops;
}

struct Fixture : testing::Gemma3Fixture {
  Fixture(const Gemma3Config& c, DType matrices, DType norms, uint32_t seed = 1)
      : Gemma3Fixture(c, matrices, norms, TestOps(), seed) {}
};

// f32 activations against a double reference: errors are ~1e-6 of the logit
// scale; 1e-4 leaves room for summation order and still catches any wrong
// mask, position or norm (those move logits by O(std)).
constexpr double kFloatTol = 1e-4;

TEST(Gemma3Test, OneShotPrefillMatchesReference) {
  Fixture f(TinyConfig(), DType::kF32, DType::kF32);
  auto s = f.Session(64);
  const std::vector<int> tokens = Tokens(23, f.config.vocab_size, 1, f.config.image_token_id);
  std::vector<float> logits;
  ASSERT_TRUE(s->Prefill(tokens, {}, LogitsMode::kAll, &logits).ok());
  const std::vector<float> ref = ReferenceLogits(f.config, f.weights, tokens, {});
  ASSERT_EQ(logits.size(), ref.size());
  EXPECT_LT(MaxAbsDiff(logits.data(), ref.data(), ref.size()), kFloatTol * Std(ref));
  EXPECT_EQ(s->position(), 23);
}

TEST(Gemma3Test, ChunkedPrefillAndDecodeMatchReference) {
  Fixture f(TinyConfig(), DType::kF32, DType::kF32);
  // Chunks of 3 with a window of 5: sliding rings hold 8 slots and wrap
  // several times over 30 positions.
  auto s = f.Session(3);
  const int V = f.config.vocab_size;
  const std::vector<int> tokens = Tokens(30, V, 2, f.config.image_token_id);
  const std::vector<float> ref = ReferenceLogits(f.config, f.weights, tokens, {});
  const double tol = kFloatTol * Std(ref);
  std::vector<float> logits;
  ASSERT_TRUE(s->Prefill(std::span(tokens).first(11), {}, LogitsMode::kAll, &logits).ok());
  ASSERT_EQ(logits.size(), size_t(11 * V));
  EXPECT_LT(MaxAbsDiff(logits.data(), ref.data(), logits.size()), tol);
  ASSERT_TRUE(s->Prefill(std::span(tokens).subspan(11, 7), {}, LogitsMode::kLast, &logits).ok());
  ASSERT_EQ(logits.size(), size_t(V));
  EXPECT_LT(MaxAbsDiff(logits.data(), &ref[size_t(17 * V)], size_t(V)), tol);
  for (int i = 18; i < 30; ++i) {
    ASSERT_TRUE(s->Decode(tokens[size_t(i)], &logits).ok());
    EXPECT_LT(MaxAbsDiff(logits.data(), &ref[size_t(i * V)], size_t(V)), tol) << "position " << i;
  }
}

TEST(Gemma3Test, DecodeDoesNotAllocate) {
  Fixture f(TinyConfig(), DType::kQ4_0, DType::kF32);
  auto s = f.Session(8, 64);
  std::vector<float> logits;
  ASSERT_TRUE(s->Prefill(std::vector<int>{2, 5, 7}, {}, LogitsMode::kLast, &logits).ok());
  ASSERT_TRUE(s->Decode(9, &logits).ok());  // warm-up: scratch reaches its size
  g_allocs = 0;
  g_count_allocs = true;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(s->Decode(10 + i, &logits).ok());
  g_count_allocs = false;
  EXPECT_EQ(g_allocs.load(), 0);
}

TEST(Gemma3Test, ImageRunsAttendBidirectionally) {
  Gemma3Config c = TinyConfig();
  c.sliding_window = 3;  // shorter than an image run: the run widens the window
  Fixture f(c, DType::kF32, DType::kF32);
  const int img = c.image_token_id;
  std::vector<int> tokens = Tokens(16, c.vocab_size, 3, img);
  for (int i : {3, 4, 5, 6, 10, 11, 12, 13}) tokens[size_t(i)] = img;
  const std::vector<float> embeds = RandomVector(8 * size_t(c.hidden_size), 1.0f, 4);
  const std::vector<float> ref = ReferenceLogits(c, f.weights, tokens, embeds);
  // Chunks of 6 would split both runs; the session moves the chunk ends.
  for (int chunk : {64, 6, 4}) {
    auto s = f.Session(chunk);
    std::vector<float> logits;
    Status st = s->Prefill(tokens, embeds, LogitsMode::kAll, &logits);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_LT(MaxAbsDiff(logits.data(), ref.data(), ref.size()), kFloatTol * Std(ref))
        << "chunk " << chunk;
  }
}

TEST(Gemma3Test, SoftcapsApply) {
  Gemma3Config c = TinyConfig();
  c.final_logit_softcapping = 2.0;
  c.attn_logit_softcapping = 1.5;
  Fixture f(c, DType::kF32, DType::kF32);
  auto s = f.Session(8);
  const std::vector<int> tokens = Tokens(12, c.vocab_size, 5, c.image_token_id);
  std::vector<float> logits;
  ASSERT_TRUE(s->Prefill(tokens, {}, LogitsMode::kAll, &logits).ok());
  const std::vector<float> ref = ReferenceLogits(c, f.weights, tokens, {});
  EXPECT_LT(MaxAbsDiff(logits.data(), ref.data(), ref.size()), kFloatTol * Std(ref));
  for (float v : logits) ASSERT_LE(std::fabs(v), 2.0f);
}

struct FormatCase {
  DType matrices, norms;
  double tol;   // max |logit error| / std(reference logits)
  double top1;  // minimum top-1 agreement
};

void PrintTo(const FormatCase& c, std::ostream* os) { *os << Traits(c.matrices).name; }

class Gemma3FormatTest : public ::testing::TestWithParam<FormatCase> {};

TEST_P(Gemma3FormatTest, MatchesReferenceOnTheSameWeights) {
  const FormatCase fc = GetParam();
  Fixture f(TinyConfig(), fc.matrices, fc.norms, 7);
  auto s = f.Session(16);
  const std::vector<int> tokens = Tokens(40, f.config.vocab_size, 6, f.config.image_token_id);
  std::vector<float> logits;
  ASSERT_TRUE(s->Prefill(tokens, {}, LogitsMode::kAll, &logits).ok());
  // The reference runs in double on the dequantized weights.
  const std::vector<float> ref = ReferenceLogits(f.config, f.weights, tokens, {});
  const double err = MaxAbsDiff(logits.data(), ref.data(), ref.size()) / Std(ref);
  double mean = 0;
  for (size_t i = 0; i < ref.size(); ++i) mean += std::fabs(logits[i] - ref[i]);
  mean /= double(ref.size()) * Std(ref);
  EXPECT_LT(err, fc.tol);
  EXPECT_LT(mean, fc.tol / 5) << "max " << err;
  const int V = f.config.vocab_size;
  int agree = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const float* a = logits.data() + i * V;
    const float* b = ref.data() + i * V;
    agree += std::max_element(a, a + V) - a == std::max_element(b, b + V) - b;
  }
  EXPECT_GE(double(agree) / double(tokens.size()), fc.top1) << "relative error " << err;
}

INSTANTIATE_TEST_SUITE_P(Formats, Gemma3FormatTest,
                         // BF16 / F16 weights are exact in f32: same tolerance as F32. Q8_0 / Q4_0
                         // quantize the activations to 8 bits per block of 32 (kernels.h), an RMS
                         // error of ~0.5% per element that accumulates over the ~7 products of each
                         // of 4 layers. Observed: mean |error| 1.2% and max 7% of the logit std
                         // (6400 logits). Bounds: max 10%, mean 2%, top-1 agreement >= 95% (a
                         // random tiny model has many near-ties).
                         ::testing::Values(FormatCase{DType::kBF16, DType::kBF16, kFloatTol, 1.0},
                                           FormatCase{DType::kF16, DType::kF32, kFloatTol, 1.0},
                                           FormatCase{DType::kQ8_0, DType::kF32, 0.1, 0.95},
                                           FormatCase{DType::kQ4_0, DType::kF32, 0.1, 0.95}),
                         [](const ::testing::TestParamInfo<FormatCase>& info) {
                           return std::string(Traits(info.param.matrices).name);
                         });

TEST(Gemma3Test, RejectsBadInput) {
  Fixture f(TinyConfig(), DType::kF32, DType::kF32);
  auto s = f.Session(8, 16);
  std::vector<float> logits;
  const int img = f.config.image_token_id;
  // Two image tokens, one embedding row.
  Status st =
      s->Prefill(std::vector<int>{1, img, img, 2}, RandomVector(size_t(f.config.hidden_size), 1, 1),
                 LogitsMode::kLast, &logits);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(s->position(), 0);
  // Beyond the context.
  st = s->Prefill(std::vector<int>(17, 1), {}, LogitsMode::kLast, &logits);
  EXPECT_EQ(st.code(), absl::StatusCode::kOutOfRange) << st;
  // Unknown token id.
  st = s->Prefill(std::vector<int>{1, 5000}, {}, LogitsMode::kLast, &logits);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  // An image run longer than a chunk.
  st = s->Prefill(std::vector<int>(9, img), RandomVector(9 * size_t(f.config.hidden_size), 1, 1),
                  LogitsMode::kLast, &logits);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << st;
  EXPECT_EQ(s->position(), 0);
}

TEST(Gemma3Test, LoadNamesMissingAndMisshapenTensors) {
  Gemma3Config c = TinyConfig();
  TensorStore w = MakeRandomGemma3(c, DType::kF32, DType::kF32, 1);
  cpu::CpuOps ops(cpu::CpuOptions{1});
  auto m = Gemma3Model::Load(
      c,
      [&](const std::string& n) -> const TensorInfo* {
        return n == "blk.2.ffn_up.weight" ? nullptr : w.Find(n);
      },
      ops);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("blk.2.ffn_up.weight"), std::string::npos) << m.status();
  c.intermediate_size = 64;
  m = Gemma3Model::Load(
      c, [&](const std::string& n) { return w.Find(n); }, ops);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.status().message().find("shape"), std::string::npos) << m.status();
}

TEST(Gemma3Test, LoadReportsProgressPerLayer) {
  const Gemma3Config c = TinyConfig();
  TensorStore w = MakeRandomGemma3(c, DType::kF32, DType::kF32, 1);
  cpu::CpuOps ops(cpu::CpuOptions{1});
  std::vector<std::pair<int, int>> calls;
  auto m = Gemma3Model::Load(
      c, [&](const std::string& n) { return w.Find(n); }, ops, {},
      [&](int done, int total) { calls.emplace_back(done, total); });
  ASSERT_TRUE(m.ok()) << m.status();
  ASSERT_EQ(calls.size(), size_t(c.num_layers));
  for (int i = 0; i < c.num_layers; ++i) {
    EXPECT_EQ(calls[size_t(i)], std::make_pair(i + 1, c.num_layers));
  }
}

}  // namespace
}  // namespace unicorn
