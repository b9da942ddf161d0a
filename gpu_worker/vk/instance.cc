#include "gpu_worker/vk/instance.h"

#include <algorithm>
#include <cctype>
#include <memory>

namespace unicorn::vk {

const char* VkResultName(VkResult r) {
  switch (r) {
#define CASE(x) \
  case x:       \
    return #x;
    CASE(VK_SUCCESS)
    CASE(VK_NOT_READY)
    CASE(VK_TIMEOUT)
    CASE(VK_INCOMPLETE)
    CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
    CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
    CASE(VK_ERROR_INITIALIZATION_FAILED)
    CASE(VK_ERROR_DEVICE_LOST)
    CASE(VK_ERROR_MEMORY_MAP_FAILED)
    CASE(VK_ERROR_LAYER_NOT_PRESENT)
    CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
    CASE(VK_ERROR_FEATURE_NOT_PRESENT)
    CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
    CASE(VK_ERROR_TOO_MANY_OBJECTS)
    CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
    CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
    CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
#undef CASE
    default:
      return "VK_ERROR_(unknown)";
  }
}

Status VkError(const char* what, VkResult r) {
  std::string msg = absl::StrCat("[vk] ", what, ": ", VkResultName(r));
  if (r == VK_ERROR_OUT_OF_DEVICE_MEMORY || r == VK_ERROR_OUT_OF_HOST_MEMORY) {
    return absl::ResourceExhaustedError(msg);
  }
  if (r == VK_ERROR_INCOMPATIBLE_DRIVER || r == VK_ERROR_INITIALIZATION_FAILED) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

StatusOr<std::unique_ptr<Instance>> Instance::Create() {
  VkApplicationInfo app{VK_STRUCTURE_TYPE_APPLICATION_INFO};
  app.pApplicationName = "unicorn";
  app.apiVersion = VK_API_VERSION_1_2;
  VkInstanceCreateInfo ci{VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO};
  ci.pApplicationInfo = &app;
  VkInstance inst = VK_NULL_HANDLE;
  VkResult r = vkCreateInstance(&ci, nullptr, &inst);
  if (r != VK_SUCCESS) {
    Status s = VkError("vkCreateInstance", r);
    return Status(s.code(), absl::StrCat(s.message(),
                                         " (is a Vulkan driver installed? lavapipe: "
                                         "apt-get install mesa-vulkan-drivers)"));
  }
  return std::unique_ptr<Instance>(new Instance(inst));
}

Instance::~Instance() {
  if (instance_ != VK_NULL_HANDLE) vkDestroyInstance(instance_, nullptr);
}

std::vector<PhysicalDeviceInfo> Instance::Devices() const {
  uint32_t n = 0;
  vkEnumeratePhysicalDevices(instance_, &n, nullptr);
  std::vector<VkPhysicalDevice> devs(n);
  vkEnumeratePhysicalDevices(instance_, &n, devs.data());
  std::vector<PhysicalDeviceInfo> out;
  for (uint32_t i = 0; i < n; ++i) {
    VkPhysicalDeviceProperties p;
    vkGetPhysicalDeviceProperties(devs[i], &p);
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceMemoryProperties(devs[i], &mp);
    PhysicalDeviceInfo d;
    d.handle = devs[i];
    d.index = int(i);
    d.name = p.deviceName;
    d.api_version = p.apiVersion;
    switch (p.deviceType) {
      case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU:
        d.type = "discrete";
        break;
      case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU:
        d.type = "integrated";
        break;
      case VK_PHYSICAL_DEVICE_TYPE_CPU:
        d.type = "cpu";
        break;
      default:
        d.type = "other";
    }
    for (uint32_t h = 0; h < mp.memoryHeapCount; ++h) {
      if (mp.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
        d.device_local_bytes += mp.memoryHeaps[h].size;
      }
    }
    out.push_back(d);
  }
  return out;
}

StatusOr<PhysicalDeviceInfo> Instance::Select(const std::string& selector) const {
  std::vector<PhysicalDeviceInfo> devs = Devices();
  if (devs.empty()) {
    return absl::NotFoundError(
        "[vk] no Vulkan device found (lavapipe: apt-get install mesa-vulkan-drivers)");
  }
  if (selector.empty()) {
    for (const char* want : {"discrete", "integrated"}) {
      for (const auto& d : devs) {
        if (d.type == want) return d;
      }
    }
    return devs[0];
  }
  bool numeric = std::all_of(selector.begin(), selector.end(), ::isdigit);
  for (const auto& d : devs) {
    if (numeric ? d.index == std::stoi(selector) : d.name.find(selector) != std::string::npos) {
      return d;
    }
  }
  std::string list;
  for (const auto& d : devs)
    absl::StrAppend(&list, "\n  ", d.index, ": ", d.name, " (", d.type, ")");
  return absl::NotFoundError(
      absl::StrCat("[vk] no Vulkan device matches '", selector, "'; devices found:", list));
}

}  // namespace unicorn::vk
