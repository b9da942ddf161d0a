// unicorn-gpu-worker: owns a Vulkan device (AMD iGPU on the target laptop,
// any Vulkan GPU elsewhere, lavapipe in CI) and runs the stages the plan
// gives it.
#include "common/log.h"
#include "common/worker_main.h"
#include "gpu_worker/vk/instance.h"

namespace unicorn {
namespace {

std::unique_ptr<vk::Instance> g_instance;

StatusOr<BackendInfo> OpenBackend(const WorkerConfig& w) {
  if (w.backend == "cpu") {
    LOG_WARN("[gpu] backend cpu chosen by config: this worker runs on the CPU");
    return BackendInfo{"cpu", "cpu"};
  }
  UNICORN_ASSIGN_OR_RETURN(g_instance, vk::Instance::Create());
  UNICORN_ASSIGN_OR_RETURN(vk::PhysicalDeviceInfo dev, g_instance->Select(w.device));
  return BackendInfo{"vulkan", absl::StrCat(dev.name, " (", dev.type, ")")};
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  unicorn::WorkerSpec spec{"gpu", "Unicorn GPU (Vulkan) worker", unicorn::OpenBackend};
  return unicorn::RunWorkerMain(spec, argc, argv);
}
