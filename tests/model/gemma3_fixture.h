// What the Gemma 3 forward-pass tests of every backend share
// (tests/model/gemma3_test.cc on the CPU, tests/gpu_worker/gemma3_vulkan_test.cc
// on Vulkan): a random tiny model bound on a backend, token streams, and the
// error measures their tolerances are stated in.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

#include "model/gemma3.h"
#include "tests/model/gemma3_reference.h"

namespace unicorn::testing {

// A random model (MakeRandomGemma3) bound on `ops`, which must outlive it.
struct Gemma3Fixture {
  Gemma3Config config;
  TensorStore weights;
  std::unique_ptr<Gemma3Model> model;

  Gemma3Fixture(const Gemma3Config& c, DType matrices, DType norms, Ops& ops, uint32_t seed = 1)
      : config(c), weights(MakeRandomGemma3(c, matrices, norms, seed)) {
    auto m = Gemma3Model::Load(
        config, [&](const std::string& n) { return weights.Find(n); }, ops);
    EXPECT_TRUE(m.ok()) << m.status();
    if (m.ok()) model = std::move(*m);
  }
  std::unique_ptr<Gemma3Session> Session(int max_chunk, int max_context = 256) {
    auto s = Gemma3Session::Create(*model, SessionOptions{max_context, max_chunk});
    EXPECT_TRUE(s.ok()) << s.status();
    return std::move(*s);
  }
};

// `n` pseudo-random ids in [0, vocab), never `avoid` (the image token).
inline std::vector<int> Tokens(int n, int vocab, uint32_t seed, int avoid) {
  std::vector<int> t(static_cast<size_t>(n));
  uint32_t x = seed;
  for (int& v : t) {
    do {
      x = x * 1664525u + 1013904223u;
      v = int((x >> 8) % uint32_t(vocab));
    } while (v == avoid);
  }
  return t;
}

// Standard deviation: the logit scale that tolerances are relative to.
inline double Std(const std::vector<float>& v) {
  double m = std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()), s = 0;
  for (float x : v) s += (x - m) * (x - m);
  return std::sqrt(s / double(v.size()));
}

// Largest |a - b|; a NaN on either side reads as infinitely far.
inline double MaxAbsDiff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) {
    const double d = std::fabs(double(a[i]) - double(b[i]));
    m = std::isnan(d) ? INFINITY : std::max(m, d);
  }
  return m;
}

}  // namespace unicorn::testing
