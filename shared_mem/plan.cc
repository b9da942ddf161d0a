#include "shared_mem/plan.h"

#include "absl/strings/str_format.h"

namespace unicorn::shm {

namespace {

constexpr uint64_t kMaxSlotBytes = uint64_t{4} << 30;

StatusOr<uint64_t> SlotBytes(const char* what, int64_t rows, int64_t cols, int elem_bytes) {
  unsigned __int128 n = static_cast<unsigned __int128>(rows) * static_cast<uint64_t>(cols) *
                        static_cast<unsigned>(elem_bytes);
  if (n > kMaxSlotBytes) {
    return absl::InvalidArgumentError(absl::StrCat("[shm] plan: ", what, " slot [", rows, ", ",
                                                   cols, "] x ", elem_bytes,
                                                   " bytes exceeds 4 GiB"));
  }
  return static_cast<uint64_t>(n);
}

std::string Mib(uint64_t bytes) { return absl::StrFormat("%.1f MiB", bytes / 1048576.0); }

}  // namespace

StatusOr<ArenaPlan> ArenaPlan::ForModel(const ModelLimits& m) {
  struct Check {
    const char* name;
    int64_t value;
  };
  for (Check c :
       {Check{"hidden", m.hidden}, Check{"vocab", m.vocab},
        Check{"max_batch_tokens", m.max_batch_tokens}, Check{"max_sequences", m.max_sequences},
        Check{"activation_bytes", m.activation_bytes},
        Check{"activation_slots", m.activation_slots}, Check{"logits_slots", m.logits_slots}}) {
    if (c.value <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("[shm] plan: ", c.name, " is ", c.value, ", must be > 0"));
    }
  }
  if (m.max_images < 0 || (m.max_images > 0 && (m.tokens_per_image <= 0 || m.image_slots <= 0))) {
    return absl::InvalidArgumentError("[shm] plan: image limits must be positive");
  }
  ArenaPlan plan;
  UNICORN_ASSIGN_OR_RETURN(uint64_t act,
                           SlotBytes("act", m.max_batch_tokens, m.hidden, m.activation_bytes));
  plan.regions.push_back({"act", act, static_cast<uint32_t>(m.activation_slots)});
  UNICORN_ASSIGN_OR_RETURN(uint64_t logits,
                           SlotBytes("logits", m.max_sequences, m.vocab, m.activation_bytes));
  plan.regions.push_back({"logits", logits, static_cast<uint32_t>(m.logits_slots)});
  if (m.max_images > 0) {
    UNICORN_ASSIGN_OR_RETURN(uint64_t image, SlotBytes("image", m.max_images * m.tokens_per_image,
                                                       m.hidden, m.activation_bytes));
    plan.regions.push_back({"image", image, static_cast<uint32_t>(m.image_slots)});
  }
  if (m.pixel_values < 0) return absl::InvalidArgumentError("[shm] plan: pixel_values < 0");
  if (m.pixel_values > 0) {
    UNICORN_ASSIGN_OR_RETURN(uint64_t px, SlotBytes("pixels", 1, m.pixel_values, 4));
    plan.regions.push_back({"pixels", px, 1});
  }
  for (const RegionPlan& r : plan.regions) {
    if (r.slot_count > kMaxSlotsPerRegion) {
      return absl::InvalidArgumentError(absl::StrCat("[shm] plan: ", r.name, ": ", r.slot_count,
                                                     " slots, at most ", kMaxSlotsPerRegion));
    }
  }
  return plan;
}

uint64_t ArenaPlan::TotalBytes() const {
  uint64_t total = 0;
  for (const RegionPlan& r : regions) total += RegionBytes(r);
  return total;
}

std::string ArenaPlan::ToString() const {
  std::string s;
  for (const RegionPlan& r : regions) {
    absl::StrAppend(&s, s.empty() ? "" : ", ", r.name, " ", r.slot_count, " x ", Mib(r.slot_bytes));
  }
  absl::StrAppend(&s, "; ", Mib(TotalBytes()), " mapped");
  return s;
}

}  // namespace unicorn::shm
