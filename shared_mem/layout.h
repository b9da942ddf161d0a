// The bytes of a shared region, as every process sees them. Plain
// standard-layout structs with fixed-width fields: the coordinator and the
// workers are built from the same tree, but they share these bytes, never
// pointers; everything inside a region is addressed by region-relative offset.
//
// Region layout (all offsets from the start of the region, all page aligned):
//   [0, 4096)                        RegionHeader (this file)
//   [4096, size)                     the owner's allocation heap
//                                    (Boost.Interprocess, see region.h); it holds
//   slot k: [slot_offsets[k], +4096) SlotHeader
//           [payload_offset, +capacity) the tensor bytes, page aligned
//
// Concurrency inside the region (see slot.h): each slot has exactly one writer
// (a seqlock: `sequence` is odd while a write is in progress) and any number
// of readers. Fields marked "atomic" are accessed only through
// std::atomic_ref; all others are written once, by the owner, before any peer
// can receive the region's fd.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace unicorn::shm {

inline constexpr uint32_t kRegionMagic = 0x4E524755;  // "UGRN" in memory: Unicorn reGioN
inline constexpr uint32_t kSlotMagic = 0x544C5355;    // "USLT"
inline constexpr uint16_t kLayoutVersion = 1;

// Payloads and headers sit on 4 KiB boundaries: the page size of every target,
// the host-pointer import alignment Vulkan drivers ask for
// (minImportedHostPointerAlignment), and ample for any buffer offset alignment.
inline constexpr uint64_t kPageBytes = 4096;
inline constexpr int kMaxRank = 4;
inline constexpr uint32_t kMaxSlotsPerRegion = 448;
inline constexpr int kRegionNameBytes = 32;

// Element types of tensors carried in slots. The float values match
// unicorn::DType (model/dtype.h) so a later stage can convert by value.
enum class TensorDType : uint8_t {
  kF32 = 0,
  kF16 = 1,
  kBF16 = 2,
  kI32 = 16,
  kU8 = 17,
};

// Bytes per element, or 0 for an unknown value (a corrupt or future header).
int DTypeBytes(TensorDType t);
const char* DTypeName(TensorDType t);

enum class TensorLayout : uint8_t {
  kRowMajor = 0,  // contiguous, outermost dimension first; strides implied
  kStrided = 1,   // element strides given in `strides` (e.g. a padded row pitch)
};

// What a slot currently holds: up to 4 dimensions, outermost first (PyTorch
// order), e.g. activations [n_tokens, hidden], logits [n_seqs, vocab],
// image embeddings [n_images * 256, hidden].
struct TensorDesc {
  TensorDType dtype = TensorDType::kF32;
  uint8_t rank = 0;
  TensorLayout layout = TensorLayout::kRowMajor;
  uint8_t reserved[5] = {};
  int64_t shape[kMaxRank] = {};    // unused dimensions are 0
  int64_t strides[kMaxRank] = {};  // in elements; filled for kRowMajor too
  uint64_t byte_size = 0;          // bytes the tensor occupies in the payload
};
static_assert(std::is_trivially_copyable_v<TensorDesc>);
static_assert(sizeof(TensorDesc) == 80);

struct alignas(64) SlotHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t header_bytes;  // sizeof(SlotHeader)
  uint32_t region_id;
  uint32_t slot_index;
  uint64_t payload_offset;  // region-relative, = slot offset + kPageBytes
  uint64_t capacity;        // payload bytes
  uint64_t reserved0[4];
  // --- written by the slot's writer, 64-byte line of their own ---
  alignas(64) uint64_t sequence;  // atomic: even = stable, odd = write in progress
  uint64_t generation;            // atomic: incarnation of the writer of the content
  uint64_t commit_ns;             // atomic: CLOCK_MONOTONIC of the last commit
  uint64_t tensor_words[sizeof(TensorDesc) / 8];  // atomic words: a TensorDesc
  // --- written by the consumer ---
  alignas(64) uint64_t released;  // atomic: last sequence a consumer released
};
static_assert(std::is_standard_layout_v<SlotHeader>);
static_assert(sizeof(SlotHeader) <= kPageBytes);

struct RegionHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t header_bytes;  // sizeof(RegionHeader)
  uint32_t region_id;
  uint32_t slot_count;
  uint64_t size;                    // bytes of the whole region
  uint64_t owner_generation;        // incarnation of the owner that formatted it
  uint64_t next_writer_generation;  // atomic: source of fresh writer generations
  uint64_t heap_offset;             // the owner's allocator (never read by peers)
  uint64_t heap_size;
  char name[kRegionNameBytes];  // NUL-terminated: "act", "logits", "image"
  uint64_t reserved[4];
  uint64_t slot_offsets[kMaxSlotsPerRegion];  // region-relative SlotHeader offsets
};
static_assert(std::is_standard_layout_v<RegionHeader>);
static_assert(sizeof(RegionHeader) <= kPageBytes);

// Cross-process atomics on plain fields: lock-free 64-bit atomics are
// address-free, so two mappings of the same page at different addresses
// synchronise correctly.
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);
static_assert(std::atomic_ref<uint64_t>::required_alignment <= alignof(uint64_t));

inline std::atomic_ref<uint64_t> Atomic(uint64_t& field) {
  return std::atomic_ref<uint64_t>(field);
}

constexpr uint64_t RoundUpToPage(uint64_t n) {
  return (n + kPageBytes - 1) / kPageBytes * kPageBytes;
}

}  // namespace unicorn::shm
