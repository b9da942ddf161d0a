// unicorn-npu-worker: owns the NPU (XDNA through XRT) or, where there is none
// and the config allows it, runs the same stages on the CPU backend.
#include <thread>

#include "common/log.h"
#include "common/worker_main.h"

namespace unicorn {
namespace {

StatusOr<BackendInfo> OpenBackend(const WorkerConfig& w) {
  if (w.backend == "xrt") {
    if (!w.allow_cpu_fallback) {
      return absl::FailedPreconditionError(
          "[npu] backend xrt requested with allow_cpu_fallback: false, but this build has no "
          "XRT backend (configure with -DUNICORN_WITH_XRT=ON)");
    }
    LOG_WARN("[npu] no XRT backend in this build: falling back to the CPU backend");
  }
  int threads = w.threads > 0 ? w.threads : int(std::thread::hardware_concurrency());
  return BackendInfo{"cpu", absl::StrCat("cpu (", threads, " threads)")};
}

StatusOr<std::unique_ptr<StageModel>> LoadShard(const ShardSpec&) {
  return absl::UnimplementedError("[worker] this build cannot load model shards yet");
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  unicorn::WorkerSpec spec{"npu", "Unicorn NPU worker", unicorn::OpenBackend, unicorn::LoadShard};
  return unicorn::RunWorkerMain(spec, argc, argv);
}
