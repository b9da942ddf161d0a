// A pipeline shard that holds all of the text-small test model
// (tests/data/models/text-small: 8 layers, vocabulary 512): embedding, every
// layer's attention and FFN halves, LM head. Shared by the stage tests.
#pragma once

#include "model/stage.h"

namespace unicorn::testing {

constexpr int kTextSmallLayers = 8;

inline ShardSpec WholeTextSmallShard(int max_step_tokens, int max_context = 64) {
  ShardSpec spec;
  spec.model_path = UNICORN_SOURCE_DIR "/tests/data/models/text-small";
  spec.embedding = spec.lm_head = true;
  for (int l = 0; l < kTextSmallLayers; ++l) {
    spec.attention_layers.push_back(l);
    spec.ffn_layers.push_back(l);
  }
  spec.max_step_tokens = max_step_tokens;
  spec.max_context = max_context;
  return spec;
}

}  // namespace unicorn::testing
