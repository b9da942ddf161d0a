#include "gpu_worker/vk/command.h"

#include <algorithm>

#include "gpu_worker/vk/device.h"
#include "gpu_worker/vk/pipeline.h"

namespace unicorn::vk {
namespace {

constexpr uint32_t kSetsPerPool = 512;
constexpr uint32_t kBuffersPerPool = kSetsPerPool * 8;

}  // namespace

CommandBuffer::CommandBuffer(Device& device, uint32_t max_timestamps) : device_(device) {
  VkDevice dev = device.handle();
  VkCommandPoolCreateInfo pci{VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO};
  pci.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT;
  pci.queueFamilyIndex = device.queue_family();
  VkResult r = vkCreateCommandPool(dev, &pci, nullptr, &pool_);
  if (r != VK_SUCCESS) {
    error_ = VkError("vkCreateCommandPool", r);
    return;
  }
  VkCommandBufferAllocateInfo ai{VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO};
  ai.commandPool = pool_;
  ai.level = VK_COMMAND_BUFFER_LEVEL_PRIMARY;
  ai.commandBufferCount = 1;
  r = vkAllocateCommandBuffers(dev, &ai, &cmd_);
  if (r != VK_SUCCESS) {
    error_ = VkError("vkAllocateCommandBuffers", r);
    return;
  }
  VkFenceCreateInfo fci{VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
  r = vkCreateFence(dev, &fci, nullptr, &fence_);
  if (r != VK_SUCCESS) {
    error_ = VkError("vkCreateFence", r);
    return;
  }
  if (max_timestamps > 0 && device.caps().timestamps) {
    VkQueryPoolCreateInfo qci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
    qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
    qci.queryCount = max_timestamps + 1;
    if (vkCreateQueryPool(dev, &qci, nullptr, &queries_) == VK_SUCCESS) {
      max_timestamps_ = max_timestamps;
    }
  }
}

CommandBuffer::~CommandBuffer() {
  VkDevice dev = device_.handle();
  if (pending_) vkWaitForFences(dev, 1, &fence_, VK_TRUE, UINT64_MAX);
  if (queries_ != VK_NULL_HANDLE) vkDestroyQueryPool(dev, queries_, nullptr);
  if (marks_ != VK_NULL_HANDLE) vkDestroyQueryPool(dev, marks_, nullptr);
  for (VkDescriptorPool p : descriptor_pools_) vkDestroyDescriptorPool(dev, p, nullptr);
  if (fence_ != VK_NULL_HANDLE) vkDestroyFence(dev, fence_, nullptr);
  if (pool_ != VK_NULL_HANDLE) vkDestroyCommandPool(dev, pool_, nullptr);
}

void CommandBuffer::Begin() {
  if (cmd_ == VK_NULL_HANDLE) return;  // error_ holds why
  if (pending_) (void)Wait();
  vkResetCommandBuffer(cmd_, 0);
  for (VkDescriptorPool p : descriptor_pools_) vkResetDescriptorPool(device_.handle(), p, 0);
  current_pool_ = 0;
  labels_.clear();
  barriers_ = 0;
  label_.clear();
  VkCommandBufferBeginInfo bi{VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO};
  vkBeginCommandBuffer(cmd_, &bi);
  if (queries_ != VK_NULL_HANDLE) {
    vkCmdResetQueryPool(cmd_, queries_, 0, max_timestamps_ + 1);
    Timestamp("");
  }
  marks_used_ = 0;
  if (marks_ != VK_NULL_HANDLE) vkCmdResetQueryPool(cmd_, marks_, 0, marks_cap_);
}

bool CommandBuffer::ReserveMarks(uint32_t n) {
  if (n <= marks_cap_) return marks_ != VK_NULL_HANDLE;
  if (!device_.caps().timestamps) return false;
  VkDevice dev = device_.handle();
  if (marks_ != VK_NULL_HANDLE) vkDestroyQueryPool(dev, marks_, nullptr);
  marks_ = VK_NULL_HANDLE;
  marks_cap_ = 0;
  VkQueryPoolCreateInfo qci{VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO};
  qci.queryType = VK_QUERY_TYPE_TIMESTAMP;
  qci.queryCount = n;
  if (vkCreateQueryPool(dev, &qci, nullptr, &marks_) != VK_SUCCESS) {
    marks_ = VK_NULL_HANDLE;
    return false;
  }
  marks_cap_ = n;
  return true;
}

void CommandBuffer::Mark() {
  if (marks_ == VK_NULL_HANDLE || marks_used_ >= marks_cap_) return;
  vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, marks_, marks_used_++);
}

StatusOr<std::vector<uint64_t>> CommandBuffer::MarkTicks() {
  std::vector<uint64_t> ticks(marks_used_);
  if (ticks.empty()) return ticks;
  VkResult r =
      vkGetQueryPoolResults(device_.handle(), marks_, 0, marks_used_, ticks.size() * 8,
                            ticks.data(), 8, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r != VK_SUCCESS) return VkError("vkGetQueryPoolResults", r);
  return ticks;
}

VkDescriptorSet CommandBuffer::AllocateSet(VkDescriptorSetLayout layout) {
  VkDevice dev = device_.handle();
  while (true) {
    if (current_pool_ == descriptor_pools_.size()) {
      VkDescriptorPoolSize size{VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, kBuffersPerPool};
      VkDescriptorPoolCreateInfo ci{VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO};
      ci.maxSets = kSetsPerPool;
      ci.poolSizeCount = 1;
      ci.pPoolSizes = &size;
      VkDescriptorPool pool;
      VkResult r = vkCreateDescriptorPool(dev, &ci, nullptr, &pool);
      if (r != VK_SUCCESS) {
        error_ = VkError("vkCreateDescriptorPool", r);
        return VK_NULL_HANDLE;
      }
      descriptor_pools_.push_back(pool);
    }
    VkDescriptorSetAllocateInfo ai{VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO};
    ai.descriptorPool = descriptor_pools_[current_pool_];
    ai.descriptorSetCount = 1;
    ai.pSetLayouts = &layout;
    VkDescriptorSet set;
    VkResult r = vkAllocateDescriptorSets(dev, &ai, &set);
    if (r == VK_SUCCESS) return set;
    if (r != VK_ERROR_OUT_OF_POOL_MEMORY && r != VK_ERROR_FRAGMENTED_POOL) {
      error_ = VkError("vkAllocateDescriptorSets", r);
      return VK_NULL_HANDLE;
    }
    ++current_pool_;  // this pool is full: take (or make) the next one
  }
}

void CommandBuffer::Dispatch(const Pipeline& p, std::initializer_list<SubBuffer> buffers,
                             const void* push, uint32_t push_bytes, Groups groups) {
  if (!error_.ok()) return;
  UNICORN_CHECK(buffers.size() == p.desc().num_buffers);
  UNICORN_CHECK(push_bytes == p.desc().push_constant_bytes);
  const std::string& name = label_.empty() ? p.name() : label_;
  for (const std::string& prefix : skip_) {
    if (name.rfind(prefix, 0) == 0) return;
  }
  VkDescriptorSet set = AllocateSet(p.set_layout());
  if (set == VK_NULL_HANDLE) return;
  VkDescriptorBufferInfo infos[16];
  VkWriteDescriptorSet writes[16];
  UNICORN_CHECK(buffers.size() <= 16);
  uint32_t i = 0;
  for (const SubBuffer& b : buffers) {
    UNICORN_CHECK(b.buffer != VK_NULL_HANDLE);
    infos[i] = {b.buffer, b.offset, b.size};
    writes[i] = {VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET};
    writes[i].dstSet = set;
    writes[i].dstBinding = i;
    writes[i].descriptorCount = 1;
    writes[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
    writes[i].pBufferInfo = &infos[i];
    ++i;
  }
  vkUpdateDescriptorSets(device_.handle(), i, writes, 0, nullptr);
  vkCmdBindPipeline(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, p.handle());
  vkCmdBindDescriptorSets(cmd_, VK_PIPELINE_BIND_POINT_COMPUTE, p.layout(), 0, 1, &set, 0, nullptr);
  if (push_bytes > 0) {
    vkCmdPushConstants(cmd_, p.layout(), VK_SHADER_STAGE_COMPUTE_BIT, 0, push_bytes, push);
  }
  vkCmdDispatch(cmd_, groups.x, groups.y, groups.z);
  Timestamp(name);
}

void CommandBuffer::Skip(std::vector<std::string> prefixes) {
  skip_barriers_ = std::find(prefixes.begin(), prefixes.end(), "barrier") != prefixes.end();
  skip_ = std::move(prefixes);
}

void CommandBuffer::Timestamp(const std::string& label) {
  if (queries_ == VK_NULL_HANDLE || labels_.size() > max_timestamps_) return;
  vkCmdWriteTimestamp(cmd_, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, queries_,
                      uint32_t(labels_.size()));
  labels_.push_back(label);
}

void CommandBuffer::Barrier() {
  if (skip_barriers_) return;
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  VkPipelineStageFlags stages =
      VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(cmd_, stages, stages, 0, 1, &mb, 0, nullptr, 0, nullptr);
  ++barriers_;
}

void CommandBuffer::ComputeBarrier() {
  if (skip_barriers_) return;
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT;
  vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
                       VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  ++barriers_;
}

void CommandBuffer::Copy(const SubBuffer& src, const SubBuffer& dst, VkDeviceSize bytes) {
  UNICORN_CHECK(bytes <= src.size && bytes <= dst.size);
  VkBufferCopy region{src.offset, dst.offset, bytes};
  vkCmdCopyBuffer(cmd_, src.buffer, dst.buffer, 1, &region);
}

void CommandBuffer::Fill(const SubBuffer& dst, uint32_t value) {
  vkCmdFillBuffer(cmd_, dst.buffer, dst.offset, dst.size, value);
}

Status CommandBuffer::End() {
  if (!error_.ok()) return error_;
  // Make the results visible to the host once the fence has signalled.
  VkMemoryBarrier mb{VK_STRUCTURE_TYPE_MEMORY_BARRIER};
  mb.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT;
  mb.dstAccessMask = VK_ACCESS_HOST_READ_BIT;
  vkCmdPipelineBarrier(cmd_, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                       VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb, 0, nullptr, 0, nullptr);
  VkResult r = vkEndCommandBuffer(cmd_);
  return r == VK_SUCCESS ? absl::OkStatus() : VkError("vkEndCommandBuffer", r);
}

Status CommandBuffer::Submit() {
  if (!error_.ok()) return error_;
  if (pending_) UNICORN_RETURN_IF_ERROR(Wait());
  VkSubmitInfo si{VK_STRUCTURE_TYPE_SUBMIT_INFO};
  si.commandBufferCount = 1;
  si.pCommandBuffers = &cmd_;
  VkResult r = vkQueueSubmit(device_.queue(), 1, &si, fence_);
  if (r != VK_SUCCESS) return VkError("vkQueueSubmit", r);
  pending_ = true;
  return absl::OkStatus();
}

Status CommandBuffer::Wait() {
  if (!pending_) return absl::OkStatus();
  VkResult r = vkWaitForFences(device_.handle(), 1, &fence_, VK_TRUE, UINT64_MAX);
  pending_ = false;
  if (r != VK_SUCCESS) return VkError("vkWaitForFences", r);
  r = vkResetFences(device_.handle(), 1, &fence_);
  return r == VK_SUCCESS ? absl::OkStatus() : VkError("vkResetFences", r);
}

Status CommandBuffer::SubmitAndWait() {
  UNICORN_RETURN_IF_ERROR(Submit());
  return Wait();
}

StatusOr<std::vector<TimestampRecord>> CommandBuffer::Profile() {
  std::vector<TimestampRecord> out;
  if (queries_ == VK_NULL_HANDLE || labels_.size() < 2) return out;
  std::vector<uint64_t> ticks(labels_.size());
  VkResult r =
      vkGetQueryPoolResults(device_.handle(), queries_, 0, uint32_t(ticks.size()), ticks.size() * 8,
                            ticks.data(), 8, VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r != VK_SUCCESS) return VkError("vkGetQueryPoolResults", r);
  double ns = device_.caps().timestamp_period_ns;
  for (size_t i = 1; i < ticks.size(); ++i) {
    out.push_back({labels_[i], double(ticks[i] - ticks[i - 1]) * ns * 1e-6});
  }
  return out;
}

}  // namespace unicorn::vk
