#include "shared_mem/buffer.h"

#include <fcntl.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xf86drm.h>

#include <algorithm>

#include "common/log.h"
#include "shared_mem/layout.h"

namespace unicorn::shm {

const char* BufferKindName(BufferKind k) {
  switch (k) {
    case BufferKind::kMemfd:
      return "memfd";
    case BufferKind::kUdmabuf:
      return "udmabuf";
    case BufferKind::kDmaHeap:
      return "dma-heap";
  }
  return "unknown";
}

namespace {

constexpr unsigned kMemfdSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

size_t AlignSize(size_t size) {
  size_t page = std::max<size_t>(static_cast<size_t>(::sysconf(_SC_PAGESIZE)), kPageBytes);
  return (size + page - 1) / page * page;
}

// Closes an fd on scope exit unless released.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

std::string Ctx(const std::string& name, const char* what) {
  return absl::StrCat("[shm] ", name, ": ", what);
}

// A sealable memfd of `size` bytes with `seals` applied.
StatusOr<int> SealedMemfd(const std::string& name, size_t size, unsigned seals) {
  std::string label = absl::StrCat("unicorn-", name);
  FdGuard fd(::memfd_create(label.c_str(), MFD_ALLOW_SEALING | MFD_CLOEXEC));
  if (fd.get() < 0) return ErrnoError(Ctx(name, "memfd_create"), errno);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoError(absl::StrCat(Ctx(name, "ftruncate"), "(", size, ")"), errno);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, seals) != 0) {
    return ErrnoError(Ctx(name, "fcntl(F_ADD_SEALS)"), errno);
  }
  return fd.release();
}

StatusOr<int> AllocateDmaHeapFd(const std::string& name, size_t size) {
  FdGuard heap(::open(kDmaHeapPath, O_RDWR | O_CLOEXEC));
  if (heap.get() < 0)
    return ErrnoError(absl::StrCat("[shm] ", name, ": open(", kDmaHeapPath, ")"), errno);
  dma_heap_allocation_data alloc{};
  alloc.len = size;
  alloc.fd_flags = O_RDWR | O_CLOEXEC;
  if (drmIoctl(heap.get(), DMA_HEAP_IOCTL_ALLOC, &alloc) != 0) {
    return ErrnoError(absl::StrCat(Ctx(name, "DMA_HEAP_IOCTL_ALLOC"), "(", size, ")"), errno);
  }
  return static_cast<int>(alloc.fd);
}

StatusOr<int> AllocateUdmabufFd(const std::string& name, size_t size) {
  FdGuard dev(::open(kUdmabufPath, O_RDWR | O_CLOEXEC));
  if (dev.get() < 0)
    return ErrnoError(absl::StrCat("[shm] ", name, ": open(", kUdmabufPath, ")"), errno);
  // udmabuf requires F_SEAL_SHRINK (pages must not vanish under the device)
  // and refuses F_SEAL_WRITE; growing is sealed off as well.
  UNICORN_ASSIGN_OR_RETURN(int memfd, SealedMemfd(name, size, kMemfdSeals));
  FdGuard memfd_guard(memfd);
  udmabuf_create create{};
  create.memfd = static_cast<uint32_t>(memfd);
  create.flags = UDMABUF_FLAGS_CLOEXEC;
  create.offset = 0;
  create.size = size;
  int buf = drmIoctl(dev.get(), UDMABUF_CREATE, &create);
  if (buf < 0) return ErrnoError(absl::StrCat(Ctx(name, "UDMABUF_CREATE"), "(", size, ")"), errno);
  return buf;  // holds its own references to the memfd's pages
}

StatusOr<uint8_t*> MapShared(int fd, size_t size, const std::string& name) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) return ErrnoError(absl::StrCat(Ctx(name, "mmap"), "(", size, ")"), errno);
  return static_cast<uint8_t*>(p);
}

}  // namespace

StatusOr<std::unique_ptr<SharedBuffer>> SharedBuffer::Allocate(BufferKind kind, size_t size,
                                                               const std::string& name) {
  if (size == 0) return absl::InvalidArgumentError(Ctx(name, "cannot allocate 0 bytes"));
  size = AlignSize(size);
  StatusOr<int> fd = absl::InternalError("unreachable");
  switch (kind) {
    case BufferKind::kMemfd:
      fd = SealedMemfd(name, size, kMemfdSeals);
      break;
    case BufferKind::kUdmabuf:
      fd = AllocateUdmabufFd(name, size);
      break;
    case BufferKind::kDmaHeap:
      fd = AllocateDmaHeapFd(name, size);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(Ctx(name, "unknown buffer kind "), static_cast<int>(kind)));
  }
  UNICORN_RETURN_IF_ERROR(fd.status());
  FdGuard guard(*fd);
  UNICORN_ASSIGN_OR_RETURN(uint8_t * data, MapShared(guard.get(), size, name));
  return std::unique_ptr<SharedBuffer>(new SharedBuffer(guard.release(), size, kind, data, name));
}

