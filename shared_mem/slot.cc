#include "shared_mem/slot.h"

#include <sched.h>
#include <time.h>

#include <atomic>
#include <cstring>

#include "shared_mem/tensor_desc.h"

namespace unicorn::shm {

namespace {

constexpr size_t kTensorWords = sizeof(TensorDesc) / 8;

int64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

// The tensor descriptor is stored as 64-bit words written and read with
// relaxed atomics inside the seqlock, so a racing reader sees a (possibly
// mixed) set of words, never undefined behaviour; the sequence check then
// rejects a mixed set.
void StoreTensor(SlotHeader* h, const TensorDesc& t) {
  uint64_t words[kTensorWords];
  std::memcpy(words, &t, sizeof(t));
  for (size_t i = 0; i < kTensorWords; ++i) {
    Atomic(h->tensor_words[i]).store(words[i], std::memory_order_relaxed);
  }
}

TensorDesc LoadTensor(SlotHeader* h) {
  uint64_t words[kTensorWords];
  for (size_t i = 0; i < kTensorWords; ++i) {
    words[i] = Atomic(h->tensor_words[i]).load(std::memory_order_relaxed);
  }
  TensorDesc t;
  std::memcpy(&t, words, sizeof(t));
  return t;
}

// Consistent snapshot of (sequence, generation, tensor): retried while a
// writer is between the two sequence loads.
struct Snapshot {
  uint64_t sequence;
  uint64_t generation;
  TensorDesc tensor;
};

Snapshot Load(SlotHeader* h) {
  Snapshot s{};
  for (int attempt = 0; attempt < 4; ++attempt) {
    s.sequence = Atomic(h->sequence).load(std::memory_order_acquire);
    s.generation = Atomic(h->generation).load(std::memory_order_relaxed);
    s.tensor = LoadTensor(h);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (Atomic(h->sequence).load(std::memory_order_relaxed) == s.sequence) break;
  }
  return s;
}

std::string Ctx(const SlotDescriptor& d) {
  return absl::StrCat("[shm] descriptor ", DescriptorString(d));
}

}  // namespace

StatusOr<SlotWriter> SlotWriter::Claim(const Region& region, uint32_t index, uint64_t generation) {
  if (index >= region.slot_count()) {
    return absl::OutOfRangeError(absl::StrCat("[shm] region ", region.id(), " '", region.name(),
                                              "': no slot ", index, " (", region.slot_count(),
                                              " slots)"));
  }
  if (generation == 0) {
    return absl::InvalidArgumentError("[shm] writer generation must be nonzero");
  }
  SlotHeader* h = region.header(index);
  uint64_t seq = Atomic(h->sequence).load(std::memory_order_relaxed);
  // An odd sequence is a write a dead incarnation left half done: skip past it.
  uint64_t odd = (seq % 2 == 1) ? seq + 2 : seq + 1;
  Atomic(h->sequence).store(odd, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  Atomic(h->generation).store(generation, std::memory_order_relaxed);
  StoreTensor(h, TensorDesc{});
  Atomic(h->released).store(0, std::memory_order_relaxed);
  Atomic(h->sequence).store(odd + 1, std::memory_order_release);

  SlotWriter w(region, index, generation);
  w.sequence_ = odd + 1;
  return w;
}

StatusOr<std::span<uint8_t>> SlotWriter::BeginWrite(const TensorDesc& t) {
  if (writing_) {
    return absl::FailedPreconditionError(
        absl::StrCat("[shm] slot ", region_->name(), "/", index_, ": write already in progress"));
  }
  UNICORN_RETURN_IF_ERROR(Annotate(ValidateTensor(t, capacity()),
                                   absl::StrCat("[shm] slot ", region_->name(), "/", index_)));
  SlotHeader* h = region_->header(index_);
  uint64_t seq = Atomic(h->sequence).load(std::memory_order_relaxed);
  if (seq != sequence_ || Atomic(h->generation).load(std::memory_order_relaxed) != generation_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "[shm] slot ", region_->name(), "/", index_, ": claimed by another writer (generation ",
        Atomic(h->generation).load(std::memory_order_relaxed), ", ours ", generation_, ")"));
  }
  Atomic(h->sequence).store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);  // odd before any payload byte
  StoreTensor(h, t);
  UNICORN_RETURN_IF_ERROR(region_->buffer().BeginCpuAccess(CpuAccess::kWrite));
  sequence_ = seq + 1;
  byte_size_ = t.byte_size;
  writing_ = true;
  return std::span<uint8_t>(region_->payload(index_), t.byte_size);
}

