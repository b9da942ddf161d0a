#include "tools/cli/model_cli.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/config.h"
#include "gpu_worker/vulkan_backend.h"
#include "npu_worker/cpu/cpu_backend.h"
#include "tools/cli/progress.h"

namespace unicorn::cli {

const BackendRegistry& Backends() {
  static const BackendRegistry* registry = [] {
    auto* r = new BackendRegistry();
    cpu::RegisterCpuBackend(*r);
    vk::RegisterVulkanBackend(*r);
    return r;
  }();
  return *registry;
}

void AddModelOptions(CLI::App* cmd, ModelOptions* o) {
  auto* config = cmd->add_option(
      "-c,--config", o->config,
      "Unicorn config: its model, and the backend of the worker running the FFN of layer 0, "
      "in this one process (the baseline for the pipeline)");
  auto* model = cmd->add_option("-m,--model", o->model, "model: Hugging Face folder or .gguf");
  config->excludes(model);
  model->excludes(config);
  cmd->add_option("--mmproj", o->mmproj, "vision GGUF (mmproj) for a GGUF model");
  cmd->add_option("--backend", o->backend,
                  "compute backend: " + absl::StrJoin(Backends().Names(), ", "));
  cmd->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--device", o->device,
                  "GPU for --backend vulkan: index or part of its name (default: the first "
                  "discrete GPU)");
}

namespace {

StatusOr<std::unique_ptr<Engine>> Open(const ModelOptions& o) {
  EngineOptions e;
  e.model = o.model;
  e.mmproj = o.mmproj;
  e.backend = o.backend;
  e.backend_options.threads = o.threads;
  e.backend_options.device = o.device;
  // Binding repacks (CPU) or uploads (Vulkan) the weights: seconds on a 4B
  // model, so show it layer by layer on a terminal.
  std::unique_ptr<ProgressBar> bar;
  e.progress = [&](int done, int total) {
    if (!bar) bar = std::make_unique<ProgressBar>("loading", total);
    bar->Set(done, absl::StrCat("layer ", done, "/", total));
  };
  auto engine = Engine::Open(e, Backends());
  if (bar) bar->Done();
  return engine;
}

// The in-process equivalent of a config: its model and the backend of the
// worker that runs the FFN of layer 0 (the plan's bulk of the compute). An
// NPU worker's "xrt" runs here as "cpu" where this build has no XRT backend,
// as the worker itself does with allow_cpu_fallback.
Status ApplyConfig(const std::string& path, ModelOptions* o) {
  const bool backend_given = !o->backend.empty();
  UNICORN_ASSIGN_OR_RETURN(Config c, LoadConfig(path));
  o->model = c.model;
  if (o->mmproj.empty()) o->mmproj = c.mmproj;
  std::string worker_name;
  for (const PlanRange& r : c.plan.layers) {
    if (r.first_layer <= 0) worker_name = r.ffn;
  }
  const WorkerConfig* w = c.FindWorker(worker_name);
  if (w == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("[run] ", path, ": the plan names no worker for the FFN of layer 0"));
  }
  if (!backend_given) {
    o->backend = w->backend;
    const std::vector<std::string> names = Backends().Names();
    const bool known = std::find(names.begin(), names.end(), o->backend) != names.end();
    if (!known && w->kind == "npu" && w->allow_cpu_fallback) {
      o->backend = "cpu";
    }
  }
  if (o->device.empty()) o->device = w->device;
  if (o->threads == 0) o->threads = w->threads;
  return absl::OkStatus();
}

}  // namespace

Status ResolveModelOptions(ModelOptions* o) {
  if (!o->config.empty()) {
    UNICORN_RETURN_IF_ERROR(ApplyConfig(o->config, o));
  } else if (o->model.empty()) {
    return absl::InvalidArgumentError("give a model (--model PATH) or a config (--config FILE)");
  }
  if (o->backend.empty()) o->backend = "cpu";
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<Engine>> OpenEngine(const ModelOptions& o) {
  ModelOptions resolved = o;
  UNICORN_RETURN_IF_ERROR(ResolveModelOptions(&resolved));
  return Open(resolved);
}

StatusOr<std::vector<int>> ParseTokenList(const std::string& text) {
  std::vector<int> ids;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ',' || text[i] == ' ' || text[i] == '\n')) ++i;
    if (i >= text.size()) break;
    size_t j = i;
    while (j < text.size() && text[j] != ',' && text[j] != ' ' && text[j] != '\n') ++j;
    const std::string item = text.substr(i, j - i);
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (end != item.c_str() + item.size() || errno != 0 || v < 0 || v > INT32_MAX) {
      return absl::InvalidArgumentError(absl::StrCat("bad token id '", item, "'"));
    }
    ids.push_back(int(v));
    i = j;
  }
  if (ids.empty()) return absl::InvalidArgumentError("no token ids given");
  return ids;
}

}  // namespace unicorn::cli
