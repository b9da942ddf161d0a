// unicorn-npu-worker: owns the NPU (XDNA through XRT) or, where there is none
// and the config allows it, runs the same stages on the CPU backend.
//
// backend: xrt start-up:
//   NpuProbe() usable (an NPU node, XRT compiled in, XRT with hw_context)
//     -> open XRT device `device` (default 0), load the config's GEMM kernels
//        -> NpuOps: those GEMMs on the NPU, everything else on the CPU;
//   otherwise, or if opening fails: allow_cpu_fallback -> the CPU backend,
//   with the reason in the log and in ModelInfo (WorkerInfo.backend_note);
//   allow_cpu_fallback: false -> start-up fails with the reason.
#include <thread>

#include "absl/strings/numbers.h"
#include "common/log.h"
#include "common/worker_main.h"
#include "model/gemma3_stage.h"
#include "npu_worker/cpu/cpu_ops.h"
#include "npu_worker/xrt/npu_ops.h"
#include "npu_worker/xrt/npu_probe.h"

namespace unicorn {
namespace {

std::unique_ptr<npu::NpuDevice> g_device;
std::unique_ptr<Ops> g_ops;

// The XRT device and the config's kernels on it.
StatusOr<BackendInfo> OpenXrt(const WorkerConfig& w) {
#ifdef UNICORN_XRT_BUILT
  int index = 0;
  if (!w.device.empty() && !absl::SimpleAtoi(w.device, &index)) {
    return absl::InvalidArgumentError(
        absl::StrCat("[npu] workers.", w.name, ".device '", w.device, "': expected an XRT index"));
  }
  UNICORN_ASSIGN_OR_RETURN(g_device, npu::OpenXrtDevice(index));
  std::vector<npu::GemmSpec> specs;
  for (const NpuKernelConfig& k : w.kernels) {
    npu::GemmSpec s;
    s.name = k.name;
    s.xclbin = k.xclbin;
    s.insts = k.insts;
    s.kernel_name = k.kernel;
    UNICORN_ASSIGN_OR_RETURN(s.dtype, npu::ParseGemmDType(k.dtype));
    s.m = k.m;
    s.k = k.k;
    s.n = k.n;
    specs.push_back(std::move(s));
  }
  if (specs.empty()) {
    LOG_WARN(
        "[npu] workers.{}.kernels is empty: every op runs on the CPU backend "
        "(build kernels with npu_worker/kernels/build.sh)",
        w.name);
  }
  UNICORN_ASSIGN_OR_RETURN(auto ops,
                           npu::NpuOps::Create(*g_device, specs, cpu::CpuOptions{w.threads}));
  std::string desc = ops->Describe();
  g_ops = std::move(ops);
  return BackendInfo{"xrt", desc};
#else
  (void)w;
  return absl::UnimplementedError("this build has no XRT backend");
#endif
}

StatusOr<BackendInfo> OpenBackend(const WorkerConfig& w) {
  std::string note;
  if (w.backend == "xrt") {
    npu::NpuProbeResult probe = npu::NpuProbe();
    LOG_INFO("[npu] {}", probe.Describe());
    if (probe.xrt_built && !probe.hw_context) {
      LOG_WARN("[npu] XRT {} has no hw_context API: this build cannot drive an amdxdna NPU",
               probe.xrt_version);
    }
    note = probe.reason;
    if (probe.usable) {
      auto opened = OpenXrt(w);
      if (opened.ok()) return opened;
      note = std::string(opened.status().message());
    }
    if (!w.allow_cpu_fallback) {
      return absl::FailedPreconditionError(
          absl::StrCat("[npu] backend xrt requested with allow_cpu_fallback: false, but ", note));
    }
    LOG_WARN("[npu] {}: using the CPU backend", note);
  }
  auto ops = std::make_unique<cpu::CpuOps>(cpu::CpuOptions{w.threads});
  std::string desc = ops->Describe();
  g_ops = std::move(ops);
  return BackendInfo{"cpu", desc, note.empty() ? "" : note + ": using the CPU backend"};
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
