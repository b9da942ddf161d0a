// One fd-backed shared buffer, mapped into this process. Three kinds, tried in
// this order at start-up (ChooseBackend):
//   kDmaHeap  a dma-buf from /dev/dma_heap/system (DMA_HEAP_IOCTL_ALLOC);
//   kUdmabuf  a dma-buf made by /dev/udmabuf from a sealed memfd (UDMABUF_CREATE);
//   kMemfd    a sealed memfd (memfd_create, F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_SEAL).
// On the target laptops the NPU and the iGPU share DRAM and both import the
// dma-buf without copies; the memfd is the portable fallback (development and
// CI kernels have neither dma-heaps nor udmabuf).
//
// Nothing here has a name in the file system: the fd is the only handle, and
// it reaches peers only over a private Unix socket (fd_passing.h).
//
// For the GPU worker's Vulkan import (gpu_worker/arena_import.h):
//   fd()          the handle to import: with is_dma_buf(), through
//                 VK_EXT_external_memory_dma_buf (dup() it first: a successful
//                 import takes ownership of the fd);
//   data()        the page-aligned host mapping, for
//                 VK_EXT_external_memory_host on a memfd (import the whole
//                 mapping: size() is a multiple of the page size, and offsets
//                 inside are the descriptors' offsets);
//   size()        bytes, a multiple of kPageBytes (layout.h);
//   Begin/EndCpuAccess bracket CPU reads/writes of a dma-buf
//                 (DMA_BUF_IOCTL_SYNC); device access needs no bracket.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace unicorn::shm {

enum class BufferKind : uint8_t {
  kMemfd = 1,
  kUdmabuf = 2,
  kDmaHeap = 3,
};

const char* BufferKindName(BufferKind k);  // "memfd", "udmabuf", "dma-heap"
inline bool IsDmaBuf(BufferKind k) {
  return k == BufferKind::kUdmabuf || k == BufferKind::kDmaHeap;
}

enum class CpuAccess : uint8_t { kRead = 1, kWrite = 2, kReadWrite = 3 };

inline constexpr char kDmaHeapPath[] = "/dev/dma_heap/system";
inline constexpr char kUdmabufPath[] = "/dev/udmabuf";

class SharedBuffer {
 public:
  // Allocates `size` bytes (rounded up to the page size) of the given kind and
  // maps them read-write. `name` labels the memfd (visible in /proc/<pid>/fd
  // only) and errors.
  static StatusOr<std::unique_ptr<SharedBuffer>> Allocate(BufferKind kind, size_t size,
                                                          const std::string& name);

  // Maps a buffer received from a peer; takes ownership of `fd` (closed on
  // error too). Checks that the object really has at least `size` bytes and,
  // for a memfd, that it is sealed against shrinking (so a peer can never make
  // our mapping SIGBUS) and growing.
  static StatusOr<std::unique_ptr<SharedBuffer>> Import(int fd, BufferKind kind, size_t size,
                                                        const std::string& name);

  ~SharedBuffer();
  SharedBuffer(const SharedBuffer&) = delete;
  SharedBuffer& operator=(const SharedBuffer&) = delete;

  int fd() const { return fd_; }
  size_t size() const { return size_; }
  BufferKind kind() const { return kind_; }
  bool is_dma_buf() const { return IsDmaBuf(kind_); }
  uint8_t* data() const { return data_; }  // page-aligned MAP_SHARED mapping
  const std::string& name() const { return name_; }

  // DMA_BUF_IOCTL_SYNC start/end around CPU access of a dma-buf (cache
  // maintenance where the device is not coherent); no-ops on a memfd.
  Status BeginCpuAccess(CpuAccess access) const;
  Status EndCpuAccess(CpuAccess access) const;

 private:
  SharedBuffer(int fd, size_t size, BufferKind kind, uint8_t* data, std::string name)
      : fd_(fd), size_(size), kind_(kind), data_(data), name_(std::move(name)) {}
  Status Sync(uint64_t flags) const;

  int fd_;
  size_t size_;
  BufferKind kind_;
  uint8_t* data_;
  std::string name_;
};

// The outcome of probing the fallback chain.
struct BackendChoice {
  BufferKind kind = BufferKind::kMemfd;
  std::string report;  // "dma-heap (...)" or "memfd; dma-heap: ...: ENOENT; udmabuf: ..."
};

enum class BackendPreference : uint8_t {
  kAuto,    // best available: dma-heap, then udmabuf, then memfd
  kDmaBuf,  // dma-heap or udmabuf, else an error
  kMemfd,   // memfd only (tests, benchmarks)
};

// Checks whether a kind works here by allocating (and freeing) one page.
Status ProbeKind(BufferKind kind);

// Walks the fallback chain and logs the choice with the reasons for skipping.
StatusOr<BackendChoice> ChooseBackend(BackendPreference preference);

}  // namespace unicorn::shm
