#include "shared_mem/arena.h"

#include <time.h>
#include <unistd.h>

#include <set>

#include "common/log.h"

namespace unicorn::shm {

namespace {

uint64_t FreshGeneration() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t g = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  g ^= static_cast<uint64_t>(::getpid()) << 40;
  return g == 0 ? 1 : g;
}

}  // namespace

StatusOr<std::unique_ptr<Arena>> Arena::Create(const ArenaPlan& plan, const ArenaOptions& options) {
  if (plan.regions.empty()) return absl::InvalidArgumentError("[shm] arena: empty plan");
  UNICORN_ASSIGN_OR_RETURN(BackendChoice backend, ChooseBackend(options.backend));
  uint64_t generation =
      options.owner_generation != 0 ? options.owner_generation : FreshGeneration();
  std::vector<std::unique_ptr<Region>> regions;
  for (size_t i = 0; i < plan.regions.size(); ++i) {
    const RegionPlan& rp = plan.regions[i];
    const uint32_t id = static_cast<uint32_t>(i + 1);
    UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<SharedBuffer> buffer,
                             SharedBuffer::Allocate(backend.kind, RegionBytes(rp), rp.name));
    UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<Region> region,
                             Region::Format(std::move(buffer), id, rp, generation));
    regions.push_back(std::move(region));
  }
  LOG_INFO("[shm] arena (owner generation {}): {}; backend {}", generation, plan.ToString(),
           backend.report);
  return std::unique_ptr<Arena>(new Arena(std::move(regions), generation, backend.kind));
}

StatusOr<std::unique_ptr<Arena>> Arena::FromRegions(std::vector<std::unique_ptr<Region>> regions,
                                                    uint64_t owner_generation) {
  if (regions.empty()) return absl::InvalidArgumentError("[shm] arena: no regions");
  std::set<uint32_t> ids;
  BufferKind kind = regions.front()->buffer().kind();
  for (const auto& r : regions) {
    if (!ids.insert(r->id()).second) {
      return absl::InvalidArgumentError(absl::StrCat("[shm] arena: region ", r->id(), " twice"));
    }
    if (r->owner_generation() != owner_generation) {
      return absl::FailedPreconditionError(
          absl::StrCat("[shm] arena: region ", r->id(), " belongs to owner generation ",
                       r->owner_generation(), ", not ", owner_generation));
    }
  }
  return std::unique_ptr<Arena>(new Arena(std::move(regions), owner_generation, kind));
}

Region* Arena::region(uint32_t id) const {
  for (const auto& r : regions_) {
    if (r->id() == id) return r.get();
  }
  return nullptr;
}

Region* Arena::region(std::string_view name) const {
  for (const auto& r : regions_) {
    if (r->name() == name) return r.get();
  }
  return nullptr;
}

uint64_t Arena::total_bytes() const {
  uint64_t total = 0;
  for (const auto& r : regions_) total += r->size();
  return total;
}

}  // namespace unicorn::shm
