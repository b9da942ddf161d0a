// unicorn-gpu-worker: owns a Vulkan device (AMD iGPU on the target laptop,
// any Vulkan GPU elsewhere, lavapipe in CI) and runs the stages the plan
// gives it.
#include <cstdlib>
#include <cstring>

#include "common/log.h"
#include "common/worker_main.h"
#include "gpu_worker/arena_import.h"
#include "gpu_worker/vulkan_ops.h"
#include "model/gemma3_stage.h"
#include "npu_worker/cpu/cpu_ops.h"

namespace unicorn {
namespace {

std::unique_ptr<Ops> g_ops;
vk::VulkanOps* g_vulkan = nullptr;  // g_ops when the backend is Vulkan

StatusOr<BackendInfo> OpenBackend(const WorkerConfig& w) {
  if (w.backend == "cpu") {
    LOG_WARN("[gpu] backend cpu chosen by config: this worker runs on the CPU");
    g_ops = std::make_unique<cpu::CpuOps>(cpu::CpuOptions{w.threads});
    return BackendInfo{"cpu", g_ops->Describe()};
  }
  // Opening the device, its queue and pipelines here makes a broken driver
  // fail the daemon's start, not its first request.
  vk::VulkanOptions vo;
  vo.device = w.device;
  // As in `unicorn run`: UNICORN_VK_PROFILE=1 times every dispatch and logs
  // a per-op table when the worker closes.
  const char* prof = std::getenv("UNICORN_VK_PROFILE");
  vo.profile = prof != nullptr && std::strcmp(prof, "0") != 0;
  UNICORN_ASSIGN_OR_RETURN(auto ops, vk::VulkanOps::Create(vo));
  std::string desc = ops->Describe();
  g_vulkan = ops.get();
  g_ops = std::move(ops);
  return BackendInfo{"vulkan", desc};
}

StatusOr<std::unique_ptr<StageModel>> LoadShard(const ShardSpec& spec) {
  UNICORN_ASSIGN_OR_RETURN(auto m, Gemma3StageModel::Load(spec, *g_ops));
  return std::unique_ptr<StageModel>(std::move(m));
}

// Stage activations stay in the arena: imported, the GPU reads and writes the
// slots directly (a failure is logged and the worker copies instead).
void OnArena(const shm::Arena* arena) {
  if (g_vulkan != nullptr) (void)vk::ImportArena(*g_vulkan, arena);
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  unicorn::WorkerSpec spec{"gpu", "Unicorn GPU (Vulkan) worker", unicorn::OpenBackend,
                           unicorn::LoadShard, unicorn::OnArena};
  int rc = unicorn::RunWorkerMain(spec, argc, argv);
  unicorn::g_ops.reset();
  return rc;
}
