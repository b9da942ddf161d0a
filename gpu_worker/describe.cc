#include "gpu_worker/describe.h"

#include <vulkan/vulkan.h>

#include <cstring>

#include "gpu_worker/vk/instance.h"

namespace unicorn::vk {

StatusOr<std::vector<DeviceReport>> DescribeDevices() {
  UNICORN_ASSIGN_OR_RETURN(auto instance, Instance::Create());
  std::vector<DeviceReport> out;
  for (const PhysicalDeviceInfo& pd : instance->Devices()) {
    DeviceReport r;
    r.index = pd.index;
    r.name = pd.name;
    r.type = pd.type;
    r.device_local_bytes = pd.device_local_bytes;
    r.api_version = absl::StrCat(VK_API_VERSION_MAJOR(pd.api_version), ".",
                                 VK_API_VERSION_MINOR(pd.api_version), ".",
                                 VK_API_VERSION_PATCH(pd.api_version));

    uint32_t n = 0;
    vkEnumerateDeviceExtensionProperties(pd.handle, nullptr, &n, nullptr);
    std::vector<VkExtensionProperties> exts(n);
    vkEnumerateDeviceExtensionProperties(pd.handle, nullptr, &n, exts.data());
    bool size_control = false;
    for (const auto& e : exts) {
      if (!strcmp(e.extensionName, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME)) {
        r.external_memory_host = true;
      }
      if (!strcmp(e.extensionName, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME)) {
        r.external_memory_dma_buf = true;
      }
      if (!strcmp(e.extensionName, VK_EXT_SUBGROUP_SIZE_CONTROL_EXTENSION_NAME)) {
        size_control = true;
      }
    }

    bool v12 =
        !(VK_API_VERSION_MAJOR(pd.api_version) == 1 && VK_API_VERSION_MINOR(pd.api_version) < 2);
    if (v12) {
      VkPhysicalDeviceSubgroupSizeControlPropertiesEXT psc{
          VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_SIZE_CONTROL_PROPERTIES_EXT};
      VkPhysicalDeviceVulkan12Properties p12{
          VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
      VkPhysicalDeviceVulkan11Properties p11{
          VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
      p11.pNext = &p12;
      if (size_control) p12.pNext = &psc;
      VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
      props.pNext = &p11;
      vkGetPhysicalDeviceProperties2(pd.handle, &props);
      r.driver = absl::StrCat(p12.driverName, " ", p12.driverInfo);
      r.subgroup_size = p11.subgroupSize;
      r.subgroup_arithmetic =
          (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
          (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
      if (size_control) {
        r.min_subgroup_size = psc.minSubgroupSize;
        r.max_subgroup_size = psc.maxSubgroupSize;
      }
      VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
      VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
      f11.pNext = &f12;
      VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
      feats.pNext = &f11;
      vkGetPhysicalDeviceFeatures2(pd.handle, &feats);
      r.storage_16bit = f11.storageBuffer16BitAccess;
      r.float16 = f12.shaderFloat16;
      r.int8 = f12.shaderInt8 && f12.storageBuffer8BitAccess;
    }
    // The same requirements as Device::Create.
    if (!v12) {
      r.problem = "needs Vulkan 1.2";
    } else if (!r.storage_16bit) {
      r.problem = "lacks storageBuffer16BitAccess";
    } else if (!r.subgroup_arithmetic) {
      r.problem = "lacks subgroup arithmetic in compute shaders";
    }
    r.usable = r.problem.empty();
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace unicorn::vk
