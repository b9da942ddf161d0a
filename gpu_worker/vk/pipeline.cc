#include "gpu_worker/vk/pipeline.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/log.h"
#include "gpu_worker/vk/device.h"

namespace unicorn::vk {

StatusOr<std::unique_ptr<Pipeline>> Pipeline::Create(Device& device, const PipelineDesc& desc) {
  std::string ctx = absl::StrCat("[vk] pipeline ", desc.name);
  if (desc.spirv == nullptr || desc.spirv_bytes == 0 || desc.spirv_bytes % 4 != 0) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": no SPIR-V"));
  }
  if (desc.push_constant_bytes > device.caps().max_push_constants ||
      desc.push_constant_bytes % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx, ": push constants of ", desc.push_constant_bytes, " bytes"));
  }
  uint32_t invocations = desc.workgroup[0] * desc.workgroup[1] * desc.workgroup[2];
  if (invocations == 0 || invocations > device.caps().max_workgroup_invocations) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": workgroup of ", invocations,
                                                   " invocations (device max ",
                                                   device.caps().max_workgroup_invocations, ")"));
  }
  VkDevice dev = device.handle();
  std::unique_ptr<Pipeline> p(new Pipeline(device));
  p->desc_ = desc;

  VkShaderModuleCreateInfo smci{VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO};
  smci.codeSize = desc.spirv_bytes;
  smci.pCode = desc.spirv;
  VkResult r = vkCreateShaderModule(dev, &smci, nullptr, &p->module_);
  if (r != VK_SUCCESS) return Annotate(VkError("vkCreateShaderModule", r), ctx);

  std::vector<VkDescriptorSetLayoutBinding> bindings(desc.num_buffers);
  for (uint32_t i = 0; i < desc.num_buffers; ++i) {
    bindings[i].binding = i;
    bindings[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    bindings[i].descriptorCount = 1;
    bindings[i].stageFlags = VK_SHADER_STAGE_COMPUTE_BIT;
  }
  VkDescriptorSetLayoutCreateInfo dl{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO};
  dl.bindingCount = desc.num_buffers;
  dl.pBindings = bindings.data();
  r = vkCreateDescriptorSetLayout(dev, &dl, nullptr, &p->set_layout_);
  if (r != VK_SUCCESS) return Annotate(VkError("vkCreateDescriptorSetLayout", r), ctx);

  VkPushConstantRange range{VK_SHADER_STAGE_COMPUTE_BIT, 0, desc.push_constant_bytes};
  VkPipelineLayoutCreateInfo pl{VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO};
  pl.setLayoutCount = 1;
  pl.pSetLayouts = &p->set_layout_;
  pl.pushConstantRangeCount = desc.push_constant_bytes > 0 ? 1 : 0;
  pl.pPushConstantRanges = &range;
  r = vkCreatePipelineLayout(dev, &pl, nullptr, &p->layout_);
  if (r != VK_SUCCESS) return Annotate(VkError("vkCreatePipelineLayout", r), ctx);

  std::vector<uint32_t> values = {desc.workgroup[0], desc.workgroup[1], desc.workgroup[2]};
  values.insert(values.end(), desc.spec_constants.begin(), desc.spec_constants.end());
  std::vector<VkSpecializationMapEntry> entries(values.size());
  for (uint32_t i = 0; i < values.size(); ++i) entries[i] = {i, i * 4, 4};
  VkSpecializationInfo spec{uint32_t(entries.size()), entries.data(), values.size() * 4,
                            values.data()};

  VkComputePipelineCreateInfo ci{VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO};
  ci.stage = {VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO};
  ci.stage.stage = VK_SHADER_STAGE_COMPUTE_BIT;
  ci.stage.module = p->module_;
  ci.stage.pName = "main";
  ci.stage.pSpecializationInfo = &spec;
  ci.layout = p->layout_;
  r = vkCreateComputePipelines(dev, device.pipeline_cache().handle(), 1, &ci, nullptr,
                               &p->pipeline_);
  if (r != VK_SUCCESS) return Annotate(VkError("vkCreateComputePipelines", r), ctx);
  return p;
}

