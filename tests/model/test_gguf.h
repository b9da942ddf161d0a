// Writes a random test model as a GGUF file laid out as llama.cpp writes
// Gemma 3 (Gemma RMSNorm weights stored as 1 + w), so tests can open it
// through ModelFiles and the CLI.
#pragma once

#include <string>

#include "common/status.h"
#include "model/gemma3_config.h"
#include "tests/model/test_tensors.h"

namespace unicorn::testing {

Status WriteTestGguf(const std::string& path, const Gemma3Config& config, const TensorStore& store);

}  // namespace unicorn::testing
