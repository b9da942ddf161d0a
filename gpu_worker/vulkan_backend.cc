#include "gpu_worker/vulkan_backend.h"

#include <cstdlib>
#include <cstring>

#include "gpu_worker/vulkan_ops.h"

namespace unicorn::vk {

void RegisterVulkanBackend(BackendRegistry& registry) {
  registry.Register("vulkan", "Vulkan compute shaders on a GPU (--device picks one)",
                    [](const BackendOptions& o) -> StatusOr<std::unique_ptr<Ops>> {
                      VulkanOptions vo;
                      vo.device = o.device;
                      const char* prof = std::getenv("UNICORN_VK_PROFILE");
                      vo.profile = prof != nullptr && std::strcmp(prof, "0") != 0;
                      UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<VulkanOps> ops,
                                               VulkanOps::Create(vo));
                      return std::unique_ptr<Ops>(std::move(ops));
                    });
}

}  // namespace unicorn::vk
