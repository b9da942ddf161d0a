// Zero-copy activations for the GPU worker: imports the coordinator's shared
// arena (shared_mem/arena.h) into the Vulkan backend, so stage inputs and
// outputs move between the arena's slots and the GPU's buffers without host
// copies (VulkanOps::ImportHostMemory).
#pragma once

#include "common/status.h"
#include "gpu_worker/vulkan_ops.h"
#include "shared_mem/arena.h"

namespace unicorn::vk {

// Imports every region of `arena`: a dma-buf region through
// VK_EXT_external_memory_dma_buf, a memfd region through its page-aligned
// host mapping (VK_EXT_external_memory_host). All or nothing: when a region
// cannot be imported (extension missing, alignment, UNICORN_VK_IMPORT=0),
// nothing stays imported, the worker copies activations as before, and one
// warning says why: "[vk] arena import unavailable (...): copying
// activations". `arena` == nullptr drops the imports (call it before the arena
// is unmapped). Returns the import's status.
Status ImportArena(VulkanOps& ops, const shm::Arena* arena);

}  // namespace unicorn::vk
