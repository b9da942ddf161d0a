#include "gpu_worker/vk/external_memory.h"

#include <unistd.h>

#include <cstdint>

#include "gpu_worker/vk/device.h"

namespace unicorn::vk {
namespace {

constexpr VkBufferUsageFlags kUsage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT;

// The first host-coherent memory type in `bits`, or -1.
int PickCoherentType(const Device& d, uint32_t bits) {
  const VkPhysicalDeviceMemoryProperties& mp = d.memory_properties();
  for (uint32_t t = 0; t < mp.memoryTypeCount; ++t) {
    if ((bits & (1u << t)) &&
        (mp.memoryTypes[t].propertyFlags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT)) {
      return int(t);
    }
  }
  return -1;
}

Status Unavailable(const std::string& ctx, absl::string_view why) {
  return absl::UnavailableError(absl::StrCat(ctx, ": ", why));
}

// An unbound buffer that memory of handle type `type` can back.
StatusOr<VkBuffer> CreateExternalBuffer(Device& d, VkExternalMemoryHandleTypeFlagBits type,
                                        size_t size, const std::string& ctx) {
  VkExternalMemoryBufferCreateInfo ext{VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO};
  ext.handleTypes = type;
  VkBufferCreateInfo bci{VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO};
  bci.pNext = &ext;
  bci.size = size;
  bci.usage = kUsage;
  bci.sharingMode = VK_SHARING_MODE_EXCLUSIVE;
  VkBuffer buf = VK_NULL_HANDLE;
  VkResult r = vkCreateBuffer(d.handle(), &bci, nullptr, &buf);
  if (r != VK_SUCCESS) return Annotate(VkError("vkCreateBuffer", r), ctx);
  return buf;
}

}  // namespace

StatusOr<Buffer> ExternalMemory::ImportHost(Device& device, void* ptr, size_t size,
                                            const std::string& what) {
  const std::string ctx = absl::StrCat("[vk] host import of ", what, " (", HumanBytes(size), ")");
  const DeviceCaps& c = device.caps();
  if (!c.external_memory_host) return Unavailable(ctx, "no VK_EXT_external_memory_host");
  const uint64_t align = std::max<uint64_t>(c.min_imported_host_alignment, 1);
  if (reinterpret_cast<uintptr_t>(ptr) % align != 0 || size % align != 0 || size == 0) {
    return Unavailable(ctx, absl::StrCat("pointer or size not a multiple of the device's ", align,
                                         "-byte minImportedHostPointerAlignment"));
  }
  constexpr auto kType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
  auto get_props = reinterpret_cast<PFN_vkGetMemoryHostPointerPropertiesEXT>(
      vkGetDeviceProcAddr(device.handle(), "vkGetMemoryHostPointerPropertiesEXT"));
  if (get_props == nullptr) return Unavailable(ctx, "no vkGetMemoryHostPointerPropertiesEXT");
  VkMemoryHostPointerPropertiesEXT hp{VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT};
  VkResult r = get_props(device.handle(), kType, ptr, &hp);
  if (r != VK_SUCCESS)
    return Unavailable(ctx, VkError("vkGetMemoryHostPointerPropertiesEXT", r).message());

  VkImportMemoryHostPointerInfoEXT imp{VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT};
  imp.handleType = kType;
  imp.pHostPointer = ptr;
  UNICORN_ASSIGN_OR_RETURN(Buffer b, Import(device, kType, hp.memoryTypeBits, &imp, -1, size,
                                            /*alloc_at_least_requirement=*/false, ctx));
  b.mapped_ = ptr;
  return b;
}

StatusOr<Buffer> ExternalMemory::ImportDmaBuf(Device& device, int fd, size_t size,
                                              const std::string& what) {
  const std::string ctx =
      absl::StrCat("[vk] dma-buf import of ", what, " (", HumanBytes(size), ")");
  if (!device.caps().external_memory_dma_buf) {
    return Unavailable(ctx, "no VK_EXT_external_memory_dma_buf");
  }
  constexpr auto kType = VK_EXTERNAL_MEMORY_HANDLE_TYPE_DMA_BUF_BIT_EXT;
  auto get_props = reinterpret_cast<PFN_vkGetMemoryFdPropertiesKHR>(
      vkGetDeviceProcAddr(device.handle(), "vkGetMemoryFdPropertiesKHR"));
  if (get_props == nullptr) return Unavailable(ctx, "no vkGetMemoryFdPropertiesKHR");
  VkMemoryFdPropertiesKHR fp{VK_STRUCTURE_TYPE_MEMORY_FD_PROPERTIES_KHR};
  VkResult r = get_props(device.handle(), kType, fd, &fp);
  if (r != VK_SUCCESS) return Unavailable(ctx, VkError("vkGetMemoryFdPropertiesKHR", r).message());

  // A successful import owns the fd; the caller keeps its own.
  const int dup_fd = ::dup(fd);
  if (dup_fd < 0) return Unavailable(ctx, "dup() of the fd failed");
  VkImportMemoryFdInfoKHR imp{VK_STRUCTURE_TYPE_IMPORT_MEMORY_FD_INFO_KHR};
  imp.handleType = kType;
  imp.fd = dup_fd;
  return Import(device, kType, fp.memoryTypeBits, &imp, dup_fd, size,
                /*alloc_at_least_requirement=*/true, ctx);
}

StatusOr<Buffer> ExternalMemory::Import(Device& device,
                                        VkExternalMemoryHandleTypeFlagBits handle_type,
                                        uint32_t type_bits, const void* import_info, int import_fd,
                                        size_t size, bool alloc_at_least_requirement,
                                        const std::string& ctx) {
  auto fail = [import_fd](Status s) {
    if (import_fd >= 0) ::close(import_fd);
    return s;
  };
  Buffer b;
  b.device_ = device.handle();
  b.size_ = size;
  auto buffer = CreateExternalBuffer(device, handle_type, size, ctx);
  if (!buffer.ok()) return fail(buffer.status());
  b.buffer_ = *buffer;
  VkMemoryRequirements req;
  vkGetBufferMemoryRequirements(device.handle(), b.buffer_, &req);
  const int type = PickCoherentType(device, req.memoryTypeBits & type_bits);
  if (type < 0) return fail(Unavailable(ctx, "no host-coherent memory type accepts the import"));
  if (!alloc_at_least_requirement && req.size > size) {
    return fail(Unavailable(ctx, absl::StrCat("the buffer needs ", req.size, " bytes of memory")));
  }
  VkMemoryAllocateInfo ai{VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO};
  ai.pNext = import_info;
  ai.allocationSize = alloc_at_least_requirement ? std::max<VkDeviceSize>(req.size, size) : size;
  ai.memoryTypeIndex = uint32_t(type);
  VkResult r = vkAllocateMemory(device.handle(), &ai, nullptr, &b.memory_);
  if (r != VK_SUCCESS) return fail(Unavailable(ctx, VkError("vkAllocateMemory", r).message()));
  r = vkBindBufferMemory(device.handle(), b.buffer_, b.memory_, 0);
  if (r != VK_SUCCESS) return Annotate(VkError("vkBindBufferMemory", r), ctx);
  const VkMemoryPropertyFlags f = device.memory_properties().memoryTypes[type].propertyFlags;
  b.device_local_ = f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT;
  b.host_cached_ = f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT;
  return b;
}

}  // namespace unicorn::vk
