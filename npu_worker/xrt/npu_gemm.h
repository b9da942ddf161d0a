// One GEMM kernel on the NPU: C = A Bt^T for the fixed tile shape its design
// was built for, with the checks that make a "COMPLETED" trustworthy.
//
// Kernel contract (npu_worker/kernels/gemm.py builds designs to it):
//   args: opcode 3, instructions, word count, A, Bt, C   (groups 1, 3, 4, 5)
//   bf16: A bf16 [m, k], Bt bf16 [n, k], C f32 [m, n]
//   int8: A int8 [m, k], Bt int8 [n, k], C i32 [m, n]
// Bt is the weight as model files store it ([out, in], row-major).
//
// Each Run:
//   1. A -> its buffer, synced to the device;
//   2. C filled with a sentinel no real result can equal, synced to the device;
//   3. start, wait; any end state but COMPLETED is an error;
//   4. C synced from the device; any element still equal to the sentinel is
//      an error naming the kernel (amdxdna reports COMPLETED for a kernel
//      given no instructions, so COMPLETED alone proves nothing).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "npu_worker/xrt/npu_device.h"

namespace unicorn::npu {

enum class GemmDType { kBf16, kInt8 };

struct GemmSpec {
  std::string name;                      // for logs and errors, e.g. "q_proj_1152x1024"
  std::string xclbin;                    // path
  std::string insts;                     // instruction file path (instructions.h)
  std::string kernel_name = "MLIR_AIE";  // the kernel's name inside the xclbin
  GemmDType dtype = GemmDType::kBf16;
  int m = 0, k = 0, n = 0;  // tile rows, reduction length, output columns
  int timeout_ms = 10000;   // per run; 0 = no limit
};

// "bf16" / "int8" -> GemmDType.
StatusOr<GemmDType> ParseGemmDType(const std::string& s);

// The sentinels written into C before each run. f32: a NaN whose payload no
// arithmetic produces; i32: above any int8 dot product of k < 2^17 terms
// (|sum| <= 128 * 128 * k).
inline constexpr uint32_t kSentinelF32 = 0x7fa5a5a5u;
inline constexpr uint32_t kSentinelI32 = 0x7f5a5a5au;

class NpuGemm {
 public:
  // Loads the kernel and its instructions, allocates A and C. Errors: bad
  // shape, missing xclbin, bad instruction file, kernel not in the xclbin.
  static StatusOr<std::unique_ptr<NpuGemm>> Create(NpuDevice& device, const GemmSpec& spec);

  const GemmSpec& spec() const { return spec_; }
  size_t elem_bytes() const { return spec_.dtype == GemmDType::kBf16 ? 2 : 1; }
  size_t a_bytes() const { return size_t(spec_.m) * spec_.k * elem_bytes(); }
  size_t b_bytes() const { return size_t(spec_.n) * spec_.k * elem_bytes(); }
  size_t c_bytes() const { return size_t(spec_.m) * spec_.n * 4; }

  // A new buffer holding Bt [n, k] (b_bytes() bytes in the kernel's dtype),
  // synced to the device once.
  StatusOr<std::unique_ptr<NpuBo>> UploadWeight(const void* bt, size_t bytes);

  // c [m, n] (f32 or i32 per dtype; c_bytes()) = a [m, k] (a_bytes()) x weight^T.
  Status Run(const void* a, size_t a_size, NpuBo& weight, void* c, size_t c_size);

 private:
  NpuGemm(NpuDevice& device, GemmSpec spec) : device_(device), spec_(std::move(spec)) {}
  Status Error(const std::string& what) const;

  NpuDevice& device_;
  GemmSpec spec_;
  std::unique_ptr<NpuKernel> kernel_;
  std::unique_ptr<NpuBo> instr_, a_, c_;
  size_t instr_words_ = 0;
};

}  // namespace unicorn::npu
