// Gemma3Config as JSON, for `unicorn inspect --json`, logs and test failure
// messages. Keys follow Hugging Face's names where one exists.
#pragma once

#include "model/gemma3_config.h"
#include "nlohmann/json.hpp"

namespace unicorn {

nlohmann::json ConfigToJson(const Gemma3Config& c);

}  // namespace unicorn