StatusOr<SlotDescriptor> SlotWriter::Commit() {
  if (!writing_) {
    return absl::FailedPreconditionError(
        absl::StrCat("[shm] slot ", region_->name(), "/", index_, ": commit without a write"));
  }
  writing_ = false;
  UNICORN_RETURN_IF_ERROR(region_->buffer().EndCpuAccess(CpuAccess::kWrite));
  SlotHeader* h = region_->header(index_);
  Atomic(h->commit_ns).store(static_cast<uint64_t>(NowNs()), std::memory_order_relaxed);
  sequence_ += 1;
  Atomic(h->sequence).store(sequence_, std::memory_order_release);  // payload before even
  last_committed_ = sequence_;
  SlotDescriptor d;
  d.region_id = region_->id();
  d.offset = payload_offset();
  d.byte_size = byte_size_;
  d.sequence = sequence_;
  d.generation = generation_;
  return d;
}

bool SlotWriter::Released() const {
  if (last_committed_ == 0) return true;
  return Atomic(region_->header(index_)->released).load(std::memory_order_acquire) >=
         last_committed_;
}

StatusOr<WriterRing> WriterRing::Claim(const Region& region, uint32_t first, uint32_t count,
                                       uint64_t generation) {
  if (count == 0 || first + static_cast<uint64_t>(count) > region.slot_count()) {
    return absl::OutOfRangeError(absl::StrCat("[shm] region '", region.name(), "': slots [", first,
                                              ", ", first + count, ") of ", region.slot_count()));
  }
  WriterRing ring;
  for (uint32_t i = first; i < first + count; ++i) {
    UNICORN_ASSIGN_OR_RETURN(SlotWriter w, SlotWriter::Claim(region, i, generation));
    ring.writers_.push_back(std::move(w));
  }
  return ring;
}

StatusOr<SlotWriter*> WriterRing::Acquire(int timeout_ms, int spin_us) {
  SlotWriter* w = &writers_[next_];
  const int64_t start = NowNs();
  const int64_t spin_end = start + int64_t{spin_us} * 1000;
  const int64_t deadline = start + int64_t{timeout_ms} * 1000000;
  while (!w->Released()) {
    int64_t now = NowNs();
    if (now >= deadline) {
      return absl::DeadlineExceededError(absl::StrCat("[shm] slot ", w->region().name(), "/",
                                                      w->index(), " not released by its ",
                                                      "consumer within ", timeout_ms, " ms"));
    }
    if (now >= spin_end) {
      timespec pause{0, 20000};  // 20 us: a consumer that is slow, not a fast handoff
      ::nanosleep(&pause, nullptr);
    }
  }
  next_ = (next_ + 1) % writers_.size();
  return w;
}

