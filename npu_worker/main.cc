// unicorn-npu-worker: owns the NPU (XDNA through XRT) or, where there is none
// and the config allows it, runs the same stages on the CPU backend.
#include <thread>

#include "common/log.h"
#include "common/worker_main.h"
#include "model/gemma3_stage.h"
#include "npu_worker/cpu/cpu_ops.h"

namespace unicorn {
namespace {

std::unique_ptr<cpu::CpuOps> g_ops;

StatusOr<BackendInfo> OpenBackend(const WorkerConfig& w) {
  if (w.backend == "xrt") {
    if (!w.allow_cpu_fallback) {
      return absl::FailedPreconditionError(
          "[npu] backend xrt requested with allow_cpu_fallback: false, but this build has no "
          "XRT backend (configure with -DUNICORN_WITH_XRT=ON)");
    }
    LOG_WARN("[npu] no XRT backend in this build: falling back to the CPU backend");
  }
  g_ops = std::make_unique<cpu::CpuOps>(cpu::CpuOptions{w.threads});
  return BackendInfo{"cpu", g_ops->Describe()};
}

StatusOr<std::unique_ptr<StageModel>> LoadShard(const ShardSpec& spec) {
  UNICORN_ASSIGN_OR_RETURN(auto m, Gemma3StageModel::Load(spec, *g_ops));
  return std::unique_ptr<StageModel>(std::move(m));
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  // No arena hook: the CPU backend reads and writes the slots in place as it is.
  unicorn::WorkerSpec spec{"npu", "Unicorn NPU worker", unicorn::OpenBackend, unicorn::LoadShard,
                           nullptr};
  return unicorn::RunWorkerMain(spec, argc, argv);
}
