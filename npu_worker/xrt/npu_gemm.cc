#include "npu_worker/xrt/npu_gemm.h"

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "npu_worker/xrt/instructions.h"

namespace unicorn::npu {

const char* RunStateName(RunState s) {
  switch (s) {
    case RunState::kCompleted:
      return "COMPLETED";
    case RunState::kError:
      return "ERROR";
    case RunState::kTimeout:
      return "TIMEOUT";
    case RunState::kAborted:
      return "ABORTED";
  }
  return "?";
}

StatusOr<GemmDType> ParseGemmDType(const std::string& s) {
  if (s == "bf16") return GemmDType::kBf16;
  if (s == "int8") return GemmDType::kInt8;
  return absl::InvalidArgumentError(
      absl::StrCat("[npu] GEMM dtype '", s, "': expected bf16 or int8"));
}

Status NpuGemm::Error(const std::string& what) const {
  return absl::InternalError(absl::StrCat("[npu] kernel ", spec_.name, ": ", what));
}

StatusOr<std::unique_ptr<NpuGemm>> NpuGemm::Create(NpuDevice& device, const GemmSpec& spec) {
  const std::string where = absl::StrCat("[npu] kernel ", spec.name, ": ");
  if (spec.m <= 0 || spec.k <= 0 || spec.n <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(where, "shape m ", spec.m, ", k ", spec.k,
                                                   ", n ", spec.n, " must be positive"));
  }
  if (spec.dtype == GemmDType::kInt8 && spec.k >= (1 << 17)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, "k ", spec.k, " too long for the int8 sentinel (k < 131072)"));
  }
  std::unique_ptr<NpuGemm> g(new NpuGemm(device, spec));
  auto words = LoadInstructions(spec.insts);
  if (!words.ok())
    return absl::Status(words.status().code(), where + std::string(words.status().message()));
  auto kernel = device.LoadKernel(spec.xclbin, spec.kernel_name);
  if (!kernel.ok())
    return absl::Status(kernel.status().code(), where + std::string(kernel.status().message()));
  g->kernel_ = std::move(*kernel);
  g->instr_words_ = words->size();
  UNICORN_ASSIGN_OR_RETURN(
      g->instr_, device.AllocBo(*g->kernel_, 1, words->size() * 4, BoKind::kInstructions));
  std::memcpy(g->instr_->map(), words->data(), words->size() * 4);
  UNICORN_RETURN_IF_ERROR(device.Sync(*g->instr_, SyncDir::kToDevice));
  UNICORN_ASSIGN_OR_RETURN(g->a_, device.AllocBo(*g->kernel_, 3, g->a_bytes(), BoKind::kData));
  UNICORN_ASSIGN_OR_RETURN(g->c_, device.AllocBo(*g->kernel_, 5, g->c_bytes(), BoKind::kData));
  return g;
}

StatusOr<std::unique_ptr<NpuBo>> NpuGemm::UploadWeight(const void* bt, size_t bytes) {
  if (bytes != b_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat("[npu] kernel ", spec_.name, ": weight is ",
                                                   bytes, " bytes, the kernel takes ", b_bytes(),
                                                   " (n ", spec_.n, " x k ", spec_.k, ")"));
  }
  UNICORN_ASSIGN_OR_RETURN(auto bo, device_.AllocBo(*kernel_, 4, bytes, BoKind::kData));
  std::memcpy(bo->map(), bt, bytes);
  UNICORN_RETURN_IF_ERROR(device_.Sync(*bo, SyncDir::kToDevice));
  return bo;
}

Status NpuGemm::Run(const void* a, size_t a_size, NpuBo& weight, void* c, size_t c_size) {
  if (a_size != a_bytes() || c_size != c_bytes() || weight.bytes() != b_bytes()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[npu] kernel ", spec_.name, ": shape mismatch: A ", a_size, " bytes (expected ", a_bytes(),
        "), weight ", weight.bytes(), " (expected ", b_bytes(), "), C ", c_size, " (expected ",
        c_bytes(), ") for m ", spec_.m, ", k ", spec_.k, ", n ", spec_.n));
  }
  // Inputs to the device before the run.
  std::memcpy(a_->map(), a, a_size);
  UNICORN_RETURN_IF_ERROR(device_.Sync(*a_, SyncDir::kToDevice));
  const uint32_t sentinel = spec_.dtype == GemmDType::kBf16 ? kSentinelF32 : kSentinelI32;
  uint32_t* out = static_cast<uint32_t*>(c_->map());
  const size_t count = c_size / 4;
  for (size_t i = 0; i < count; ++i) out[i] = sentinel;
  UNICORN_RETURN_IF_ERROR(device_.Sync(*c_, SyncDir::kToDevice));

  UNICORN_ASSIGN_OR_RETURN(
      auto run, device_.Start(*kernel_, *instr_, instr_words_, {a_.get(), &weight, c_.get()}));
  UNICORN_ASSIGN_OR_RETURN(RunState state, device_.Wait(*run, spec_.timeout_ms));
  if (state != RunState::kCompleted) {
    return Error(absl::StrCat("run ended ", RunStateName(state)));
  }
  // Outputs from the device after the wait.
  UNICORN_RETURN_IF_ERROR(device_.Sync(*c_, SyncDir::kFromDevice));
  size_t untouched = 0, first = count;
  for (size_t i = 0; i < count; ++i) {
    if (out[i] == sentinel) {
      if (untouched++ == 0) first = i;
    }
  }
  if (untouched != 0) {
    return Error(absl::StrFormat(
        "reported COMPLETED but left %d of %d output elements unwritten (sentinel 0x%08x, first "
        "at element %d): the kernel did not run (empty or wrong instruction sequence?)",
        untouched, count, sentinel, first));
  }
  std::memcpy(c, out, c_size);
  return absl::OkStatus();
}

}  // namespace unicorn::npu
