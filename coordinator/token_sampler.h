// The coordinator's per-sequence sampler: model/sampler.h behind the engine's
// TokenSampler interface (coordinator/engine.h).
#pragma once

#include <memory>

#include "coordinator/engine.h"

namespace unicorn {

// A sampler for one sequence (a random seed unless `s.has_seed`). The chosen
// token's log-probability (log-softmax of the raw logits) costs a pass of
// exp() over the whole vocabulary, about 4 ms per token at Gemma 3's 262k
// vocabulary: it is computed only when `s.logprobs` asks for it, and is 0
// otherwise.
std::unique_ptr<TokenSampler> MakeTokenSampler(const SamplingOptions& s);

}  // namespace unicorn
