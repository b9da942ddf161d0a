// Vulkan instance creation and device selection by config.
#pragma once

#include <vulkan/vulkan.h>

#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn::vk {

// Returns a Status for a failed Vulkan call: "[vk] vkCreateDevice: VK_ERROR_...".
Status VkError(const char* what, VkResult r);
const char* VkResultName(VkResult r);

struct PhysicalDeviceInfo {
  VkPhysicalDevice handle = VK_NULL_HANDLE;
  int index = 0;
  std::string name;
  std::string type;  // "discrete", "integrated", "cpu", ...
  uint32_t api_version = 0;
  uint64_t device_local_bytes = 0;
};

// Owns a VkInstance (API 1.2) without any layers or surface extensions.
class Instance {
 public:
  static StatusOr<std::unique_ptr<Instance>> Create();
  ~Instance();
  VkInstance handle() const { return instance_; }

  std::vector<PhysicalDeviceInfo> Devices() const;

  // Picks a device by `selector`: "" = the first discrete, else integrated,
  // else any; a number = that index; text = first name containing it. When
  // nothing matches, the error lists every device found.
  StatusOr<PhysicalDeviceInfo> Select(const std::string& selector) const;

 private:
  explicit Instance(VkInstance i) : instance_(i) {}
  VkInstance instance_;
};

}  // namespace unicorn::vk
