// Reading the small JSON side files of a model folder (config.json,
// tokenizer.json, model.safetensors.index.json, ...).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace unicorn {

// The whole file. Errors read "[<subsystem>] open(<path>): ENOENT (...)".
StatusOr<std::string> ReadTextFile(const std::string& path, std::string_view subsystem);

}  // namespace unicorn
