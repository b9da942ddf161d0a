#include "coordinator/token_sampler.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "model/sampler.h"

namespace unicorn {
namespace {

class SamplerAdapter final : public TokenSampler {
 public:
  SamplerAdapter(const SamplingParams& p, bool logprobs) : sampler_(p), logprobs_(logprobs) {}

  int Sample(std::span<const float> logits, std::span<const int> history, float* logprob) override {
    const int t = sampler_.Sample(logits, history);
    *logprob = 0;
    if (!logprobs_) return t;
    const float mx = *std::max_element(logits.begin(), logits.end());
    double sum = 0;
    for (float l : logits) sum += std::exp(double(l - mx));
    *logprob = float(double(logits[size_t(t)] - mx) - std::log(sum));
    return t;
  }

 private:
  Sampler sampler_;
  bool logprobs_;
};

}  // namespace

std::unique_ptr<TokenSampler> MakeTokenSampler(const SamplingOptions& s) {
  SamplingParams p;
  p.temperature = s.temperature;
  p.top_k = s.top_k;
  p.top_p = s.top_p;
  p.min_p = s.min_p;
  p.repeat_penalty = s.repetition_penalty;
  p.seed = s.has_seed ? s.seed : std::random_device()();
  return std::make_unique<SamplerAdapter>(p, s.logprobs);
}

}  // namespace unicorn
