#include "gpu_worker/vk/device.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "gpu_worker/vk/memory.h"
#include "gpu_worker/vk/pipeline.h"

namespace unicorn::vk {
namespace {

// Prefers a compute-only queue family (NVIDIA and AMD have one, it runs
// beside graphics work), then any family with compute.
StatusOr<uint32_t> PickComputeFamily(VkPhysicalDevice pd, uint32_t* timestamp_bits) {
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, nullptr);
  std::vector<VkQueueFamilyProperties> fams(n);
  vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, fams.data());
  int best = -1;
  for (uint32_t i = 0; i < n; ++i) {
    if (!(fams[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
    bool compute_only = !(fams[i].queueFlags & VK_QUEUE_GRAPHICS_BIT);
    if (best < 0 || (compute_only && (fams[best].queueFlags & VK_QUEUE_GRAPHICS_BIT))) {
      best = int(i);
    }
  }
  if (best < 0) return absl::UnavailableError("[vk] device has no compute queue");
  *timestamp_bits = fams[best].timestampValidBits;
  return uint32_t(best);
}

bool HasExtension(const std::vector<VkExtensionProperties>& exts, const char* name) {
  for (const VkExtensionProperties& e : exts) {
    if (std::strcmp(e.extensionName, name) == 0) return true;
  }
  return false;
}

// Whether the device offers both time domains that calibration needs.
bool CanCalibrate(VkInstance instance, VkPhysicalDevice pd) {
  auto get_domains = reinterpret_cast<PFN_vkGetPhysicalDeviceCalibrateableTimeDomainsEXT>(
      vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCalibrateableTimeDomainsEXT"));
  if (get_domains == nullptr) return false;
  uint32_t n = 0;
  if (get_domains(pd, &n, nullptr) != VK_SUCCESS) return false;
  std::vector<VkTimeDomainEXT> domains(n);
  if (get_domains(pd, &n, domains.data()) != VK_SUCCESS) return false;
  bool device = false, monotonic = false;
  for (VkTimeDomainEXT d : domains) {
    device |= d == VK_TIME_DOMAIN_DEVICE_EXT;
    monotonic |= d == VK_TIME_DOMAIN_CLOCK_MONOTONIC_EXT;
  }
  return device && monotonic;
}

// Whether the device multiplies 16 x 16 x 16 F16 fragments into F32 sums
// per subgroup (VK_NV_cooperative_matrix; matmul_coop.comp).
bool HasCoopMatF16(VkInstance instance, VkPhysicalDevice pd) {
  auto get_props = reinterpret_cast<PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV>(
      vkGetInstanceProcAddr(instance, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV"));
  if (get_props == nullptr) return false;
  uint32_t n = 0;
  if (get_props(pd, &n, nullptr) != VK_SUCCESS) return false;
  std::vector<VkCooperativeMatrixPropertiesNV> props(
      n, {VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV});
  if (get_props(pd, &n, props.data()) != VK_SUCCESS) return false;
  for (const VkCooperativeMatrixPropertiesNV& q : props) {
    if (q.MSize == 16 && q.NSize == 16 && q.KSize == 16 &&
        q.AType == VK_COMPONENT_TYPE_FLOAT16_NV && q.BType == VK_COMPONENT_TYPE_FLOAT16_NV &&
        q.CType == VK_COMPONENT_TYPE_FLOAT32_NV && q.DType == VK_COMPONENT_TYPE_FLOAT32_NV &&
        q.scope == VK_SCOPE_SUBGROUP_NV) {
      return true;
    }
  }
  return false;
}

}  // namespace

StatusOr<std::unique_ptr<Device>> Device::Open(const std::string& selector) {
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<Instance> inst, Instance::Create());
  std::shared_ptr<Instance> shared(std::move(inst));
  UNICORN_ASSIGN_OR_RETURN(PhysicalDeviceInfo pd, shared->Select(selector));
  return Create(shared, pd);
}

StatusOr<std::unique_ptr<Device>> Device::Create(std::shared_ptr<Instance> instance,
                                                 const PhysicalDeviceInfo& pd) {
  std::string where = absl::StrCat("[vk] ", pd.name, ": ");
  if (VK_API_VERSION_MINOR(pd.api_version) < 2 && VK_API_VERSION_MAJOR(pd.api_version) == 1) {
    return absl::UnavailableError(absl::StrCat(where, "needs Vulkan 1.2, device has 1.",
                                               VK_API_VERSION_MINOR(pd.api_version)));
  }
  std::unique_ptr<Device> d(new Device());
  d->instance_ = std::move(instance);
  d->physical_ = pd.handle;

  // Properties.
  VkPhysicalDeviceVulkan12Properties p12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_PROPERTIES};
  VkPhysicalDeviceVulkan11Properties p11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_PROPERTIES};
  p11.pNext = &p12;
  VkPhysicalDeviceExternalMemoryHostPropertiesEXT phost{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT};
  p12.pNext = &phost;
  VkPhysicalDeviceProperties2 props{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
  props.pNext = &p11;
  vkGetPhysicalDeviceProperties2(pd.handle, &props);
  vkGetPhysicalDeviceMemoryProperties(pd.handle, &d->memory_);

  DeviceCaps& c = d->caps_;
  c.name = pd.name;
  c.type = pd.type;
  c.driver_name = p12.driverName;
  c.driver_info = p12.driverInfo;
  c.api_version = props.properties.apiVersion;
  c.vendor_id = props.properties.vendorID;
  c.subgroup_size = p11.subgroupSize;
  c.subgroup_arithmetic = (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                          (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  c.subgroup_shuffle = (p11.subgroupSupportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                       (p11.subgroupSupportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT);
  const VkPhysicalDeviceLimits& lim = props.properties.limits;
  c.max_shared_memory = lim.maxComputeSharedMemorySize;
  c.max_workgroup_invocations = lim.maxComputeWorkGroupInvocations;
  c.max_push_constants = lim.maxPushConstantsSize;
  c.min_storage_offset_alignment = lim.minStorageBufferOffsetAlignment;
  c.max_storage_buffer_range = lim.maxStorageBufferRange;
  c.timestamp_period_ns = lim.timestampPeriod;

  // Optional extensions: external memory, for importing the shared arena.
  uint32_t n_ext = 0;
  vkEnumerateDeviceExtensionProperties(pd.handle, nullptr, &n_ext, nullptr);
  std::vector<VkExtensionProperties> exts(n_ext);
  vkEnumerateDeviceExtensionProperties(pd.handle, nullptr, &n_ext, exts.data());
  std::vector<const char*> enabled;
  if (HasExtension(exts, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME)) {
    enabled.push_back(VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME);
    c.external_memory_host = true;
    c.min_imported_host_alignment = phost.minImportedHostPointerAlignment;
  }
  if (HasExtension(exts, VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME) &&
      HasExtension(exts, VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME)) {
    enabled.push_back(VK_KHR_EXTERNAL_MEMORY_FD_EXTENSION_NAME);
    enabled.push_back(VK_EXT_EXTERNAL_MEMORY_DMA_BUF_EXTENSION_NAME);
    c.external_memory_dma_buf = true;
  }
  // Packed int8 dot products: the few-token products of Q4_0/Q8_0 weights
  // (matvec_int8.comp).
  VkPhysicalDeviceShaderIntegerDotProductFeatures dot_have{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  const bool dot_ext = HasExtension(exts, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
  if (dot_ext) {
    VkPhysicalDeviceFeatures2 f{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f.pNext = &dot_have;
    vkGetPhysicalDeviceFeatures2(pd.handle, &f);
    VkPhysicalDeviceShaderIntegerDotProductProperties dp{
        VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_PROPERTIES};
    VkPhysicalDeviceProperties2 p2{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2};
    p2.pNext = &dp;
    vkGetPhysicalDeviceProperties2(pd.handle, &p2);
    if (dot_have.shaderIntegerDotProduct) {
      enabled.push_back(VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
      c.int8_dot = true;
      c.int8_dot_accelerated = dp.integerDotProduct4x8BitPackedSignedAccelerated;
    }
  }
  // Calibrated timestamps: traced spans put device ticks on CLOCK_MONOTONIC.
  if (HasExtension(exts, VK_EXT_CALIBRATED_TIMESTAMPS_EXTENSION_NAME) &&
      CanCalibrate(d->instance_->handle(), pd.handle)) {
    enabled.push_back(VK_EXT_CALIBRATED_TIMESTAMPS_EXTENSION_NAME);
    c.calibrated_timestamps = true;
  }
  // Tensor cores through VK_NV_cooperative_matrix (F16 inputs, F32 sums;
  // the shader also needs F16 arithmetic and the Vulkan memory model, checked
  // below). The kernels assume subgroups of 32.
  VkPhysicalDeviceCooperativeMatrixFeaturesNV coop_have{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  if (HasExtension(exts, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME) && c.subgroup_size == 32) {
    VkPhysicalDeviceFeatures2 f{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
    f.pNext = &coop_have;
    vkGetPhysicalDeviceFeatures2(pd.handle, &f);
    c.coopmat_nv = coop_have.cooperativeMatrix && HasCoopMatF16(d->instance_->handle(), pd.handle);
  }
  for (uint32_t h = 0; h < d->memory_.memoryHeapCount; ++h) {
    if (d->memory_.memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) {
      c.device_local_bytes += d->memory_.memoryHeaps[h].size;
    }
  }
  for (uint32_t t = 0; t < d->memory_.memoryTypeCount; ++t) {
    VkMemoryPropertyFlags want =
        VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT | VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT;
    const VkMemoryType& mt = d->memory_.memoryTypes[t];
    if ((mt.propertyFlags & want) == want) {
      c.host_visible_local_bytes =
          std::max<uint64_t>(c.host_visible_local_bytes, d->memory_.memoryHeaps[mt.heapIndex].size);
    }
  }

  // Features: 16-bit storage is required (GGUF blocks are 2-byte aligned);
  // the rest is enabled when present.
  VkPhysicalDeviceVulkan12Features f12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features f11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  f11.pNext = &f12;
  VkPhysicalDeviceFeatures2 feats{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  feats.pNext = &f11;
  vkGetPhysicalDeviceFeatures2(pd.handle, &feats);
  if (!f11.storageBuffer16BitAccess) {
    return absl::UnavailableError(absl::StrCat(where, "lacks storageBuffer16BitAccess"));
  }
  if (!c.subgroup_arithmetic) {
    return absl::UnavailableError(
        absl::StrCat(where, "lacks subgroup arithmetic in compute shaders"));
  }
  VkPhysicalDeviceVulkan12Features e12{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
  VkPhysicalDeviceVulkan11Features e11{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES};
  e11.pNext = &e12;
  e11.storageBuffer16BitAccess = VK_TRUE;
  e12.shaderFloat16 = f12.shaderFloat16;
  e12.shaderInt8 = f12.shaderInt8;
  e12.storageBuffer8BitAccess = f12.storageBuffer8BitAccess;
  c.shader_float16 = f12.shaderFloat16;
  c.shader_int8 = f12.shaderInt8 && f12.storageBuffer8BitAccess;
  c.coopmat_nv = c.coopmat_nv && f12.shaderFloat16 && f12.vulkanMemoryModel;
  if (c.coopmat_nv) {
    enabled.push_back(VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME);
    e12.vulkanMemoryModel = VK_TRUE;
  }
  VkPhysicalDeviceCooperativeMatrixFeaturesNV e_coop{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV};
  e_coop.cooperativeMatrix = VK_TRUE;
  VkPhysicalDeviceShaderIntegerDotProductFeatures e_dot{
      VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
  e_dot.shaderIntegerDotProduct = VK_TRUE;
  // Optional feature structs, chained after e12.
  void** tail = &e12.pNext;
  if (c.int8_dot) {
    *tail = &e_dot;
    tail = &e_dot.pNext;
  }
  if (c.coopmat_nv) *tail = &e_coop;
  VkPhysicalDeviceFeatures2 enable{VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2};
  enable.pNext = &e11;
  enable.features.shaderInt16 = feats.features.shaderInt16;

  UNICORN_ASSIGN_OR_RETURN(d->queue_family_, PickComputeFamily(pd.handle, &c.timestamp_valid_bits));
  c.timestamps = c.timestamp_valid_bits > 0 && c.timestamp_period_ns > 0;
  c.calibrated_timestamps = c.calibrated_timestamps && c.timestamps;

  float priority = 1.0f;
  VkDeviceQueueCreateInfo qci{VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO};
  qci.queueFamilyIndex = d->queue_family_;
  qci.queueCount = 1;
  qci.pQueuePriorities = &priority;
  VkDeviceCreateInfo dci{VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO};
  dci.pNext = &enable;
  dci.queueCreateInfoCount = 1;
  dci.pQueueCreateInfos = &qci;
  dci.enabledExtensionCount = uint32_t(enabled.size());
  dci.ppEnabledExtensionNames = enabled.data();
  VkResult r = vkCreateDevice(pd.handle, &dci, nullptr, &d->device_);
  if (r != VK_SUCCESS) return Annotate(VkError("vkCreateDevice", r), pd.name);
  vkGetDeviceQueue(d->device_, d->queue_family_, 0, &d->queue_);
  if (c.calibrated_timestamps) {
    d->get_calibrated_ = reinterpret_cast<PFN_vkGetCalibratedTimestampsEXT>(
        vkGetDeviceProcAddr(d->device_, "vkGetCalibratedTimestampsEXT"));
    c.calibrated_timestamps = d->get_calibrated_ != nullptr;
  }
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  r = vkCreateFence(d->device_, &fci, nullptr, &d->fence_);
  if (r != VK_SUCCESS) return VkError("vkCreateFence", r);

  d->allocator_ = std::make_unique<Allocator>(*d);
  d->pipeline_cache_ = std::make_unique<PipelineCache>(*d);
  LOG_DEBUG("[vk] opened {}", d->Describe());
  return d;
}

Device::~Device() {
  if (device_ == VK_NULL_HANDLE) return;
  vkDeviceWaitIdle(device_);
  pipeline_cache_.reset();
  allocator_.reset();
  if (fence_ != VK_NULL_HANDLE) vkDestroyFence(device_, fence_, nullptr);
  vkDestroyDevice(device_, nullptr);
}

std::string Device::Describe() const {
  return absl::StrCat(
      caps_.name, " (", caps_.type, "), driver ", caps_.driver_name, " ", caps_.driver_info, ", ",
      HumanBytes(caps_.device_local_bytes), " device-local",
      caps_.host_visible_local_bytes > 0
          ? absl::StrCat(" (", HumanBytes(caps_.host_visible_local_bytes), " host-visible)")
          : std::string());
}

Status Device::SubmitAndWait(VkCommandBuffer cmd) {
  return SubmitAndWait(std::vector<VkCommandBuffer>{cmd});
}

Status Device::SubmitAndWait(const std::vector<VkCommandBuffer>& cmds) {
  return SubmitAndWait(cmds, 0, 0, nullptr);
}

Status Device::SubmitAndWait(const std::vector<VkCommandBuffer>& cmds, int64_t predicted_ns,
                             int64_t spin_ns, int64_t* took_ns) {
  using Clock = std::chrono::steady_clock;
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = uint32_t(cmds.size());
  si.pCommandBuffers = cmds.data();
  VkResult r = vkResetFences(device_, 1, &fence_);
  if (r != VK_SUCCESS) return VkError("vkResetFences", r);
  r = vkQueueSubmit(queue_, 1, &si, fence_);
  if (r != VK_SUCCESS) return VkError("vkQueueSubmit", r);
  const Clock::time_point submitted = Clock::now();
  bool done = false;
  if (spin_ns > 0) {
    if (predicted_ns > 2 * spin_ns) {
      r = vkWaitForFences(device_, 1, &fence_, VK_TRUE, uint64_t(predicted_ns - spin_ns));
      if (r != VK_SUCCESS && r != VK_TIMEOUT) return VkError("vkWaitForFences", r);
      done = r == VK_SUCCESS;
    }
    const Clock::time_point until =
        std::max(Clock::now(), submitted + std::chrono::nanoseconds(predicted_ns)) +
        std::chrono::nanoseconds(spin_ns);
    while (!done && Clock::now() < until) {
      r = vkGetFenceStatus(device_, fence_);
      if (r != VK_SUCCESS && r != VK_NOT_READY) return VkError("vkGetFenceStatus", r);
      done = r == VK_SUCCESS;
    }
  }
  if (!done) {
    r = vkWaitForFences(device_, 1, &fence_, VK_TRUE, UINT64_MAX);
    if (r != VK_SUCCESS) return VkError("vkWaitForFences", r);
  }
  if (took_ns != nullptr) *took_ns = (Clock::now() - submitted).count();
  return absl::OkStatus();
}

Status Device::CalibratedTimestamps(uint64_t* device_ticks, int64_t* monotonic_ns,
                                    uint64_t* deviation_ns) {
  if (get_calibrated_ == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "[vk] ", caps_.name, ": no calibrated timestamps (VK_EXT_calibrated_timestamps)"));
  }
  VkCalibratedTimestampInfoEXT info[2] = {{VK_STRUCTURE_TYPE_CALIBRATED_TIMESTAMP_INFO_EXT},
                                          {VK_STRUCTURE_TYPE_CALIBRATED_TIMESTAMP_INFO_EXT}};
  info[0].timeDomain = VK_TIME_DOMAIN_DEVICE_EXT;
  info[1].timeDomain = VK_TIME_DOMAIN_CLOCK_MONOTONIC_EXT;
  uint64_t ts[2] = {0, 0};
  uint64_t dev = 0;
  VkResult r = get_calibrated_(device_, 2, info, ts, &dev);
  if (r != VK_SUCCESS) return VkError("vkGetCalibratedTimestampsEXT", r);
  *device_ticks = ts[0];
  *monotonic_ns = int64_t(ts[1]);
  *deviation_ns = dev;
  return absl::OkStatus();
}

Status Device::WaitIdle() {
  VkResult r = vkDeviceWaitIdle(device_);
  return r == VK_SUCCESS ? absl::OkStatus() : VkError("vkDeviceWaitIdle", r);
}

}  // namespace unicorn::vk
