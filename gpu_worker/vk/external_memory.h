// Vulkan buffers over memory that someone else allocated: the shared arena
// (shared_mem/) that the coordinator hands to the workers, so activations are
// read and written by the GPU where they lie instead of being copied through
// staging buffers.
//
//   ImportDmaBuf  a dma-buf fd (udmabuf, dma-heap), through
//                 VK_EXT_external_memory_dma_buf + VK_KHR_external_memory_fd.
//                 The fd is dup()ed: the caller keeps its own.
//   ImportHost    a host mapping (the arena's memfd mapping), through
//                 VK_EXT_external_memory_host. Pointer and size must be
//                 multiples of minImportedHostPointerAlignment; the memory
//                 must stay mapped until the returned Buffer is destroyed.
//
// Both fail with Unavailable (and a reason: extension missing, alignment, no
// host-coherent memory type, the driver's error) when the import is
// impossible, so the caller can fall back to copying. The imported memory must
// be host-coherent: CPU writes are then visible to the GPU at submit, and GPU
// writes to the CPU after the fence wait, with no flush or invalidate.
#pragma once

#include <cstddef>
#include <string>

#include "common/status.h"
#include "gpu_worker/vk/memory.h"

namespace unicorn::vk {

class ExternalMemory {
 public:
  // A storage/transfer buffer over [ptr, ptr + size). Buffer::mapped() is ptr.
  static StatusOr<Buffer> ImportHost(Device& device, void* ptr, size_t size,
                                     const std::string& what);
  // A storage/transfer buffer over the first `size` bytes of dma-buf `fd`.
  // Buffer::mapped() is nullptr (the caller has its own mapping).
  static StatusOr<Buffer> ImportDmaBuf(Device& device, int fd, size_t size,
                                       const std::string& what);

 private:
  // The tail both imports share: a buffer of `size` bytes for handle type
  // `handle_type`, backed by `alloc_size` bytes of memory allocated with
  // `import_info` (a VkImport*Info, chained as pNext) from the first
  // host-coherent type in `type_bits` (the handle's compatible types).
  // `import_fd` (-1 for none) is the fd inside `import_info`: a successful
  // allocation owns it, so Import closes it only if it fails before that.
  static StatusOr<Buffer> Import(Device& device, VkExternalMemoryHandleTypeFlagBits handle_type,
                                 uint32_t type_bits, const void* import_info, int import_fd,
                                 size_t size, bool alloc_at_least_requirement,
                                 const std::string& ctx);
};

}  // namespace unicorn::vk
