#include "gpu_worker/arena_import.h"

#include "common/log.h"
#include "gpu_worker/vk/memory.h"

namespace unicorn::vk {

Status ImportArena(VulkanOps& ops, const shm::Arena* arena) {
  ops.ForgetHostMemory();
  if (arena == nullptr) return absl::OkStatus();
  for (const auto& region : arena->regions()) {
    const shm::SharedBuffer& b = region->buffer();
    Status s = ops.ImportHostMemory(b.data(), b.size(), b.is_dma_buf() ? b.fd() : -1,
                                    absl::StrCat("arena region ", region->name()));
    if (!s.ok()) {
      ops.ForgetHostMemory();
      LOG_WARN("[vk] arena import unavailable ({}): copying activations", s.message());
      return s;
    }
  }
  LOG_INFO("[vk] arena imported ({} region(s), {}, {}): activations move without host copies",
           arena->regions().size(), HumanBytes(ops.imported_bytes()),
           shm::BufferKindName(arena->kind()));
  return absl::OkStatus();
}

}  // namespace unicorn::vk
