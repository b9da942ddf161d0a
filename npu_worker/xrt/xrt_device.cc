// The NpuDevice on XRT. The only file that includes XRT headers. Every XRT
// call can throw (std::exception); each is caught here and turned into a
// Status that names what was being done.
//
// With XRT's hw_context API (UNICORN_XRT_HAS_HW_CONTEXT, newer XRT), kernels
// are opened the way the amdxdna driver requires: register the xclbin, make a
// hardware context, open the kernel in it. Older XRT (Debian 12's 2.13)
// compiles the legacy path (load_xclbin + kernel on the device), which
// serves Alveo-style devices only; NpuProbe() reports that before start-up
// gets here.
#include "xrt/xrt_device.h"

#include <chrono>
#include <cstring>
#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "npu_worker/xrt/npu_device.h"
#include "xrt/xrt_bo.h"
#include "xrt/xrt_kernel.h"
#if UNICORN_XRT_HAS_HW_CONTEXT
#include "xrt/xrt_hw_context.h"
#endif

namespace unicorn::npu {
namespace {

Status XrtError(const std::string& what, const std::exception& e) {
  return absl::InternalError(absl::StrCat("[xrt] ", what, ": ", e.what()));
}

class XrtBo final : public NpuBo {
 public:
  explicit XrtBo(xrt::bo bo) : bo_(std::move(bo)), host_(bo_.map()) {}
  size_t bytes() const override { return bo_.size(); }
  void* map() override { return host_; }
  xrt::bo& bo() { return bo_; }

 private:
  xrt::bo bo_;
  void* host_;
};

class XrtKernel final : public NpuKernel {
 public:
  XrtKernel(std::string name, xrt::xclbin xclbin,
#if UNICORN_XRT_HAS_HW_CONTEXT
            xrt::hw_context context,
#endif
            xrt::kernel kernel)
      : name_(std::move(name)),
        xclbin_(std::move(xclbin)),
#if UNICORN_XRT_HAS_HW_CONTEXT
        context_(std::move(context)),
#endif
        kernel_(std::move(kernel)) {
  }
  const std::string& name() const override { return name_; }
  xrt::kernel& kernel() { return kernel_; }

 private:
  std::string name_;
  xrt::xclbin xclbin_;
#if UNICORN_XRT_HAS_HW_CONTEXT
  xrt::hw_context context_;  // must outlive the kernel
#endif
  xrt::kernel kernel_;
};

class XrtRun final : public NpuRun {
 public:
  explicit XrtRun(xrt::run run) : run_(std::move(run)) {}
  xrt::run& run() { return run_; }

 private:
  xrt::run run_;
};

class XrtDevice final : public NpuDevice {
 public:
  XrtDevice(int index, xrt::device device) : index_(index), device_(std::move(device)) {}

  std::string Describe() const override {
    std::string name;
    try {
      name = device_.get_info<xrt::info::device::name>();
    } catch (const std::exception&) {
      name = "unknown";
    }
    return absl::StrCat("XRT device ", index_, " (", name, ")");
  }

  StatusOr<std::unique_ptr<NpuKernel>> LoadKernel(const std::string& xclbin_path,
                                                  const std::string& kernel_name) override {
    try {
      xrt::xclbin xclbin(xclbin_path);
      // mlir-aie names the kernel "MLIR_AIE" (or a prefix of its full name).
      std::string full;
      for (const auto& k : xclbin.get_kernels()) {
        if (k.get_name().rfind(kernel_name, 0) == 0) {
          full = k.get_name();
          break;
        }
      }
      if (full.empty()) {
        return absl::NotFoundError(
            absl::StrCat("[xrt] ", xclbin_path, ": no kernel named ", kernel_name));
      }
#if UNICORN_XRT_HAS_HW_CONTEXT
      device_.register_xclbin(xclbin);
      xrt::hw_context context(device_, xclbin.get_uuid());
      xrt::kernel kernel(context, full);
      return std::unique_ptr<NpuKernel>(
          new XrtKernel(full, std::move(xclbin), std::move(context), std::move(kernel)));
#else
      xrt::uuid uuid = device_.load_xclbin(xclbin);
      xrt::kernel kernel(device_, uuid, full);
      return std::unique_ptr<NpuKernel>(new XrtKernel(full, std::move(xclbin), std::move(kernel)));
#endif
    } catch (const std::exception& e) {
      return XrtError(absl::StrCat(xclbin_path, ": loading kernel ", kernel_name), e);
    }
  }

