#include "shared_mem/region.h"

#include <algorithm>
#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <cstring>
#include <new>

namespace unicorn::shm {

namespace bip = boost::interprocess;

namespace {

// Owner-only allocator over the region's heap (see region.h for the choice).
using SlotHeap =
    bip::basic_managed_external_buffer<char, bip::rbtree_best_fit<bip::null_mutex_family>,
                                       bip::iset_index>;

// Boost's segment manager and free-tree headers, with room to spare.
constexpr uint64_t kHeapOverheadBytes = 2 * kPageBytes;

std::string Ctx(uint32_t id, const std::string& name) {
  return absl::StrCat("[shm] region ", id, name.empty() ? "" : absl::StrCat(" '", name, "'"));
}

}  // namespace

uint64_t RegionBytes(const RegionPlan& plan) {
  uint64_t per_slot = kPageBytes + RoundUpToPage(plan.slot_bytes) + kPageBytes;
  return kPageBytes + kHeapOverheadBytes + per_slot * plan.slot_count;
}

StatusOr<std::unique_ptr<Region>> Region::Format(std::unique_ptr<SharedBuffer> buffer,
                                                 uint32_t region_id, const RegionPlan& plan,
                                                 uint64_t owner_generation) {
  std::string ctx = Ctx(region_id, plan.name);
  if (plan.name.empty() || plan.name.size() >= static_cast<size_t>(kRegionNameBytes)) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx, ": name must have 1..", kRegionNameBytes - 1, " bytes"));
  }
  if (plan.slot_count == 0 || plan.slot_count > kMaxSlotsPerRegion || plan.slot_bytes == 0) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": ", plan.slot_count, " slots of ",
                                                   plan.slot_bytes, " bytes (need 1..",
                                                   kMaxSlotsPerRegion, " slots, > 0 bytes)"));
  }
  if (buffer->size() < RegionBytes(plan)) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": buffer of ", buffer->size(),
                                                   " bytes, the plan needs ", RegionBytes(plan)));
  }
  uint8_t* base = buffer->data();
  // Headers are touched by CPUs only, so they need no dma-buf sync bracket;
  // payload accesses are bracketed in slot.cc.
  std::memset(base, 0, kPageBytes);
  auto* rh = reinterpret_cast<RegionHeader*>(base);

  SlotHeap heap(bip::create_only, base + kPageBytes, buffer->size() - kPageBytes);
  std::vector<SlotInfo> slots;
  slots.reserve(plan.slot_count);
  const uint64_t capacity = RoundUpToPage(plan.slot_bytes);
  for (uint32_t i = 0; i < plan.slot_count; ++i) {
    void* p = heap.allocate_aligned(kPageBytes + capacity, kPageBytes, std::nothrow);
    if (p == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat(ctx, ": slot ", i, " of ", kPageBytes + capacity, " bytes does not fit"));
    }
    SlotInfo info;
    info.header_offset = static_cast<uint64_t>(static_cast<uint8_t*>(p) - base);
    info.payload_offset = info.header_offset + kPageBytes;
    info.capacity = capacity;
    if (!slots.empty() &&
        info.header_offset < slots.back().payload_offset + slots.back().capacity) {
      return absl::InternalError(absl::StrCat(ctx, ": allocator returned slots out of order"));
    }
    slots.push_back(info);

    auto* sh = reinterpret_cast<SlotHeader*>(p);
    std::memset(sh, 0, sizeof(SlotHeader));
    sh->magic = kSlotMagic;
    sh->version = kLayoutVersion;
    sh->header_bytes = sizeof(SlotHeader);
    sh->region_id = region_id;
    sh->slot_index = i;
    sh->payload_offset = info.payload_offset;
    sh->capacity = info.capacity;
    rh->slot_offsets[i] = info.header_offset;
  }

  rh->version = kLayoutVersion;
  rh->header_bytes = sizeof(RegionHeader);
  rh->region_id = region_id;
  rh->slot_count = plan.slot_count;
  rh->size = buffer->size();
  rh->owner_generation = owner_generation;
  rh->heap_offset = kPageBytes;
  rh->heap_size = buffer->size() - kPageBytes;
  std::memcpy(rh->name, plan.name.data(), plan.name.size());
  // The magic goes last: a half-formatted region never looks valid.
  Atomic(rh->next_writer_generation).store(0, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  rh->magic = kRegionMagic;

  return std::unique_ptr<Region>(
      new Region(std::move(buffer), region_id, plan.name, owner_generation, std::move(slots)));
}

