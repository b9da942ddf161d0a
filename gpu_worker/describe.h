// What `unicorn doctor` needs to know about the Vulkan devices, without
// Vulkan types (the header is Vulkan-free so that the CLI stays out of the
// Vulkan layer; describe.cc is built into gpu_worker's libraries).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn::vk {

struct DeviceReport {
  int index = 0;
  std::string name;
  std::string type;         // "discrete", "integrated", "cpu", ...
  std::string driver;       // "NVIDIA 580.1", "llvmpipe Mesa 22.3.6"
  std::string api_version;  // "1.3.277"
  uint64_t device_local_bytes = 0;
  uint32_t subgroup_size = 0;
  uint32_t min_subgroup_size = 0, max_subgroup_size = 0;  // 0 without subgroup size control
  bool subgroup_arithmetic = false;
  bool storage_16bit = false;  // storageBuffer16BitAccess (required)
  bool float16 = false, int8 = false;
  bool external_memory_host = false;     // VK_EXT_external_memory_host
  bool external_memory_dma_buf = false;  // VK_EXT_external_memory_dma_buf
  bool usable = false;                   // what gpu_worker's Device::Create requires is present
  std::string problem;                   // why not, when !usable
};

// Every physical device the Vulkan loader finds. UNAVAILABLE when there is
// no Vulkan driver at all.
StatusOr<std::vector<DeviceReport>> DescribeDevices();

}  // namespace unicorn::vk
