// Next-token sampling and stop conditions.
//
// The chain follows transformers' generate: repetition penalty, then
// temperature, top-k, top-p, min-p, then a draw. Temperature 0 is greedy
// (argmax; the first of equal maxima, as torch.argmax). The random state is a
// small copyable value (RngState), so a coordinator can own it, hand it to a
// worker and replay a generation exactly.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace unicorn {

struct SamplingParams {
  float temperature = 0.0f;     // <= 0: greedy
  int top_k = 0;                // 0: off
  float top_p = 1.0f;           // 1: off
  float min_p = 0.0f;           // 0: off; drops tokens below min_p * p(top token)
  float repeat_penalty = 1.0f;  // 1: off; logits of seen tokens: > 0 divided, < 0 multiplied
  int repeat_last_n = 64;       // how many recent tokens the penalty looks at (-1: all)
  uint64_t seed = 0;
};

// xoshiro256** state, seeded through splitmix64.
struct RngState {
  uint64_t s[4] = {0, 0, 0, 0};
  static RngState FromSeed(uint64_t seed);
  uint64_t Next();
  float Uniform();  // [0, 1), 24 random bits
  friend bool operator==(const RngState&, const RngState&) = default;
};

// The first index of the largest value (torch.argmax's tie rule; NaN never
// wins; all -inf or NaN: the first -inf, else 0).
int Argmax(std::span<const float> v);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Picks the next token from logits [vocab]. `history` holds the tokens of
  // the sequence so far (for the repetition penalty). Scratch memory is kept
  // between calls: no allocation once warmed up.
  int Sample(std::span<const float> logits, std::span<const int> history);

  const SamplingParams& params() const { return params_; }
  const RngState& rng() const { return rng_; }
  void set_rng(const RngState& rng) { rng_ = rng; }

 private:
  SamplingParams params_;
  RngState rng_;
  std::vector<float> work_;                  // penalised logits
  std::vector<std::pair<float, int>> cand_;  // (logit or prob, token)
};

// Detects the end of a generation: an EOS token id, or a stop string in the
// decoded text. Feed() returns the text that is safe to show: a tail that
// could still become a stop string is held back until it cannot.
class StopMatcher {
 public:
  StopMatcher(std::vector<int> eos_ids, std::vector<std::string> stop_strings)
      : eos_ids_(std::move(eos_ids)), stop_strings_(std::move(stop_strings)) {}

  bool IsEos(int token) const;
  // Appends decoded text; returns the newly releasable text. After a stop
  // string appears, stopped() is true and the text from it on is dropped.
  std::string Feed(const std::string& text);
  // The held-back tail (call at the end of a generation that did not stop).
  std::string Flush();
  bool stopped() const { return stopped_; }

 private:
  std::vector<int> eos_ids_;
  std::vector<std::string> stop_strings_;
  std::string pending_;
  bool stopped_ = false;
};

}  // namespace unicorn
