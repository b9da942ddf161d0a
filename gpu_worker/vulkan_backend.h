// Registers the Vulkan backend (VulkanOps) as "vulkan". Set
// UNICORN_VK_PROFILE=1 to time every dispatch with GPU timestamps and log a
// per-op table when the backend closes.
#pragma once

#include "model/backend_registry.h"

namespace unicorn::vk {

void RegisterVulkanBackend(BackendRegistry& registry);

}  // namespace unicorn::vk
