// Device memory: buffers, views into them, and the allocator that picks a
// memory type. Every buffer is a storage buffer that can also be a transfer
// source and destination.
//
// Memory choice (MemoryUse::kDevice), first that works:
//   1. device-local + host-visible (ReBAR, unified memory, lavapipe): written
//      in place through its mapped pointer;
//   2. device-local: filled through a staging buffer (Allocator::Upload);
//   3. host-visible system memory: slow, but the model still runs.
// MemoryUse::kHost (readback, staging) prefers host-cached memory.
#pragma once

#include <vulkan/vulkan.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace unicorn::vk {

class Device;
class ExternalMemory;

enum class MemoryUse {
  kDevice,  // weights, activations, KV cache
  kHost,    // staging and readback: always mapped
};

// A view of part of a buffer, the unit that kernels bind.
struct SubBuffer {
  VkBuffer buffer = VK_NULL_HANDLE;
  VkDeviceSize offset = 0;
  VkDeviceSize size = 0;
};

// Owns a VkBuffer and its memory. Move-only.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer();
  Buffer(Buffer&& o) noexcept { *this = std::move(o); }
  Buffer& operator=(Buffer&& o) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  VkBuffer buffer() const { return buffer_; }
  VkDeviceMemory memory() const { return memory_; }
  void* mapped() const { return mapped_; }  // nullptr unless host-visible
  VkDeviceSize size() const { return size_; }
  bool device_local() const { return device_local_; }
  bool host_cached() const { return host_cached_; }  // mapped reads are fast
  explicit operator bool() const { return buffer_ != VK_NULL_HANDLE; }

  SubBuffer All() const { return {buffer_, 0, size_}; }
  // [offset, offset + size); aborts when out of range (a programmer bug).
  SubBuffer Sub(VkDeviceSize offset, VkDeviceSize size) const;

 private:
  friend class Allocator;
  friend class ExternalMemory;
  void Reset();
  VkDevice device_ = VK_NULL_HANDLE;
  VkBuffer buffer_ = VK_NULL_HANDLE;
  VkDeviceMemory memory_ = VK_NULL_HANDLE;
  void* mapped_ = nullptr;
  VkDeviceSize size_ = 0;
  bool device_local_ = false;
  bool host_cached_ = false;
};

class Allocator {
 public:
  explicit Allocator(Device& device) : device_(device) {}

  // A buffer of `size` bytes (rounded up to 16). `what` names it in errors:
  // "[vk] alloc blk.3.attn_q.weight (26.2 MiB): VK_ERROR_OUT_OF_DEVICE_MEMORY".
  StatusOr<Buffer> Create(VkDeviceSize size, MemoryUse use, const std::string& what);

  // Copies host bytes into `dst` through a staging buffer and a transfer on
  // the device's queue, blocking.
  Status Upload(const SubBuffer& dst, const void* src, size_t n);
  // Same into `dst` at `offset`: a memcpy when `dst` is mapped.
  Status Upload(const Buffer& dst, VkDeviceSize offset, const void* src, size_t n);
  // Copies device bytes back to the host, blocking.
  Status Download(const SubBuffer& src, void* dst, size_t n);
  // Fills with zeros (vkCmdFillBuffer), blocking.
  Status Zero(const SubBuffer& dst);

 private:
  StatusOr<Buffer*> Staging(size_t n);
  Device& device_;
  Buffer staging_;
};

// "26.2 MiB"
std::string HumanBytes(uint64_t n);

}  // namespace unicorn::vk
