// Compute pipelines made from a descriptor struct, and the on-disk pipeline
// cache they share.
//
// Shader conventions (every .comp in gpu_worker/shaders follows them):
//   - storage buffers at set 0, bindings 0 .. num_buffers-1, in the order the
//     dispatch passes them;
//   - workgroup size from specialization constants 0, 1, 2
//     (layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2));
//   - kernel-specific specialization constants from id 3 up;
//   - one push-constant struct from gpu_worker/shaders/push_constants.h.
#pragma once

#include <vulkan/vulkan.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn::vk {

class Device;

struct PipelineDesc {
  std::string name;                                // for errors and profiles: "rms_norm"
  const uint32_t* spirv = nullptr;                 // unicorn::shaders::<name>_spv
  size_t spirv_bytes = 0;                          // unicorn::shaders::<name>_spv_size
  uint32_t push_constant_bytes = 0;                // sizeof(the push struct), <= 128
  uint32_t num_buffers = 0;                        // storage buffers at bindings 0..n-1
  std::array<uint32_t, 3> workgroup = {64, 1, 1};  // spec constants 0, 1, 2
  std::vector<uint32_t> spec_constants;            // ids 3, 4, ... (u32 or float bits)
};

// Owns the shader module, descriptor set layout, pipeline layout and pipeline.
class Pipeline {
 public:
  static StatusOr<std::unique_ptr<Pipeline>> Create(Device& device, const PipelineDesc& desc);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  const PipelineDesc& desc() const { return desc_; }
  const std::string& name() const { return desc_.name; }
  VkPipeline handle() const { return pipeline_; }
  VkPipelineLayout layout() const { return layout_; }
  VkDescriptorSetLayout set_layout() const { return set_layout_; }

 private:
  explicit Pipeline(Device& d) : device_(d) {}
  Device& device_;
  PipelineDesc desc_;
  VkShaderModule module_ = VK_NULL_HANDLE;
  VkDescriptorSetLayout set_layout_ = VK_NULL_HANDLE;
  VkPipelineLayout layout_ = VK_NULL_HANDLE;
  VkPipeline pipeline_ = VK_NULL_HANDLE;
};

// A VkPipelineCache backed by a file under $XDG_CACHE_HOME/unicorn (else
// ~/.cache/unicorn), one file per device + driver. Failing to read or write
// the file only logs a warning: the cache is an optimisation.
class PipelineCache {
 public:
  explicit PipelineCache(Device& device);
  ~PipelineCache();  // saves
  VkPipelineCache handle() const { return cache_; }
  const std::string& path() const { return path_; }
  void Save();

 private:
  Device& device_;
  VkPipelineCache cache_ = VK_NULL_HANDLE;
  std::string path_;
};

}  // namespace unicorn::vk