Pipeline::~Pipeline() {
  VkDevice dev = device_.handle();
  if (pipeline_ != VK_NULL_HANDLE) vkDestroyPipeline(dev, pipeline_, nullptr);
  if (layout_ != VK_NULL_HANDLE) vkDestroyPipelineLayout(dev, layout_, nullptr);
  if (set_layout_ != VK_NULL_HANDLE) vkDestroyDescriptorSetLayout(dev, set_layout_, nullptr);
  if (module_ != VK_NULL_HANDLE) vkDestroyShaderModule(dev, module_, nullptr);
}

namespace {

std::string CacheDir() {
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    return absl::StrCat(x, "/unicorn");
  }
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    return absl::StrCat(h, "/.cache/unicorn");
  }
  return "";
}

}  // namespace

PipelineCache::PipelineCache(Device& device) : device_(device) {
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(device.physical(), &props);
  std::string uuid;
  for (uint8_t b : props.pipelineCacheUUID) absl::StrAppend(&uuid, absl::Hex(b, absl::kZeroPad2));
  std::string dir = CacheDir();
  std::vector<char> data;
  if (!dir.empty()) {
    path_ = absl::StrCat(dir, "/vk-pipelines-", absl::Hex(props.vendorID), "-",
                         absl::Hex(props.deviceID), "-", uuid, ".bin");
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      data.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (!in.good() && !in.eof()) {
        LOG_WARN("[vk] pipeline cache {}: read failed, starting empty", path_);
        data.clear();
      }
    }
  }
  VkPipelineCacheCreateInfo ci{VK_STRUCTURE_TYPE_PIPELINE_CACHE_CREATE_INFO};
  ci.initialDataSize = data.size();
  ci.pInitialData = data.empty() ? nullptr : data.data();
  VkResult r = vkCreatePipelineCache(device.handle(), &ci, nullptr, &cache_);
  if (r != VK_SUCCESS && !data.empty()) {
    LOG_WARN("[vk] pipeline cache {}: rejected by the driver ({}), starting empty", path_,
             VkResultName(r));
    ci.initialDataSize = 0;
    ci.pInitialData = nullptr;
    r = vkCreatePipelineCache(device.handle(), &ci, nullptr, &cache_);
  }
  if (r != VK_SUCCESS) {
    LOG_WARN("[vk] vkCreatePipelineCache: {}; pipelines are built without a cache",
             VkResultName(r));
    cache_ = VK_NULL_HANDLE;
  }
}

PipelineCache::~PipelineCache() {
  Save();
  if (cache_ != VK_NULL_HANDLE) vkDestroyPipelineCache(device_.handle(), cache_, nullptr);
}

void PipelineCache::Save() {
  if (cache_ == VK_NULL_HANDLE || path_.empty()) return;
  size_t n = 0;
  if (vkGetPipelineCacheData(device_.handle(), cache_, &n, nullptr) != VK_SUCCESS || n == 0) {
    return;
  }
  std::vector<char> data(n);
  if (vkGetPipelineCacheData(device_.handle(), cache_, &n, data.data()) != VK_SUCCESS) return;
  std::error_code ec;
  std::filesystem::path p(path_);
  std::filesystem::create_directories(p.parent_path(), ec);
  // Write a temporary file and rename it, so concurrent processes never read
  // a half-written cache.
  std::string tmp = absl::StrCat(path_, ".tmp.", ::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out.write(data.data(), std::streamsize(n));
    if (!out.good()) {
      LOG_WARN("[vk] pipeline cache {}: write failed", tmp);
      std::filesystem::remove(tmp, ec);
      return;
    }
  }
  std::filesystem::rename(tmp, p, ec);
  if (ec) LOG_WARN("[vk] pipeline cache {}: rename failed: {}", path_, ec.message());
}

}  // namespace unicorn::vk
