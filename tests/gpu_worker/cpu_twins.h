// Plain-loop CPU twins of the Vulkan kernels: the definitions the kernel
// tests hold the shaders to. Clarity over speed; F64 accumulation where it
// makes the twin the more exact side.
#pragma once

#include <cstdint>
#include <vector>

namespace unicorn::vk::testing {

// y[r, :] = x[r, :] / sqrt(mean(x[r, :]^2) + eps) * (1 + w)   x, y: [rows, n]
std::vector<float> RmsNormRef(const std::vector<float>& x, const std::vector<float>& w, int rows,
                              int n, float eps);

}  // namespace unicorn::vk::testing
