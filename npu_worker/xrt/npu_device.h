// The small device interface the NPU host logic runs on: XRT implements it
// (xrt_device.h), tests implement a fake (tests/npu_worker/fake_npu_device.h).
// It mirrors how mlir-aie designs are run on the amdxdna driver:
//   xclbin (the array configuration) + kernel name -> NpuKernel;
//   an instruction buffer (the runtime sequence: DMA descriptors) and data
//   buffers, passed as kernel(opcode 3, instr bo, instr words, bo0, bo1, ...);
//   explicit cache syncs: inputs to the device before a run, outputs from the
//   device after it completes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn::npu {

// A buffer object: host-visible memory the NPU reads or writes.
class NpuBo {
 public:
  virtual ~NpuBo() = default;
  virtual size_t bytes() const = 0;
  // The host view; valid for the buffer's life.
  virtual void* map() = 0;
};

// A loaded kernel (xclbin registered, hardware context made, kernel found).
class NpuKernel {
 public:
  virtual ~NpuKernel() = default;
  virtual const std::string& name() const = 0;
};

// One submitted run.
class NpuRun {
 public:
  virtual ~NpuRun() = default;
};

enum class BoKind {
  kInstructions,  // the runtime sequence (cacheable, kernel group 1 in mlir-aie designs)
  kData,          // inputs and outputs (host-only, kernel groups 3, 4, 5...)
};

enum class SyncDir { kToDevice, kFromDevice };

enum class RunState { kCompleted, kError, kTimeout, kAborted };
const char* RunStateName(RunState s);

class NpuDevice {
 public:
  virtual ~NpuDevice() = default;

  // "NPU npu1 ... (XRT 2.20.0)" and the like.
  virtual std::string Describe() const = 0;

  // Loads `xclbin_path` and finds `kernel_name` in it. Errors name the file.
  virtual StatusOr<std::unique_ptr<NpuKernel>> LoadKernel(const std::string& xclbin_path,
                                                          const std::string& kernel_name) = 0;

  // A zero-filled buffer of `bytes` for argument `arg` of `kernel` (the
  // argument decides the memory group).
  virtual StatusOr<std::unique_ptr<NpuBo>> AllocBo(NpuKernel& kernel, int arg, size_t bytes,
                                                   BoKind kind) = 0;

  // A buffer over an exported dma-buf (shared_mem's region fd), so the NPU
  // reads activations without a copy. The fd stays owned by the caller.
  virtual StatusOr<std::unique_ptr<NpuBo>> ImportBo(int dmabuf_fd, size_t bytes) = 0;

  // Makes the device (kToDevice) or the host (kFromDevice) see the latest
  // writes of the other side.
  virtual Status Sync(NpuBo& bo, SyncDir dir) = 0;

  // Starts kernel(3, instr, instr_words, data[0], data[1], ...).
  virtual StatusOr<std::unique_ptr<NpuRun>> Start(NpuKernel& kernel, NpuBo& instr,
                                                  size_t instr_words,
                                                  const std::vector<NpuBo*>& data) = 0;

  // Waits for `run` (timeout_ms 0 = no limit) and returns its end state.
  virtual StatusOr<RunState> Wait(NpuRun& run, int timeout_ms) = 0;
};

// The XRT device at `index` (unicorn_xrt; only in builds with
// UNICORN_WITH_XRT). Errors say why it cannot be opened.
StatusOr<std::unique_ptr<NpuDevice>> OpenXrtDevice(int index);

}  // namespace unicorn::npu
