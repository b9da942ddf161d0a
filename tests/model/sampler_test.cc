#include "model/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

namespace unicorn {
namespace {

TEST(SamplerTest, GreedyTakesTheFirstMaximum) {
  Sampler s(SamplingParams{});
  EXPECT_EQ(s.Sample(std::vector<float>{1, 5, 5, 2}, {}), 1);
  EXPECT_EQ(s.Sample(std::vector<float>{-3, -1, -2}, {}), 1);
}

// Argmax works in blocks of 256: ties within and across blocks, the tail
// past the last whole block, NaN and -inf, against a plain first-maximum
// scan.
TEST(SamplerTest, ArgmaxIsTheFirstMaximumForEveryLaneAndTail) {
  auto first_max = [](const std::vector<float>& v) {
    int best = 0;
    for (size_t i = 1; i < v.size(); ++i) {
      if (v[i] > v[size_t(best)] || std::isnan(v[size_t(best)])) best = int(i);
    }
    return best;
  };
  uint64_t x = 12345;
  for (size_t n : {1, 7, 8, 9, 255, 256, 257, 1003, 262144}) {
    for (int trial = 0; trial < 20; ++trial) {
      std::vector<float> v(n);
      for (float& f : v) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        f = float((x >> 40) % 7);  // few distinct values: many ties
      }
      EXPECT_EQ(Argmax(v), first_max(v)) << "n " << n << " trial " << trial;
    }
  }
  // 600 = two blocks of 256 and a tail of 88.
  std::vector<float> v(600, 1.0f);
  v[300] = 3;
  v[200] = 3;  // an earlier block...
  v[590] = 3;  // ...and the tail hold the same maximum
  EXPECT_EQ(Argmax(v), 200);
  v[580] = 4;
  v[595] = 5;  // the tail alone holds it, after a smaller new maximum
  EXPECT_EQ(Argmax(v), 595);
  v[2] = NAN;
  v[595] = 1;
  EXPECT_EQ(Argmax(v), 580);
  EXPECT_EQ(Argmax(std::vector<float>(10, -INFINITY)), 0);
  EXPECT_EQ(Argmax(std::vector<float>{NAN, NAN, -INFINITY, NAN}), 2);
  EXPECT_EQ(Argmax(std::vector<float>(9, NAN)), 0);
}

TEST(SamplerTest, SameSeedSameTokensAndStateReplays) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 42;
  std::vector<float> logits(50);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(float(i));
  Sampler a(p), b(p);
  std::vector<int> ta, tb;
  RngState mid;
  for (int i = 0; i < 20; ++i) {
    if (i == 10) mid = a.rng();
    ta.push_back(a.Sample(logits, {}));
    tb.push_back(b.Sample(logits, {}));
  }
  EXPECT_EQ(ta, tb);
  Sampler c(p);
  c.set_rng(mid);  // replay from the middle
  for (int i = 10; i < 20; ++i) EXPECT_EQ(c.Sample(logits, {}), ta[size_t(i)]);
  p.seed = 43;
  Sampler d(p);
  std::vector<int> td;
  for (int i = 0; i < 20; ++i) td.push_back(d.Sample(logits, {}));
  EXPECT_NE(ta, td);
}

TEST(SamplerTest, DrawsFollowTheSoftmax) {
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 7;
  Sampler s(p);
  const std::vector<float> logits = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
  std::map<int, int> count;
  const int n = 20000;
  for (int i = 0; i < n; ++i) count[s.Sample(logits, {})]++;
  // Binomial std at n = 20000 is <= 0.0035: 0.015 is over 4 sigma.
  EXPECT_NEAR(count[0] / double(n), 0.5, 0.015);
  EXPECT_NEAR(count[1] / double(n), 0.3, 0.015);
  EXPECT_NEAR(count[2] / double(n), 0.2, 0.015);
}

TEST(SamplerTest, TopKTopPMinPRestrictTheCandidates) {
  const std::vector<float> logits = {std::log(0.4f), std::log(0.3f), std::log(0.2f),
                                     std::log(0.1f)};
  auto seen = [&](SamplingParams p) {
    p.temperature = 1.0f;
    Sampler s(p);
    std::map<int, int> c;
    for (int i = 0; i < 4000; ++i) c[s.Sample(logits, {})]++;
    return c;
  };
  SamplingParams p;
  p.top_k = 2;
  auto c = seen(p);
  EXPECT_EQ(c.size(), 2u);
  EXPECT_TRUE(c.count(0) && c.count(1));
  p = {};
  p.top_p = 0.65f;  // 0.4 + 0.3 reaches it
  c = seen(p);
  EXPECT_EQ(c.size(), 2u);
  p = {};
  p.min_p = 0.4f;  // keeps p >= 0.16: tokens 0, 1, 2
  c = seen(p);
  EXPECT_EQ(c.size(), 3u);
  EXPECT_EQ(c.count(3), 0u);
  p = {};
  p.top_k = 1;
  c = seen(p);
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.begin()->first, 0);
}

TEST(SamplerTest, TopPBeyondTheFirstThousandCandidates) {
  // 5000 equal logits: top_p 0.9 needs 4500 of them.
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_p = 0.9f;
  Sampler s(p);
  std::vector<float> logits(5000, 0.0f);
  int max_token = 0;
  for (int i = 0; i < 500; ++i) max_token = std::max(max_token, s.Sample(logits, {}));
  EXPECT_GT(max_token, 3500);
  EXPECT_LT(max_token, 4501);
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  SamplingParams p;
  p.repeat_penalty = 2.0f;
  Sampler s(p);
  // Token 0 (3.0) seen -> 1.5 < token 1 (2.0).
  EXPECT_EQ(s.Sample(std::vector<float>{3, 2, -1}, std::vector<int>{0, 0}), 1);
  // Negative logits move away from zero: -1 -> -2 < -1.5.
  EXPECT_EQ(s.Sample(std::vector<float>{-2.5f, -1.5f, -1}, std::vector<int>{2}), 1);
  // Only the last n tokens count.
  p.repeat_last_n = 1;
  Sampler t(p);
  EXPECT_EQ(t.Sample(std::vector<float>{3, 2, -1}, std::vector<int>{0, 2}), 0);
}

TEST(StopMatcherTest, HoldsBackPrefixesAndStopsAtStrings) {
  StopMatcher m({1, 106}, {"<end>", "STOP"});
  EXPECT_TRUE(m.IsEos(106));
  EXPECT_FALSE(m.IsEos(2));
  EXPECT_EQ(m.Feed("Hello <e"), "Hello ");
  EXPECT_EQ(m.Feed("x"), "<ex");
  EXPECT_EQ(m.Feed(" ST"), " ");
  EXPECT_EQ(m.Feed("OP and more"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.Feed("ignored"), "");
  StopMatcher n({}, {"##"});
  EXPECT_EQ(n.Feed("a#"), "a");
  EXPECT_EQ(n.Flush(), "#");
}

}  // namespace
}  // namespace unicorn
