// The coordinator's sampler returns log-probabilities only when asked: the
// pass over the vocabulary it costs was most of a decode step's time on the
// coordinator at Gemma 3's vocabulary.
#include "coordinator/token_sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace unicorn {
namespace {

TEST(TokenSampler, LogprobOnlyWhenAsked) {
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 1.0f};
  SamplingOptions o;  // greedy
  float logprob = 1;
  EXPECT_EQ(MakeTokenSampler(o)->Sample(logits, {}, &logprob), 1);
  EXPECT_EQ(logprob, 0.0f);

  o.logprobs = true;
  EXPECT_EQ(MakeTokenSampler(o)->Sample(logits, {}, &logprob), 1);
  double sum = 0;
  for (float l : logits) sum += std::exp(double(l));
  // Float rounding of a log-softmax over 4 values: well under 1e-6.
  EXPECT_NEAR(logprob, 2.0 - std::log(sum), 1e-6);
}

// Greedy picks the first of equal maxima (torch.argmax), wherever it lies
// relative to the 8-wide blocks of the scan, and ignores NaN.
TEST(TokenSampler, GreedyFirstOfEqualMaxima) {
  SamplingOptions o;
  auto s = MakeTokenSampler(o);
  float lp = 0;
  for (size_t n : {1, 7, 8, 9, 37}) {
    for (size_t first = 0; first < n; ++first) {
      std::vector<float> logits(n, -1.0f);
      logits[first] = 3.0f;
      if (first + 2 < n) logits[first + 2] = 3.0f;  // a tie after it
      if (first > 0) logits[0] = std::nanf("");
      EXPECT_EQ(s->Sample(logits, {}, &lp), int(first)) << n << " " << first;
    }
  }
}

TEST(TokenSampler, SeededDrawsRepeat) {
  std::vector<float> logits(64);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i % 7) * 0.3f;
  SamplingOptions o;
  o.temperature = 1.0f;
  o.seed = 42;
  o.has_seed = true;
  auto a = MakeTokenSampler(o), b = MakeTokenSampler(o);
  float la = 0, lb = 0;
  for (int i = 0; i < 16; ++i) EXPECT_EQ(a->Sample(logits, {}, &la), b->Sample(logits, {}, &lb));
}

}  // namespace
}  // namespace unicorn