StatusOr<SlotView> BeginRead(const Arena& arena, const SlotDescriptor& d) {
  if (d.flags != 0) {
    return absl::InvalidArgumentError(absl::StrCat(Ctx(d), ": unknown flags ", d.flags));
  }
  const Region* r = arena.region(d.region_id);
  if (r == nullptr) {
    std::string known;
    for (const auto& reg : arena.regions())
      absl::StrAppend(&known, known.empty() ? "" : ", ", reg->id());
    return absl::NotFoundError(
        absl::StrCat(Ctx(d), ": unknown region ", d.region_id, " (this arena has ", known, ")"));
  }
  if (d.offset % kPageBytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(Ctx(d), ": misaligned offset ", d.offset,
                                                   " (slot payloads are ", kPageBytes,
                                                   "-byte aligned)"));
  }
  if (d.offset >= r->size() || d.byte_size > r->size() - d.offset) {
    return absl::OutOfRangeError(
        absl::StrCat(Ctx(d), ": out of range: ", d.byte_size, " bytes at offset ", d.offset,
                     " are outside region '", r->name(), "' (", r->size(), " bytes)"));
  }
  int index = r->SlotAtPayload(d.offset);
  if (index < 0) {
    return absl::InvalidArgumentError(absl::StrCat(Ctx(d), ": offset ", d.offset,
                                                   " is not the payload of any slot of region '",
                                                   r->name(), "'"));
  }
  const SlotInfo& info = r->slot(static_cast<uint32_t>(index));
  if (d.byte_size > info.capacity) {
    return absl::OutOfRangeError(absl::StrCat(Ctx(d), ": out of range: ", d.byte_size,
                                              " bytes exceed the capacity of slot ", index, " (",
                                              info.capacity, " bytes)"));
  }
  if (d.sequence == 0 || d.sequence % 2 == 1) {
    return absl::InvalidArgumentError(absl::StrCat(Ctx(d), ": sequence ", d.sequence,
                                                   " was never published (must be even, > 0)"));
  }
  SlotHeader* h = r->header(static_cast<uint32_t>(index));
  Snapshot s = Load(h);
  if (s.sequence % 2 == 1) {
    return absl::UnavailableError(
        absl::StrCat(Ctx(d), ": slot ", index, " is being written (sequence ", s.sequence,
                     " is odd): its writer is mid-write or died there; contents not consumed"));
  }
  if (s.generation != d.generation) {
    return absl::FailedPreconditionError(absl::StrCat(Ctx(d), ": wrong generation: slot ", index,
                                                      " now belongs to writer generation ",
                                                      s.generation, " (the writer restarted)"));
  }
  if (s.sequence != d.sequence) {
    return absl::AbortedError(absl::StrCat(Ctx(d), ": stale sequence: slot ", index,
                                           " was rewritten (sequence now ", s.sequence, ")"));
  }
  if (s.tensor.byte_size != d.byte_size) {
    return absl::InvalidArgumentError(absl::StrCat(Ctx(d), ": byte size ", d.byte_size,
                                                   " does not match the slot's tensor ",
                                                   TensorString(s.tensor)));
  }
  if (Status v = ValidateTensor(s.tensor, info.capacity); !v.ok()) {
    return absl::DataLossError(absl::StrCat(Ctx(d), ": slot ", index, ": ", v.message()));
  }
  UNICORN_RETURN_IF_ERROR(r->buffer().BeginCpuAccess(CpuAccess::kRead));
  SlotView view;
  view.desc = d;
  view.tensor = s.tensor;
  view.data = r->payload(static_cast<uint32_t>(index));
  view.region = r;
  view.slot_index = static_cast<uint32_t>(index);
  return view;
}

Status EndRead(const SlotView& view) {
  Status sync = view.region->buffer().EndCpuAccess(CpuAccess::kRead);
  std::atomic_thread_fence(std::memory_order_acquire);  // payload reads before the re-check
  SlotHeader* h = view.region->header(view.slot_index);
  uint64_t seq = Atomic(h->sequence).load(std::memory_order_relaxed);
  uint64_t gen = Atomic(h->generation).load(std::memory_order_relaxed);
  if (gen != view.desc.generation) {
    return absl::FailedPreconditionError(
        absl::StrCat(Ctx(view.desc), ": wrong generation after reading: writer generation ", gen,
                     " took the slot over; discard what was read"));
  }
  if (seq != view.desc.sequence) {
    return absl::AbortedError(absl::StrCat(Ctx(view.desc),
                                           ": stale sequence after reading: slot rewritten "
                                           "(sequence now ",
                                           seq, "); discard what was read"));
  }
  return sync;
}

void Release(const SlotView& view) {
  SlotHeader* h = view.region->header(view.slot_index);
  // Monotonic: a late release of an older write never un-releases a newer one.
  uint64_t cur = Atomic(h->released).load(std::memory_order_relaxed);
  while (cur < view.desc.sequence &&
         !Atomic(h->released)
              .compare_exchange_weak(cur, view.desc.sequence, std::memory_order_release,
                                     std::memory_order_relaxed)) {
  }
}

SlotState ReadState(const Region& region, uint32_t index) {
  SlotHeader* h = region.header(index);
  Snapshot s = Load(h);
  SlotState st;
  st.sequence = s.sequence;
  st.generation = s.generation;
  st.released = Atomic(h->released).load(std::memory_order_acquire);
  st.tensor = s.tensor;
  return st;
}

}  // namespace unicorn::shm
