#include "npu_worker/cpu/cpu_backend.h"

#include "npu_worker/cpu/cpu_ops.h"

namespace unicorn::cpu {

void RegisterCpuBackend(BackendRegistry& registry) {
  registry.Register("cpu", "CPU, Highway SIMD (AVX-512/AVX2/...) on a thread pool",
                    [](const BackendOptions& o) -> StatusOr<std::unique_ptr<Ops>> {
                      if (o.threads < 0) {
                        return absl::InvalidArgumentError("[cpu] threads must be >= 0");
                      }
                      return std::unique_ptr<Ops>(new CpuOps(CpuOptions{o.threads}));
                    });
}

}  // namespace unicorn::cpu
