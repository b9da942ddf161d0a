#include "tests/npu_worker/fake_npu_device.h"

#include <sys/mman.h>

#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "model/quant.h"

namespace unicorn::npu::testing {
namespace {

class FakeBo final : public NpuBo {
 public:
  FakeBo(std::string label, size_t bytes)
      : label_(std::move(label)), host_(bytes), device_(bytes) {}
  FakeBo(std::string label, void* mapped, size_t bytes)
      : label_(std::move(label)), mapped_(mapped), mapped_bytes_(bytes) {}
  ~FakeBo() override {
    if (mapped_ != nullptr) munmap(mapped_, mapped_bytes_);
  }
  size_t bytes() const override { return mapped_ ? mapped_bytes_ : host_.size(); }
  void* map() override { return mapped_ ? mapped_ : host_.data(); }
  const std::string& label() const { return label_; }
  // An imported dma-buf is coherent: host and device see one memory.
  std::vector<uint8_t>& host() { return host_; }
  std::vector<uint8_t>& device() { return device_; }
  bool imported() const { return mapped_ != nullptr; }

 private:
  std::string label_;
  std::vector<uint8_t> host_, device_;
  void* mapped_ = nullptr;
  size_t mapped_bytes_ = 0;
};

class FakeKernel final : public NpuKernel {
 public:
  FakeKernel(std::string name, FakeNpuDevice::Program p)
      : name_(std::move(name)), program(std::move(p)) {}
  const std::string& name() const override { return name_; }

 private:
  std::string name_;

 public:
  FakeNpuDevice::Program program;
};

class FakeRun final : public NpuRun {
 public:
  FakeKernel* kernel = nullptr;
  std::vector<FakeBo*> data;
  bool has_instructions = false;
};

}  // namespace

StatusOr<std::unique_ptr<NpuKernel>> FakeNpuDevice::LoadKernel(const std::string& xclbin_path,
                                                               const std::string& kernel_name) {
  if (!std::filesystem::exists(xclbin_path)) {
    return absl::NotFoundError(absl::StrCat("[fake] ", xclbin_path, ": no such xclbin"));
  }
  auto it = programs_.find(kernel_name);
  if (it == programs_.end()) {
    return absl::NotFoundError(
        absl::StrCat("[fake] ", xclbin_path, ": no kernel named ", kernel_name));
  }
  events.push_back("load:" + kernel_name);
  return std::unique_ptr<NpuKernel>(new FakeKernel(kernel_name, it->second));
}

StatusOr<std::unique_ptr<NpuBo>> FakeNpuDevice::AllocBo(NpuKernel&, int arg, size_t bytes, BoKind) {
  if (fail_alloc_after >= 0 && buffers_ >= fail_alloc_after) {
    return absl::ResourceExhaustedError(absl::StrCat("[fake] out of buffers allocating ", bytes));
  }
  ++buffers_;
  std::string label = absl::StrCat("arg", arg);
  events.push_back("alloc:" + label);
  return std::unique_ptr<NpuBo>(new FakeBo(label, bytes));
}

StatusOr<std::unique_ptr<NpuBo>> FakeNpuDevice::ImportBo(int dmabuf_fd, size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, dmabuf_fd, 0);
  if (p == MAP_FAILED) {
    return absl::InvalidArgumentError(absl::StrCat("[fake] cannot map fd ", dmabuf_fd));
  }
  events.push_back("import");
  return std::unique_ptr<NpuBo>(new FakeBo("import", p, bytes));
}

Status FakeNpuDevice::Sync(NpuBo& b, SyncDir dir) {
  auto& bo = static_cast<FakeBo&>(b);
  events.push_back(absl::StrCat(dir == SyncDir::kToDevice ? "to:" : "from:", bo.label()));
  if (bo.imported()) return absl::OkStatus();
  if (dir == SyncDir::kToDevice) {
    bo.device() = bo.host();
  } else {
    bo.host() = bo.device();
  }
  return absl::OkStatus();
}

StatusOr<std::unique_ptr<NpuRun>> FakeNpuDevice::Start(NpuKernel& kernel, NpuBo& instr,
                                                       size_t instr_words,
                                                       const std::vector<NpuBo*>& data) {
  events.push_back("start:" + kernel.name());
  auto run = std::make_unique<FakeRun>();
  run->kernel = static_cast<FakeKernel*>(&kernel);
  for (NpuBo* b : data) run->data.push_back(static_cast<FakeBo*>(b));
  // Like the NPU, it runs what reached the device: unsynced instructions are zeros.
  auto& dev = static_cast<FakeBo&>(instr).device();
  for (uint8_t v : dev) run->has_instructions = run->has_instructions || v != 0;
  run->has_instructions = run->has_instructions && instr_words * 4 <= dev.size() && instr_words > 0;
  return std::unique_ptr<NpuRun>(std::move(run));
}

StatusOr<RunState> FakeNpuDevice::Wait(NpuRun& r, int) {
  events.push_back("wait");
  auto& run = static_cast<FakeRun&>(r);
  if (end_state != RunState::kCompleted) return end_state;
  if (!forget_write && run.has_instructions) {
    std::vector<std::vector<uint8_t>*> args;
    for (FakeBo* b : run.data) args.push_back(&b->device());
    run.kernel->program(args);
  }
  return RunState::kCompleted;
}

FakeNpuDevice::Program GemmProgram(GemmDType dtype, int m, int k, int n) {
  return [=](const std::vector<std::vector<uint8_t>*>& a) {
    const auto& A = *a[0];
    const auto& B = *a[1];
    auto& Cb = *a[2];
    for (int i = 0; i < m; ++i) {
      for (int j = 0; j < n; ++j) {
        if (dtype == GemmDType::kBf16) {
          const uint16_t* x = reinterpret_cast<const uint16_t*>(A.data()) + size_t(i) * k;
          const uint16_t* w = reinterpret_cast<const uint16_t*>(B.data()) + size_t(j) * k;
          float s = 0.0f;
          for (int t = 0; t < k; ++t) s += BF16ToF32(x[t]) * BF16ToF32(w[t]);
          std::memcpy(Cb.data() + (size_t(i) * n + j) * 4, &s, 4);
        } else {
          const int8_t* x = reinterpret_cast<const int8_t*>(A.data()) + size_t(i) * k;
          const int8_t* w = reinterpret_cast<const int8_t*>(B.data()) + size_t(j) * k;
          int32_t s = 0;
          for (int t = 0; t < k; ++t) s += int32_t(x[t]) * int32_t(w[t]);
          std::memcpy(Cb.data() + (size_t(i) * n + j) * 4, &s, 4);
        }
      }
    }
  };
}

}  // namespace unicorn::npu::testing
