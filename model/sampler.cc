#include "model/sampler.h"

#include <algorithm>
#include <cmath>

namespace unicorn {
namespace {

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

bool ByValueDesc(const std::pair<float, int>& a, const std::pair<float, int>& b) {
  return a.first > b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace

// One pass over blocks of 256: each block's maximum comes from eight
// running lane maxima (a loop the compiler vectorizes); a block whose
// maximum is strictly greater than all before it becomes the candidate, so
// the earliest block holding the overall maximum wins; only that block is
// then searched for the first equal element. The earlier version found the
// maximum, then searched from the start for its first occurrence: half the
// 1 MiB of Gemma 3's logits again, on average, for every sequence of every
// decode step on the engine's thread (tests/bench/sampler_bench.cc).
int Argmax(std::span<const float> v) {
  constexpr size_t kBlock = 256, kLanes = 8;
  const size_t n = v.size();
  float mx = -INFINITY;
  size_t block = n;  // start of the candidate block (n: none yet)
  size_t i = 0;
  for (; i + kBlock <= n; i += kBlock) {
    float m[kLanes];
    for (size_t j = 0; j < kLanes; ++j) m[j] = -INFINITY;
    for (size_t k = i; k < i + kBlock; k += kLanes) {
      for (size_t j = 0; j < kLanes; ++j) m[j] = v[k + j] > m[j] ? v[k + j] : m[j];
    }
    float bm = m[0];
    for (size_t j = 1; j < kLanes; ++j) bm = m[j] > bm ? m[j] : bm;
    if (bm > mx) {
      mx = bm;
      block = i;
    }
  }
  // The tail past the last whole block: its first maximum.
  float tmx = -INFINITY;
  int tbest = -1;
  for (size_t t = i; t < n; ++t) {
    if (v[t] > tmx) {
      tmx = v[t];
      tbest = int(t);
    }
  }
  if (tbest >= 0 && tmx > mx) return tbest;
  if (block < n) {
    for (size_t k = block; k < block + kBlock; ++k) {
      if (v[k] == mx) return int(k);
    }
  }
  // Nothing above -inf: the first -inf, else 0.
  for (size_t k = 0; k < n; ++k) {
    if (v[k] == -INFINITY) return int(k);
  }
  return 0;
}

RngState RngState::FromSeed(uint64_t seed) {
  RngState r;
  for (uint64_t& v : r.s) v = SplitMix64(seed);
  return r;
}

uint64_t RngState::Next() {
  const uint64_t result = Rotl(s[1] * 5, 7) * 9;
  const uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = Rotl(s[3], 45);
  return result;
}

float RngState::Uniform() { return float(Next() >> 40) * (1.0f / 16777216.0f); }

Sampler::Sampler(const SamplingParams& params)
    : params_(params), rng_(RngState::FromSeed(params.seed)) {}

int Sampler::Sample(std::span<const float> logits, std::span<const int> history) {
  const int V = int(logits.size());
  const bool penalty = params_.repeat_penalty != 1.0f && !history.empty();
  if (params_.temperature <= 0.0f && !penalty) {  // greedy: no copy of the logits
    return Argmax(logits);
  }
  work_.assign(logits.begin(), logits.end());

  // Repetition penalty (transformers' RepetitionPenaltyLogitsProcessor): each
  // distinct recent token once.
  if (penalty) {
    size_t first = 0;
    if (params_.repeat_last_n >= 0 && history.size() > size_t(params_.repeat_last_n)) {
      first = history.size() - size_t(params_.repeat_last_n);
    }
    for (size_t i = first; i < history.size(); ++i) {
      const int t = history[i];
      if (t < 0 || t >= V) continue;
      const float orig = logits[size_t(t)];
      if (work_[size_t(t)] != orig) continue;  // already penalised
      work_[size_t(t)] = orig > 0 ? orig / params_.repeat_penalty : orig * params_.repeat_penalty;
    }
  }

  if (params_.temperature <= 0.0f) {
    return Argmax(work_);
  }

  // Candidates sorted by logit, best first. Only as many as needed are sorted:
  // top-k's k, else the top 1024 when their mass already covers top-p.
  cand_.resize(size_t(V));
  for (int i = 0; i < V; ++i) cand_[size_t(i)] = {work_[size_t(i)] / params_.temperature, i};
  size_t n = size_t(V);
  if (params_.top_k > 0 && size_t(params_.top_k) < n) n = size_t(params_.top_k);
  auto sort_first = [&](size_t m) {
    std::partial_sort(cand_.begin(), cand_.begin() + long(m), cand_.end(), ByValueDesc);
  };
  size_t sorted = std::min<size_t>(n, 1024);
  sort_first(sorted);
  // Softmax over the kept candidates (the max is the first).
  const float mx = cand_[0].first;
  double total = 0;
  for (size_t i = 0; i < n; ++i) total += std::exp(double(cand_[i].first - mx));
  auto prob = [&](size_t i) { return std::exp(double(cand_[i].first - mx)) / total; };

  size_t keep = n;
  if (params_.top_p < 1.0f) {
    double cum = 0;
    size_t i = 0;
    for (;; ++i) {
      if (i == sorted && sorted < n) {
        sort_first(n);  // the top 1024 did not reach top_p: sort them all
        sorted = n;
      }
      if (i >= n) break;
      cum += prob(i);
      if (cum >= params_.top_p) {
        ++i;
        break;
      }
    }
    keep = std::max<size_t>(1, std::min(i, n));
  }
  if (params_.min_p > 0.0f) {
    const double floor = params_.min_p * prob(0);
    if (sorted < keep) {
      sort_first(keep);
      sorted = keep;
    }
    size_t i = 1;
    while (i < keep && prob(i) >= floor) ++i;
    keep = i;
  }
  if (sorted < keep) sort_first(keep);

  double mass = 0;
  for (size_t i = 0; i < keep; ++i) mass += prob(i);
  double r = double(rng_.Uniform()) * mass;
  for (size_t i = 0; i < keep; ++i) {
    r -= prob(i);
    if (r < 0) return cand_[i].second;
  }
  return cand_[keep - 1].second;
}

bool StopMatcher::IsEos(int token) const {
  return std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end();
}

std::string StopMatcher::Feed(const std::string& text) {
  if (stopped_) return "";
  pending_ += text;
  size_t stop_at = std::string::npos;
  for (const std::string& s : stop_strings_) {
    if (s.empty()) continue;
    stop_at = std::min(stop_at, pending_.find(s));
  }
  if (stop_at != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, stop_at);
    pending_.clear();
    return out;
  }
  // Hold back the longest tail that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stop_strings_) {
    for (size_t len = std::min(s.size() - (s.empty() ? 0 : 1), pending_.size()); len > hold;
         --len) {
      if (pending_.compare(pending_.size() - len, len, s, 0, len) == 0) {
        hold = len;
        break;
      }
    }
  }
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopMatcher::Flush() {
  std::string out;
  out.swap(pending_);
  return stopped_ ? std::string() : out;
}

}  // namespace unicorn
