// A Region: one SharedBuffer formatted as a header plus fixed slots (layout.h).
// The owner formats it once at start-up; peers open the same bytes after
// receiving the fd and validate every offset before trusting it. Slots are
// never allocated or freed afterwards: they are reused for every token.
//
// Why Boost.Interprocess, and only for allocation: the owner carves the slots
// out of the region with boost::interprocess::managed_external_buffer
// (rbtree_best_fit over offset_ptr, null_mutex_family). Its bookkeeping lives
// inside the region and is position independent, so slots of different sizes
// (activations, logits, image embeddings) can share one dma-buf, i.e. one
// import on each device, and page-aligned payloads come from
// allocate_aligned(). Only the owner allocates, once, before any peer holds
// the fd, hence the null mutex: no process ever takes a lock inside shared
// memory. That matters: Boost 1.74's interprocess mutexes are not robust, so
// a worker killed while holding one would wedge its peers; and its atomics
// are internal (ipcdetail) and 32-bit. The per-slot protocol is therefore a
// lock-free seqlock on 64-bit std::atomic_ref fields (slot.h), which a killed
// writer cannot wedge and a reader can always diagnose. Peers never touch the
// Boost heap: they locate slots through the header's offset table, which they
// validate when opening the region.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "shared_mem/buffer.h"
#include "shared_mem/layout.h"

namespace unicorn::shm {

// Slots of one size class: `slot_count` payloads of `slot_bytes` each.
struct RegionPlan {
  std::string name;  // "act", "logits", "image"; at most 31 bytes
  uint64_t slot_bytes = 0;
  uint32_t slot_count = 0;
};

// Bytes of a region holding `plan`: header page, allocator bookkeeping, and
// per slot a header page, the page-rounded payload and one page of alignment
// slack.
uint64_t RegionBytes(const RegionPlan& plan);

struct SlotInfo {
  uint64_t header_offset = 0;
  uint64_t payload_offset = 0;
  uint64_t capacity = 0;
};

class Region {
 public:
  // Owner: formats `buffer` (at least RegionBytes(plan)) for `plan`.
  static StatusOr<std::unique_ptr<Region>> Format(std::unique_ptr<SharedBuffer> buffer,
                                                  uint32_t region_id, const RegionPlan& plan,
                                                  uint64_t owner_generation);

  // Peer: validates a region formatted by its owner (magic, version, id,
  // owner generation, every slot inside the buffer and well-formed). Errors
  // are DataLoss for corrupt contents, FailedPrecondition for a mismatch.
  static StatusOr<std::unique_ptr<Region>> Open(std::unique_ptr<SharedBuffer> buffer,
                                                uint32_t region_id, uint64_t owner_generation);

  uint32_t id() const { return id_; }
  const std::string& name() const { return name_; }
  uint64_t owner_generation() const { return owner_generation_; }
  const SharedBuffer& buffer() const { return *buffer_; }
  uint8_t* base() const { return buffer_->data(); }
  uint64_t size() const { return buffer_->size(); }

  uint32_t slot_count() const { return static_cast<uint32_t>(slots_.size()); }
  // Offsets validated at Format/Open time; never re-read from shared memory.
  const SlotInfo& slot(uint32_t index) const { return slots_.at(index); }
  SlotHeader* header(uint32_t index) const {
    return reinterpret_cast<SlotHeader*>(base() + slots_.at(index).header_offset);
  }
  uint8_t* payload(uint32_t index) const { return base() + slots_.at(index).payload_offset; }

  // The slot whose payload starts at `offset`, or -1.
  int SlotAtPayload(uint64_t offset) const;

  // A generation no writer of this region has used (a counter in the region
  // header, so a restarted writer gets a new one even without saved state).
  uint64_t NextWriterGeneration() const;

 private:
  Region(std::unique_ptr<SharedBuffer> buffer, uint32_t id, std::string name,
         uint64_t owner_generation, std::vector<SlotInfo> slots)
      : buffer_(std::move(buffer)),
        id_(id),
        name_(std::move(name)),
        owner_generation_(owner_generation),
        slots_(std::move(slots)) {}
  RegionHeader* region_header() const { return reinterpret_cast<RegionHeader*>(base()); }

  std::unique_ptr<SharedBuffer> buffer_;
  uint32_t id_;
  std::string name_;
  uint64_t owner_generation_;
  std::vector<SlotInfo> slots_;  // sorted by payload offset
};

}  // namespace unicorn::shm
