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
  std::string config;  // a Unicorn config: model, mmproj and backend from it
  std::string model;
  std::string mmproj;
  std::string backend;  // empty: the config's, else "cpu"
  int threads = 0;
  std::string device;
};

// --config, --model, --mmproj, --backend, --threads, --device. One of
// --config and --model is required; flags given explicitly override the
// config's values.
void AddModelOptions(CLI::App* cmd, ModelOptions* o);

// Every backend this build has ("cpu"; others register here as they land).
const BackendRegistry& Backends();

// Fills model, mmproj, backend, device and threads from --config where the
// command line left them unset; an error if neither a model nor a config.
Status ResolveModelOptions(ModelOptions* o);

// Resolves the options and opens the model on its backend.
StatusOr<std::unique_ptr<Engine>> OpenEngine(const ModelOptions& o);

// "2,105,1234" or "2 105 1234" -> ids; errors name the bad item.
StatusOr<std::vector<int>> ParseTokenList(const std::string& text);

}  // namespace unicorn::cli
