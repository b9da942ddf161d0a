#include "gpu_worker/kernels.h"

#include "gpu_worker/shaders.h"
#include "gpu_worker/shaders/push_constants.h"

namespace unicorn::vk {

StatusOr<std::unique_ptr<Kernels>> Kernels::Create(Device& device) {
  std::unique_ptr<Kernels> k(new Kernels(device));
  UNICORN_ASSIGN_OR_RETURN(k->rms_norm_,
                           Pipeline::Create(device, {.name = "rms_norm",
                                                     .spirv = shaders::rms_norm_spv,
                                                     .spirv_bytes = shaders::rms_norm_spv_size,
                                                     .push_constant_bytes = sizeof(RmsNormPush),
                                                     .num_buffers = 3,
                                                     .workgroup = {256, 1, 1}}));
  return k;
}

void Kernels::RmsNorm(CommandBuffer& cmd, const SubBuffer& x, const SubBuffer& w,
                      const SubBuffer& y, uint32_t rows, uint32_t n, float eps, uint32_t x_stride,
                      uint32_t y_stride) const {
  RmsNormPush p{n, x_stride ? x_stride : n, y_stride ? y_stride : n, eps};
  cmd.Dispatch(*rms_norm_, {x, w, y}, p, {rows, 1, 1});
}

}  // namespace unicorn::vk
