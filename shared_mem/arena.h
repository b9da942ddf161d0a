// The arena: every shared region of one Unicorn instance. The owner (the
// coordinator) creates it at start-up from an ArenaPlan and serves the region
// fds to the workers (fd_passing.h); a worker attaches to the same bytes.
// Region ids are 1 + the plan index; descriptors name regions by id.
//
// Thread-safety: the arena and its regions are immutable after creation;
// slot access goes through slot.h.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shared_mem/buffer.h"
#include "shared_mem/plan.h"
#include "shared_mem/region.h"

namespace unicorn::shm {

struct ArenaOptions {
  BackendPreference backend = BackendPreference::kAuto;
  // The owner's incarnation, stamped into every region header and checked by
  // peers when they attach; 0 picks a fresh one (clock and pid).
  uint64_t owner_generation = 0;
};

class Arena {
 public:
  // Owner: chooses the buffer backend (logged), allocates and formats one
  // region per plan entry.
  static StatusOr<std::unique_ptr<Arena>> Create(const ArenaPlan& plan,
                                                 const ArenaOptions& options = {});

  // Peer: wraps regions opened from the owner's fds (see AttachArena in
  // fd_passing.h). All must carry `owner_generation`; ids must be unique.
  static StatusOr<std::unique_ptr<Arena>> FromRegions(std::vector<std::unique_ptr<Region>> regions,
                                                      uint64_t owner_generation);

  Region* region(uint32_t id) const;            // nullptr if unknown
  Region* region(std::string_view name) const;  // nullptr if unknown
  const std::vector<std::unique_ptr<Region>>& regions() const { return regions_; }

  uint64_t owner_generation() const { return owner_generation_; }
  BufferKind kind() const { return kind_; }
  uint64_t total_bytes() const;

 private:
  Arena(std::vector<std::unique_ptr<Region>> regions, uint64_t owner_generation, BufferKind kind)
      : regions_(std::move(regions)), owner_generation_(owner_generation), kind_(kind) {}

  std::vector<std::unique_ptr<Region>> regions_;
  uint64_t owner_generation_;
  BufferKind kind_;
};

}  // namespace unicorn::shm
