// A reference to the contents of one slot: what ZeroMQ (and later protobuf)
// messages carry instead of bytes or pointers. Like Triton's shared-memory
// parameters, it names memory by (region, offset, size); the sequence and
// generation pin it to one particular write of that slot, so a reader can
// tell a fresh tensor from a stale, rewritten or torn one.
//
// Checking a descriptor against an arena (Arena::BeginRead) yields one
// specific error per fault, with a stable status code:
//   unknown region            NotFound
//   misaligned offset         InvalidArgument   (payloads are 4096-aligned)
//   not a slot's payload      InvalidArgument
//   bad sequence value        InvalidArgument   (0 or odd: never published)
//   out of range              OutOfRange        (outside the region or the slot)
//   wrong generation          FailedPrecondition (the writer restarted since)
//   write in progress / torn  Unavailable       (sequence odd now: a writer is
//                                                inside a write, or died there)
//   stale sequence            Aborted           (the slot was rewritten since)
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>

#include "common/status.h"

namespace unicorn::shm {

struct SlotDescriptor {
  uint32_t region_id = 0;
  uint32_t flags = 0;       // reserved, 0
  uint64_t offset = 0;      // region-relative offset of the payload
  uint64_t byte_size = 0;   // bytes of the tensor, from offset
  uint64_t sequence = 0;    // the slot's (even) sequence after the write
  uint64_t generation = 0;  // the writer incarnation that wrote it

  friend bool operator==(const SlotDescriptor&, const SlotDescriptor&) = default;
};
static_assert(std::is_trivially_copyable_v<SlotDescriptor>);
static_assert(sizeof(SlotDescriptor) == 40);

inline constexpr size_t kDescriptorBytes = 40;
using EncodedDescriptor = std::array<uint8_t, kDescriptorBytes>;

// Fixed little-endian encoding (field order as declared). A later stage maps
// the fields one to one onto a protobuf message; this library stays free of
// protobuf.
EncodedDescriptor Encode(const SlotDescriptor& d);

// Errors: wrong length, nonzero reserved flags.
StatusOr<SlotDescriptor> Decode(std::span<const uint8_t> bytes);

// "region 1 @4096+1048576 seq 6 gen 3" for logs and errors.
std::string DescriptorString(const SlotDescriptor& d);

}  // namespace unicorn::shm