StatusOr<std::unique_ptr<SharedBuffer>> SharedBuffer::Import(int fd, BufferKind kind, size_t size,
                                                             const std::string& name) {
  FdGuard guard(fd);
  if (fd < 0) return absl::InvalidArgumentError(Ctx(name, "import of an invalid fd"));
  if (size == 0 || size % kPageBytes != 0) {
    return absl::InvalidArgumentError(absl::StrCat(Ctx(name, "import size "), size,
                                                   " is not a positive multiple of ", kPageBytes));
  }
  off_t actual = 0;
  if (kind == BufferKind::kMemfd) {
    int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0) return ErrnoError(Ctx(name, "fcntl(F_GET_SEALS) on an imported memfd"), errno);
    if ((seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW)) {
      return absl::PermissionDeniedError(
          absl::StrCat(Ctx(name, "imported memfd is not sealed against resizing (seals 0x"),
                       absl::Hex(seals), ")"));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) return ErrnoError(Ctx(name, "fstat"), errno);
    actual = st.st_size;
  } else if (IsDmaBuf(kind)) {
    actual = ::lseek(fd, 0, SEEK_END);  // a dma-buf reports its size this way
    if (actual < 0) return ErrnoError(Ctx(name, "lseek(SEEK_END) on an imported dma-buf"), errno);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(Ctx(name, "unknown buffer kind "), static_cast<int>(kind)));
  }
  if (static_cast<uint64_t>(actual) < size) {
    return absl::OutOfRangeError(absl::StrCat(Ctx(name, "imported buffer has "), actual,
                                              " bytes, the peer announced ", size));
  }
  UNICORN_ASSIGN_OR_RETURN(uint8_t * data, MapShared(fd, size, name));
  return std::unique_ptr<SharedBuffer>(new SharedBuffer(guard.release(), size, kind, data, name));
}

SharedBuffer::~SharedBuffer() {
  if (data_ != nullptr) ::munmap(data_, size_);
  if (fd_ >= 0) ::close(fd_);
}

Status SharedBuffer::Sync(uint64_t flags) const {
  if (!is_dma_buf()) return absl::OkStatus();
  dma_buf_sync sync{};
  sync.flags = flags;
  if (drmIoctl(fd_, DMA_BUF_IOCTL_SYNC, &sync) != 0) {
    return ErrnoError(Ctx(name_, "DMA_BUF_IOCTL_SYNC"), errno);
  }
  return absl::OkStatus();
}

namespace {
uint64_t SyncFlags(CpuAccess access) {
  uint64_t f = 0;
  if (static_cast<int>(access) & static_cast<int>(CpuAccess::kRead)) f |= DMA_BUF_SYNC_READ;
  if (static_cast<int>(access) & static_cast<int>(CpuAccess::kWrite)) f |= DMA_BUF_SYNC_WRITE;
  return f;
}
}  // namespace

Status SharedBuffer::BeginCpuAccess(CpuAccess access) const {
  return Sync(DMA_BUF_SYNC_START | SyncFlags(access));
}

Status SharedBuffer::EndCpuAccess(CpuAccess access) const {
  return Sync(DMA_BUF_SYNC_END | SyncFlags(access));
}

Status ProbeKind(BufferKind kind) {
  StatusOr<std::unique_ptr<SharedBuffer>> b = SharedBuffer::Allocate(kind, kPageBytes, "probe");
  if (!b.ok()) return b.status();
  // The CPU-access bracket must work too: the arena relies on it.
  UNICORN_RETURN_IF_ERROR((*b)->BeginCpuAccess(CpuAccess::kReadWrite));
  (*b)->data()[0] = 1;
  return (*b)->EndCpuAccess(CpuAccess::kReadWrite);
}

StatusOr<BackendChoice> ChooseBackend(BackendPreference preference) {
  std::string skipped;
  // PRIME (DRM handle <-> dma-buf) is only for a later Vulkan/XRT stage; the
  // number of DRM devices is reported so a missing GPU node is visible.
  int drm_devices = drmGetDevices2(0, nullptr, 0);
  std::string drm = absl::StrCat("DRM devices: ", drm_devices < 0 ? 0 : drm_devices);
  if (preference != BackendPreference::kMemfd) {
    for (BufferKind k : {BufferKind::kDmaHeap, BufferKind::kUdmabuf}) {
      Status s = ProbeKind(k);
      if (s.ok()) {
        BackendChoice c{k, absl::StrCat(BufferKindName(k), " (dma-buf", skipped, "; ", drm, ")")};
        LOG_INFO("[shm] buffer backend: {}", c.report);
        return c;
      }
      absl::StrAppend(&skipped, "; ", BufferKindName(k), " unavailable: ", s.message());
    }
    if (preference == BackendPreference::kDmaBuf) {
      return absl::UnavailableError(absl::StrCat("[shm] no dma-buf backend", skipped));
    }
  } else {
    skipped = "; dma-buf not requested";
  }
  UNICORN_RETURN_IF_ERROR(ProbeKind(BufferKind::kMemfd));
  BackendChoice c{BufferKind::kMemfd,
                  absl::StrCat("memfd (sealed, not a dma-buf", skipped, "; ", drm, ")")};
  LOG_INFO("[shm] buffer backend: {}", c.report);
  return c;
}

}  // namespace unicorn::shm
