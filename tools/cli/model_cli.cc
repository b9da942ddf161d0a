#include "tools/cli/model_cli.h"

#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gpu_worker/vulkan_backend.h"
#include "npu_worker/cpu/cpu_backend.h"

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
  cmd->add_option("-m,--model", o->model, "model: Hugging Face folder or .gguf")->required();
  cmd->add_option("--mmproj", o->mmproj, "vision GGUF (mmproj) for a GGUF model");
  cmd->add_option("--backend", o->backend,
                  "compute backend: " + absl::StrJoin(Backends().Names(), ", "));
  cmd->add_option("-t,--threads", o->threads, "CPU threads (0 = all cores)");
  cmd->add_option("--device", o->device,
                  "GPU for --backend vulkan: index or part of its name (default: the first "
                  "discrete GPU)");
}

StatusOr<std::unique_ptr<Engine>> OpenEngine(const ModelOptions& o) {
  EngineOptions e;
  e.model = o.model;
  e.mmproj = o.mmproj;
  e.backend = o.backend;
  e.backend_options.threads = o.threads;
  e.backend_options.device = o.device;
  return Engine::Open(e, Backends());
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
