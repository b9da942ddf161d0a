// A logical Vulkan device with one compute queue, created from the physical
// device that Instance::Select() chose. Everything else in gpu_worker/vk
// (buffers, pipelines, command buffers) is made from a Device and must be
// destroyed before it.
#pragma once

#include <vulkan/vulkan.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "gpu_worker/vk/instance.h"

namespace unicorn::vk {

class Allocator;
class PipelineCache;

// What the kernels and the allocator need to know about the device.
struct DeviceCaps {
  std::string name;
  std::string type;         // "discrete", "integrated", "cpu", ...
  std::string driver_name;  // "NVIDIA", "llvmpipe", ...
  std::string driver_info;  // driver version text
  uint32_t api_version = 0;
  uint32_t vendor_id = 0;
  uint32_t subgroup_size = 0;
  bool subgroup_arithmetic = false;  // subgroupAdd/Max in compute shaders
  bool subgroup_shuffle = false;     // subgroupShuffleXor in compute shaders
  bool shader_float16 = false;       // float16_t arithmetic
  bool shader_int8 = false;          // int8 arithmetic + 8-bit storage
  // Packed 4 x int8 dot products in shaders (VK_KHR_shader_integer_dot_product,
  // core in 1.3), and whether the device says they run in hardware.
  bool int8_dot = false;
  bool int8_dot_accelerated = false;
  // Tensor cores: 16 x 16 x 16 F16 fragments with F32 sums per subgroup of
  // 32 (VK_NV_cooperative_matrix, F16 arithmetic, the Vulkan memory model).
  bool coopmat_nv = false;
  uint64_t device_local_bytes = 0;        // sum of device-local heaps
  uint64_t host_visible_local_bytes = 0;  // heaps that are device-local and mappable
  uint32_t max_shared_memory = 0;         // bytes per workgroup
  uint32_t max_workgroup_invocations = 0;
  uint32_t max_push_constants = 0;
  VkDeviceSize min_storage_offset_alignment = 0;
  VkDeviceSize max_storage_buffer_range = 0;
  bool timestamps = false;         // the compute queue can write timestamps
  double timestamp_period_ns = 0;  // nanoseconds per timestamp tick
  uint32_t timestamp_valid_bits = 0;
  // VK_EXT_calibrated_timestamps with both the device's and CLOCK_MONOTONIC's
  // time domains: device ticks can be put on the host clock
  // (Device::CalibratedTimestamps).
  bool calibrated_timestamps = false;
  // External memory (vk/external_memory.h), each enabled when the device has it.
  bool external_memory_host = false;             // VK_EXT_external_memory_host
  bool external_memory_dma_buf = false;          // VK_EXT_external_memory_dma_buf (+ _fd)
  VkDeviceSize min_imported_host_alignment = 0;  // of pointer and size (host import)
};

class Device {
 public:
  // Creates the logical device and its compute queue on `pd` (a device of
  // `instance`, which the Device keeps alive). Needs Vulkan 1.2 and 16-bit
  // storage buffer access; fails with a message naming what is missing.
  static StatusOr<std::unique_ptr<Device>> Create(std::shared_ptr<Instance> instance,
                                                  const PhysicalDeviceInfo& pd);
  // Instance::Create + Select(selector) + Create: the usual way in.
  static StatusOr<std::unique_ptr<Device>> Open(const std::string& selector);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  VkDevice handle() const { return device_; }
  VkPhysicalDevice physical() const { return physical_; }
  VkQueue queue() const { return queue_; }
  uint32_t queue_family() const { return queue_family_; }
  const DeviceCaps& caps() const { return caps_; }
  const VkPhysicalDeviceMemoryProperties& memory_properties() const { return memory_; }
  Allocator& allocator() { return *allocator_; }
  PipelineCache& pipeline_cache() { return *pipeline_cache_; }

  // "NVIDIA H100 (discrete), driver NVIDIA 580.1, 79.6 GiB device-local"
  std::string Describe() const;

  // Submits `cmd` to the queue and blocks until it has run.
  Status SubmitAndWait(VkCommandBuffer cmd);
  // Submits `cmds` in order as one submission and blocks until all have run
  // (a barrier in one covers the commands of those before it).
  Status SubmitAndWait(const std::vector<VkCommandBuffer>& cmds);
  // The same, timed by a prediction: with spin_ns > 0 it blocks in the
  // driver until spin_ns before `predicted_ns` after the submit (0: no
  // prediction), then polls the fence until spin_ns past it, and only then
  // blocks again. A thread woken by the GPU's interrupt on a sleeping core
  // costs tens to hundreds of microseconds per step; one woken by its own
  // timeout before the work is done, and polling, does not. `took_ns` (may
  // be null) gets the time from the submit to the fence's signal as seen.
  Status SubmitAndWait(const std::vector<VkCommandBuffer>& cmds, int64_t predicted_ns,
                       int64_t spin_ns, int64_t* took_ns);
  Status WaitIdle();

  // One sample of the device's timestamp counter and CLOCK_MONOTONIC (ns)
  // taken together (vkGetCalibratedTimestampsEXT); `deviation_ns` bounds how
  // far apart the two samples may lie. Unavailable without
  // caps().calibrated_timestamps.
  Status CalibratedTimestamps(uint64_t* device_ticks, int64_t* monotonic_ns,
                              uint64_t* deviation_ns);

 private:
  Device() = default;
  std::shared_ptr<Instance> instance_;
  VkPhysicalDevice physical_ = VK_NULL_HANDLE;
  VkDevice device_ = VK_NULL_HANDLE;
  VkQueue queue_ = VK_NULL_HANDLE;
  uint32_t queue_family_ = 0;
  VkFence fence_ = VK_NULL_HANDLE;
  DeviceCaps caps_;
  VkPhysicalDeviceMemoryProperties memory_{};
  std::unique_ptr<Allocator> allocator_;
  std::unique_ptr<PipelineCache> pipeline_cache_;
  PFN_vkGetCalibratedTimestampsEXT get_calibrated_ = nullptr;
};

}  // namespace unicorn::vk
