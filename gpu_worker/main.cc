// unicorn-gpu-worker: owns a Vulkan device (AMD iGPU on the target laptop,
// any Vulkan GPU elsewhere, lavapipe in CI) and runs the stages the plan
// gives it.
#include "common/log.h"
#include "common/worker_main.h"
#include "gpu_worker/vk/device.h"

namespace unicorn {
namespace {

std::unique_ptr<vk::Device> g_device;

StatusOr<BackendInfo> OpenBackend(const WorkerConfig& w) {
  if (w.backend == "cpu") {
    LOG_WARN("[gpu] backend cpu chosen by config: this worker runs on the CPU");
    return BackendInfo{"cpu", "cpu"};
  }
  // Opening the logical device and its compute queue here makes a broken
  // driver fail the daemon's start, not its first request.
  UNICORN_ASSIGN_OR_RETURN(g_device, vk::Device::Open(w.device));
  return BackendInfo{"vulkan", g_device->Describe()};
}

StatusOr<std::unique_ptr<StageModel>> LoadShard(const ShardSpec&) {
  return absl::UnimplementedError("[worker] this build cannot load model shards yet");
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  unicorn::WorkerSpec spec{"gpu", "Unicorn GPU (Vulkan) worker", unicorn::OpenBackend,
                           unicorn::LoadShard};
  int rc = unicorn::RunWorkerMain(spec, argc, argv);
  unicorn::g_device.reset();
  return rc;
}
