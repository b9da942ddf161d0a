// A fake NpuDevice for host-side tests. It keeps a host and a device copy of
// every buffer, so a missing sync shows up as stale data, records every call
// in order, and runs a test-supplied program on the device copies when a run
// is waited on. It computes nothing by itself: tests give it the reference
// they expect, and knobs make it misbehave the ways real hardware does.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "npu_worker/xrt/npu_device.h"
#include "npu_worker/xrt/npu_gemm.h"

namespace unicorn::npu::testing {

class FakeNpuDevice final : public NpuDevice {
 public:
  // A kernel's effect: reads and writes the device copies of its data args.
  using Program = std::function<void(const std::vector<std::vector<uint8_t>*>& device_args)>;

  // LoadKernel(path, name) succeeds for an existing file and a registered name.
  void AddKernel(const std::string& name, Program program) { programs_[name] = std::move(program); }

  // Knobs.
  bool forget_write =
      false;  // report COMPLETED without running the program (amdxdna, no instructions)
  RunState end_state = RunState::kCompleted;
  int fail_alloc_after = -1;  // AllocBo fails once this many buffers exist (-1 = never)

  // "to:arg3", "from:arg5", "start:<kernel>", "wait", "alloc:arg4", "import".
  std::vector<std::string> events;

  std::string Describe() const override { return "fake NPU"; }
  StatusOr<std::unique_ptr<NpuKernel>> LoadKernel(const std::string& xclbin_path,
                                                  const std::string& kernel_name) override;
  StatusOr<std::unique_ptr<NpuBo>> AllocBo(NpuKernel& kernel, int arg, size_t bytes,
                                           BoKind kind) override;
  StatusOr<std::unique_ptr<NpuBo>> ImportBo(int dmabuf_fd, size_t bytes) override;
  Status Sync(NpuBo& bo, SyncDir dir) override;
  StatusOr<std::unique_ptr<NpuRun>> Start(NpuKernel& kernel, NpuBo& instr, size_t instr_words,
                                          const std::vector<NpuBo*>& data) override;
  StatusOr<RunState> Wait(NpuRun& run, int timeout_ms) override;

 private:
  std::map<std::string, Program> programs_;
  int buffers_ = 0;
};

// The reference GEMM of npu_gemm.h's contract on the device copies:
// bf16: C f32 = A bf16 x Bt bf16^T; int8: C i32 = A i8 x Bt i8^T.
FakeNpuDevice::Program GemmProgram(GemmDType dtype, int m, int k, int n);

}  // namespace unicorn::npu::testing
