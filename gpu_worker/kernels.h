// The compute kernels of the GPU worker: one pipeline per shader variant,
// built once per device, and a typed recording function per op. Each op
// records one dispatch (no barrier): callers place vk::CommandBuffer::Barrier()
// between dependent ops. Buffers are F32 unless said otherwise.
#pragma once

#include <memory>

#include "common/status.h"
#include "gpu_worker/vk/command.h"
#include "gpu_worker/vk/device.h"
#include "gpu_worker/vk/pipeline.h"

namespace unicorn::vk {

class Kernels {
 public:
  static StatusOr<std::unique_ptr<Kernels>> Create(Device& device);

  // Gemma RMSNorm over `rows` rows of `n`: y = x * rsqrt(mean(x^2) + eps) * (1 + w).
  //   x: [rows, x_stride]  w: [n]  y: [rows, y_stride]  (y may be x)
  // QK-norm is this with rows = tokens * heads and n = head_dim.
  void RmsNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w, const SubBuffer& y,
               uint32_t rows, uint32_t n, float eps, uint32_t x_stride = 0,
               uint32_t y_stride = 0) const;

 private:
  explicit Kernels(Device& d) : device_(d) {}
  Device& device_;
  std::unique_ptr<Pipeline> rms_norm_;
};

}  // namespace unicorn::vk