  StatusOr<std::unique_ptr<NpuBo>> AllocBo(NpuKernel& kernel, int arg, size_t bytes,
                                           BoKind kind) override {
    try {
      auto& k = static_cast<XrtKernel&>(kernel).kernel();
      auto flags =
          kind == BoKind::kInstructions ? xrt::bo::flags::cacheable : xrt::bo::flags::host_only;
      auto bo = std::make_unique<XrtBo>(xrt::bo(device_, bytes, flags, k.group_id(arg)));
      std::memset(bo->map(), 0, bytes);
      return std::unique_ptr<NpuBo>(std::move(bo));
    } catch (const std::exception& e) {
      return XrtError(absl::StrCat("allocating ", bytes, " bytes for argument ", arg), e);
    }
  }

  StatusOr<std::unique_ptr<NpuBo>> ImportBo(int dmabuf_fd, size_t bytes) override {
    try {
      xrt::bo bo(device_, static_cast<xclBufferExportHandle>(dmabuf_fd));
      if (bo.size() < bytes) {
        return absl::InvalidArgumentError(absl::StrCat(
            "[xrt] imported dma-buf fd ", dmabuf_fd, " holds ", bo.size(), " bytes, need ", bytes));
      }
      return std::unique_ptr<NpuBo>(new XrtBo(std::move(bo)));
    } catch (const std::exception& e) {
      return XrtError(absl::StrCat("importing dma-buf fd ", dmabuf_fd), e);
    }
  }

  Status Sync(NpuBo& bo, SyncDir dir) override {
    try {
      static_cast<XrtBo&>(bo).bo().sync(dir == SyncDir::kToDevice ? XCL_BO_SYNC_BO_TO_DEVICE
                                                                  : XCL_BO_SYNC_BO_FROM_DEVICE);
      return absl::OkStatus();
    } catch (const std::exception& e) {
      return XrtError("buffer sync", e);
    }
  }

  StatusOr<std::unique_ptr<NpuRun>> Start(NpuKernel& kernel, NpuBo& instr, size_t instr_words,
                                          const std::vector<NpuBo*>& data) override {
    try {
      xrt::run run(static_cast<XrtKernel&>(kernel).kernel());
      unsigned int opcode = 3;  // mlir-aie: "run the instruction sequence"
      run.set_arg(0, opcode);
      run.set_arg(1, static_cast<XrtBo&>(instr).bo());
      run.set_arg(2, static_cast<uint32_t>(instr_words));
      for (size_t i = 0; i < data.size(); ++i) {
        run.set_arg(int(3 + i), static_cast<XrtBo*>(data[i])->bo());
      }
      run.start();
      return std::unique_ptr<NpuRun>(new XrtRun(std::move(run)));
    } catch (const std::exception& e) {
      return XrtError(absl::StrCat("starting kernel ", kernel.name()), e);
    }
  }

  StatusOr<RunState> Wait(NpuRun& run, int timeout_ms) override {
    try {
      ert_cmd_state s = static_cast<XrtRun&>(run).run().wait(std::chrono::milliseconds(timeout_ms));
      switch (s) {
        case ERT_CMD_STATE_COMPLETED:
          return RunState::kCompleted;
        case ERT_CMD_STATE_TIMEOUT:
        case ERT_CMD_STATE_NEW:
        case ERT_CMD_STATE_QUEUED:
        case ERT_CMD_STATE_RUNNING:
        case ERT_CMD_STATE_SUBMITTED:
          return RunState::kTimeout;  // wait() returns the live state when it timed out
        case ERT_CMD_STATE_ABORT:
          return RunState::kAborted;
        default:
          return RunState::kError;
      }
    } catch (const std::exception& e) {
      return XrtError("waiting for a run", e);
    }
  }

 private:
  int index_;
  xrt::device device_;
};

}  // namespace

StatusOr<std::unique_ptr<NpuDevice>> OpenXrtDevice(int index) {
  try {
    xrt::device device(static_cast<unsigned int>(index));
    return std::unique_ptr<NpuDevice>(new XrtDevice(index, std::move(device)));
  } catch (const std::exception& e) {
    return XrtError(absl::StrCat("opening device ", index), e);
  }
}

}  // namespace unicorn::npu
