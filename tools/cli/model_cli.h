// Shared pieces of the commands that run a model in this process (run,
// logits, bench): the model/backend options, the backend registry, opening.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/status.h"
#include "model/backend_registry.h"
#include "model/engine.h"

namespace unicorn::cli {

struct ModelOptions {
  std::string model;
  std::string mmproj;
  std::string backend = "cpu";
  int threads = 0;
  std::string device;
};

// --model, --mmproj, --backend, --threads, --device.
void AddModelOptions(CLI::App* cmd, ModelOptions* o);

// Every backend this build has ("cpu"; others register here as they land).
const BackendRegistry& Backends();

StatusOr<std::unique_ptr<Engine>> OpenEngine(const ModelOptions& o);

// "2,105,1234" or "2 105 1234" -> ids; errors name the bad item.
StatusOr<std::vector<int>> ParseTokenList(const std::string& text);

}  // namespace unicorn::cli
