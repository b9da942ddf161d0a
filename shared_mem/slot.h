// Writing and reading slots: a seqlock per slot, pinned by generation.
//
// Protocol (fields in SlotHeader, layout.h):
//   writer  Claim:      seq -> odd; generation := g; tensor := empty; seq -> even
//           BeginWrite: seq -> odd; tensor := t        (fill the payload now)
//           Commit:     seq -> even; the descriptor carries (seq, g)
//   reader  BeginRead:  seq even, == descriptor's, generation == descriptor's
//           ... use the payload in place ...
//           EndRead:    seq and generation unchanged, else discard the result
//           Release:    released := seq (the writer may now reuse the slot)
// Each slot has one writer at a time. A writer killed inside a write leaves
// the sequence odd: readers then get Unavailable until a new incarnation
// claims the slot, which bumps the sequence and the generation, so every
// descriptor of the dead incarnation then fails with "wrong generation".
// Nothing is ever consumed from a slot in any other state.
//
// CPU access to a dma-buf payload is bracketed with DMA_BUF_IOCTL_SYNC by
// BeginWrite/Commit and BeginRead/EndRead (no-ops on a memfd).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/status.h"
#include "shared_mem/arena.h"
#include "shared_mem/descriptor.h"
#include "shared_mem/layout.h"
#include "shared_mem/region.h"

namespace unicorn::shm {

// The writer side of one slot. Movable, not copyable; not thread-safe.
class SlotWriter {
 public:
  // Takes over slot `index` of `region` for writer incarnation `generation`
  // (nonzero, e.g. Region::NextWriterGeneration() or the worker's
  // incarnation). Closes a write left half done by a dead incarnation.
  static StatusOr<SlotWriter> Claim(const Region& region, uint32_t index, uint64_t generation);

  // Starts writing tensor `t` (validated against the slot capacity): the
  // sequence turns odd. Returns the payload, [t.byte_size] bytes, page aligned.
  StatusOr<std::span<uint8_t>> BeginWrite(const TensorDesc& t);

  // Publishes the write: the sequence turns even. Returns its descriptor.
  StatusOr<SlotDescriptor> Commit();

  // True when the consumer released the last committed write (or when none
  // was committed since Claim): the slot may be rewritten without a reader
  // losing data it still needs.
  bool Released() const;

  const Region& region() const { return *region_; }
  uint32_t index() const { return index_; }
  uint64_t generation() const { return generation_; }
  uint64_t payload_offset() const { return region_->slot(index_).payload_offset; }
  uint64_t capacity() const { return region_->slot(index_).capacity; }
  bool writing() const { return writing_; }

 private:
  SlotWriter(const Region& region, uint32_t index, uint64_t generation)
      : region_(&region), index_(index), generation_(generation) {}

  const Region* region_;
  uint32_t index_;
  uint64_t generation_;
  bool writing_ = false;
  uint64_t sequence_ = 0;        // the slot's sequence as this writer left it
  uint64_t last_committed_ = 0;  // 0: nothing committed since Claim
  uint64_t byte_size_ = 0;       // of the write in progress
};

// Slots [first, first + count) of one region used round robin by one writer,
// with backpressure: a slot is reused only after its consumer released it.
class WriterRing {
 public:
  static StatusOr<WriterRing> Claim(const Region& region, uint32_t first, uint32_t count,
                                    uint64_t generation);

  // The next slot in ring order once its previous write is released. Spins
  // for up to `spin_us`, then sleeps in short steps; DeadlineExceeded after
  // `timeout_ms` (a consumer that stopped releasing).
  StatusOr<SlotWriter*> Acquire(int timeout_ms, int spin_us = 50);

  size_t size() const { return writers_.size(); }
  SlotWriter& at(size_t i) { return writers_.at(i); }

 private:
  std::vector<SlotWriter> writers_;
  size_t next_ = 0;
};

// A validated view of a slot's contents, for reading in place.
struct SlotView {
  SlotDescriptor desc;
  TensorDesc tensor;
  const uint8_t* data = nullptr;  // [tensor.byte_size] bytes
  const Region* region = nullptr;
  uint32_t slot_index = 0;
};

// Checks `d` against `arena` (see descriptor.h for each error) and the slot's
// current sequence and generation; on success the payload may be read until
// EndRead.
StatusOr<SlotView> BeginRead(const Arena& arena, const SlotDescriptor& d);

// Re-checks sequence and generation after use. A non-OK result (Aborted or
// FailedPrecondition) means the slot changed while it was read: discard
// everything computed from view.data.
Status EndRead(const SlotView& view);

// Tells the slot's writer that the consumer is done with this write.
void Release(const SlotView& view);

// The slot's current state without a descriptor (diagnostics, tests).
struct SlotState {
  uint64_t sequence = 0;
  uint64_t generation = 0;
  uint64_t released = 0;
  TensorDesc tensor;
};
SlotState ReadState(const Region& region, uint32_t index);

}  // namespace unicorn::shm
