// Push-constant structs of every kernel, shared by C++ and GLSL: the same
// text is compiled by both (glslc includes this file), so the layouts cannot
// drift. Members are 4-byte scalars only (uint, int, float), which lay out
// identically under C++ and GLSL's std430 push-constant rules; C++ checks each
// size (<= 128 bytes, the smallest maxPushConstantsSize Vulkan guarantees).
#ifndef UNICORN_GPU_WORKER_SHADERS_PUSH_CONSTANTS_H_
#define UNICORN_GPU_WORKER_SHADERS_PUSH_CONSTANTS_H_

#ifdef __cplusplus
#include <cstdint>
namespace unicorn::vk {
using uint = uint32_t;
#define UNICORN_PUSH_SIZE(T, bytes) \
  static_assert(sizeof(T) == (bytes) && sizeof(T) <= 128, #T " size changed");
#else
#define UNICORN_PUSH_SIZE(T, bytes)
#endif

// rms_norm.comp: y[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * (1 + w),
// one workgroup per row r (dispatch rows x 1 x 1). Rows are `n` long and lie
// `x_stride` / `y_stride` floats apart, so QK-norm runs it over heads.
struct RmsNormPush {
  uint n;
  uint x_stride;
  uint y_stride;
  float eps;
};
UNICORN_PUSH_SIZE(RmsNormPush, 16)

#ifdef __cplusplus
}  // namespace unicorn::vk
#endif

#endif  // UNICORN_GPU_WORKER_SHADERS_PUSH_CONSTANTS_H_
