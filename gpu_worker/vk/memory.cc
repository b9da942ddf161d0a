#include "gpu_worker/vk/memory.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_format.h"
#include "gpu_worker/vk/command.h"
#include "gpu_worker/vk/device.h"

namespace unicorn::vk {
namespace {

constexpr VkDeviceSize kStagingBytes = VkDeviceSize(64) << 20;

struct MemoryChoice {
  VkMemoryPropertyFlags required;
  VkMemoryPropertyFlags avoided;  // a type without these wins over one with them
};

// The ordered fallback list of the file comment.
std::vector<MemoryChoice> Choices(MemoryUse use) {
  constexpr VkMemoryPropertyFlags kLocal = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  constexpr VkMemoryPropertyFlags kMapped =
      VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  if (use == MemoryUse::kDevice) {
    return {{kLocal | kMapped, 0}, {kLocal, 0}, {kMapped, 0}};
  }
  return {{kMapped | VK_MEMORY_PROPERTY_HOST_CACHED_BIT, kLocal}, {kMapped, kLocal}};
}

}  // namespace

std::string HumanBytes(uint64_t n) {
  if (n >= (uint64_t(1) << 30)) return absl::StrFormat("%.1f GiB", double(n) / (1 << 30));
  if (n >= (uint64_t(1) << 20)) return absl::StrFormat("%.1f MiB", double(n) / (1 << 20));
  if (n >= (uint64_t(1) << 10)) return absl::StrFormat("%.1f KiB", double(n) / (1 << 10));
  return absl::StrCat(n, " B");
}

Buffer::~Buffer() { Reset(); }

Buffer& Buffer::operator=(Buffer&& o) noexcept {
  if (this != &o) {
    Reset();
    device_ = o.device_;
    buffer_ = o.buffer_;
    memory_ = o.memory_;
    mapped_ = o.mapped_;
    size_ = o.size_;
    device_local_ = o.device_local_;
    host_cached_ = o.host_cached_;
    o.buffer_ = VK_NULL_HANDLE;
    o.memory_ = VK_NULL_HANDLE;
    o.mapped_ = nullptr;
    o.size_ = 0;
  }
  return *this;
}

void Buffer::Reset() {
  if (device_ == VK_NULL_HANDLE) return;
  if (buffer_ != VK_NULL_HANDLE) vkDestroyBuffer(device_, buffer_, nullptr);
  if (memory_ != VK_NULL_HANDLE) vkFreeMemory(device_, memory_, nullptr);  // unmaps too
  buffer_ = VK_NULL_HANDLE;
  memory_ = VK_NULL_HANDLE;
  mapped_ = nullptr;
  size_ = 0;
}

SubBuffer Buffer::Sub(VkDeviceSize offset, VkDeviceSize size) const {
  UNICORN_CHECK(offset + size <= size_);
  return {buffer_, offset, size};
}

StatusOr<Buffer> Allocator::Create(VkDeviceSize size, MemoryUse use, const std::string& what) {
  VkDevice dev = device_.handle();
  size = std::max<VkDeviceSize>((size + 15) & ~VkDeviceSize(15), 16);
  std::string ctx = absl::StrCat("[vk] alloc ", what, " (", HumanBytes(size), ")");
  Buffer b;
  b.device_ = dev;
  b.size_ = size;
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.size = size;
  bci.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
              VK_BUFFER_USAGE_TRANSFER_DST_BIT;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkResult r = vkCreateBuffer(dev, &bci, nullptr, &b.buffer_);
  if (r != VK_SUCCESS) return Annotate(VkError("vkCreateBuffer", r), ctx);
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(dev, b.buffer_, &req);

  const VkPhysicalDeviceMemoryProperties& mp = device_.memory_properties();
  VkResult last = VK_ERROR_OUT_OF_DEVICE_MEMORY;
  for (const MemoryChoice& choice : Choices(use)) {
    // Candidate types in preference order: those without `avoided` first.
    std::vector<uint32_t> types;
    for (int pass = 0; pass < 2; ++pass) {
      for (uint32_t t = 0; t < mp.memoryTypeCount; ++t) {
        VkMemoryPropertyFlags f = mp.memoryTypes[t].propertyFlags;
        if (!(req.memoryTypeBits & (1u << t)) || (f & choice.required) != choice.required) continue;
        bool avoided = (f & choice.avoided) != 0;
        if ((pass == 0) != avoided) types.push_back(t);
      }
    }
    for (uint32_t t : types) {
      VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
      ai.allocationSize = req.size;
      ai.memoryTypeIndex = t;
      last = vkAllocateMemory(dev, &ai, nullptr, &b.memory_);
      if (last != VK_SUCCESS) continue;
      VkMemoryPropertyFlags f = mp.memoryTypes[t].propertyFlags;
      b.device_local_ = f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
      b.host_cached_ = f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
      r = vkBindBufferMemory(dev, b.buffer_, b.memory_, 0);
      if (r != VK_SUCCESS) return Annotate(VkError("vkBindBufferMemory", r), ctx);
      if (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) {
        r = vkMapMemory(dev, b.memory_, 0, VK_WHOLE_SIZE, 0, &b.mapped_);
        if (r != VK_SUCCESS) return Annotate(VkError("vkMapMemory", r), ctx);
      }
      return b;
    }
  }
  return Annotate(VkError("vkAllocateMemory", last), ctx);
}

StatusOr<Buffer*> Allocator::Staging(size_t n) {
  if (!staging_ || staging_.size() < n) {
    UNICORN_ASSIGN_OR_RETURN(
        staging_, Create(std::min<VkDeviceSize>(std::max<VkDeviceSize>(n, 1 << 20), kStagingBytes),
                         MemoryUse::kHost, "staging"));
  }
  return &staging_;
}

Status Allocator::Upload(const SubBuffer& dst, const void* src, size_t n) {
  UNICORN_CHECK(n <= dst.size);
  const uint8_t* p = static_cast<const uint8_t*>(src);
  CommandBuffer cmd(device_);
  for (size_t done = 0; done < n;) {
    size_t chunk = std::min<size_t>(n - done, kStagingBytes);
    UNICORN_ASSIGN_OR_RETURN(Buffer * st, Staging(chunk));
    std::memcpy(st->mapped(), p + done, chunk);
    cmd.Begin();
    cmd.Copy(st->Sub(0, chunk), {dst.buffer, dst.offset + done, chunk}, chunk);
    UNICORN_RETURN_IF_ERROR(cmd.End());
    UNICORN_RETURN_IF_ERROR(cmd.SubmitAndWait());
    done += chunk;
  }
  return absl::OkStatus();
}

Status Allocator::Upload(const Buffer& dst, VkDeviceSize offset, const void* src, size_t n) {
  UNICORN_CHECK(offset + n <= dst.size());
  if (dst.mapped() != nullptr) {
    std::memcpy(static_cast<uint8_t*>(dst.mapped()) + offset, src, n);
    return absl::OkStatus();
  }
  return Upload(dst.Sub(offset, n), src, n);
}

Status Allocator::Download(const SubBuffer& src, void* dst, size_t n) {
  UNICORN_CHECK(n <= src.size);
  uint8_t* p = static_cast<uint8_t*>(dst);
  CommandBuffer cmd(device_);
  for (size_t done = 0; done < n;) {
    size_t chunk = std::min<size_t>(n - done, kStagingBytes);
    UNICORN_ASSIGN_OR_RETURN(Buffer * st, Staging(chunk));
    cmd.Begin();
    cmd.Copy({src.buffer, src.offset + done, chunk}, st->Sub(0, chunk), chunk);
    UNICORN_RETURN_IF_ERROR(cmd.End());
    UNICORN_RETURN_IF_ERROR(cmd.SubmitAndWait());
    std::memcpy(p + done, st->mapped(), chunk);
    done += chunk;
  }
  return absl::OkStatus();
}

Status Allocator::Zero(const SubBuffer& dst) {
  CommandBuffer cmd(device_);
  cmd.Begin();
  cmd.Fill(dst, 0);
  UNICORN_RETURN_IF_ERROR(cmd.End());
  return cmd.SubmitAndWait();
}

}  // namespace unicorn::vk