StatusOr<std::unique_ptr<Region>> Region::Open(std::unique_ptr<SharedBuffer> buffer,
                                               uint32_t region_id, uint64_t owner_generation) {
  std::string ctx = Ctx(region_id, "");
  const uint64_t size = buffer->size();
  if (size < 2 * kPageBytes) {
    return absl::DataLossError(absl::StrCat(ctx, ": only ", size, " bytes"));
  }
  // Validate a private copy: the shared header could change under us.
  RegionHeader rh;
  std::memcpy(&rh, buffer->data(), sizeof(rh));
  if (rh.magic != kRegionMagic) {
    return absl::DataLossError(absl::StrCat(ctx, ": bad magic 0x", absl::Hex(rh.magic)));
  }
  if (rh.version != kLayoutVersion || rh.header_bytes != sizeof(RegionHeader)) {
    return absl::FailedPreconditionError(absl::StrCat(ctx, ": layout version ", rh.version, "/",
                                                      rh.header_bytes, " bytes, this build has ",
                                                      kLayoutVersion, "/", sizeof(RegionHeader)));
  }
  if (rh.region_id != region_id) {
    return absl::FailedPreconditionError(absl::StrCat(ctx, ": header names region ", rh.region_id));
  }
  if (rh.owner_generation != owner_generation) {
    return absl::FailedPreconditionError(absl::StrCat(
        ctx, ": owner generation ", rh.owner_generation, ", announced ", owner_generation));
  }
  if (rh.size != size) {
    return absl::DataLossError(
        absl::StrCat(ctx, ": header says ", rh.size, " bytes, the buffer has ", size));
  }
  if (std::memchr(rh.name, 0, sizeof(rh.name)) == nullptr || rh.name[0] == 0) {
    return absl::DataLossError(absl::StrCat(ctx, ": name is not a NUL-terminated string"));
  }
  std::string name(rh.name);
  ctx = Ctx(region_id, name);
  if (rh.slot_count == 0 || rh.slot_count > kMaxSlotsPerRegion) {
    return absl::DataLossError(absl::StrCat(ctx, ": ", rh.slot_count, " slots"));
  }
  std::vector<SlotInfo> slots;
  slots.reserve(rh.slot_count);
  uint64_t end_of_previous = kPageBytes;  // nothing overlaps the region header
  for (uint32_t i = 0; i < rh.slot_count; ++i) {
    SlotInfo info;
    info.header_offset = rh.slot_offsets[i];
    if (info.header_offset % kPageBytes != 0 || info.header_offset < end_of_previous ||
        info.header_offset > size - 2 * kPageBytes) {
      return absl::DataLossError(
          absl::StrCat(ctx, ": slot ", i, " header offset ", info.header_offset, " misplaced"));
    }
    SlotHeader sh;
    std::memcpy(&sh, buffer->data() + info.header_offset, sizeof(sh));
    info.payload_offset = sh.payload_offset;
    info.capacity = sh.capacity;
    if (sh.magic != kSlotMagic || sh.version != kLayoutVersion ||
        sh.header_bytes != sizeof(SlotHeader) || sh.region_id != region_id || sh.slot_index != i) {
      return absl::DataLossError(absl::StrCat(ctx, ": slot ", i, " header is malformed"));
    }
    if (info.payload_offset != info.header_offset + kPageBytes || info.capacity == 0 ||
        info.capacity % kPageBytes != 0 || info.capacity > size - info.payload_offset) {
      return absl::DataLossError(absl::StrCat(ctx, ": slot ", i, " payload [", info.payload_offset,
                                              ", +", info.capacity, ") is not inside the region (",
                                              size, " bytes)"));
    }
    end_of_previous = info.payload_offset + info.capacity;
    slots.push_back(info);
  }
  return std::unique_ptr<Region>(new Region(std::move(buffer), region_id, std::move(name),
                                            owner_generation, std::move(slots)));
}

int Region::SlotAtPayload(uint64_t offset) const {
  auto it =
      std::lower_bound(slots_.begin(), slots_.end(), offset,
                       [](const SlotInfo& s, uint64_t off) { return s.payload_offset < off; });
  if (it == slots_.end() || it->payload_offset != offset) return -1;
  return static_cast<int>(it - slots_.begin());
}

uint64_t Region::NextWriterGeneration() const {
  return Atomic(region_header()->next_writer_generation).fetch_add(1, std::memory_order_acq_rel) +
         1;
}

}  // namespace unicorn::shm
