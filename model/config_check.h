// Invariants of a Gemma3Config, checked after it is read from any source.
#pragma once

#include "common/status.h"
#include "model/gemma3_config.h"

namespace unicorn {

// OK when every field is in its sane range and the fields agree (heads
// divisible by kv heads, one layer type per layer, image size a multiple of
// the patch size, a square number of image tokens, ...). The bounds are far
// beyond any Gemma 3 model and keep sizes derived from them from
// overflowing. Errors name the field: "num_key_value_heads 3 does not
// divide num_attention_heads 8".
Status ValidateConfig(const Gemma3Config& c);

}  // namespace unicorn
