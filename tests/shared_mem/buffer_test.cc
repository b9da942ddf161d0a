// The memfd buffer (the path every machine has): sealed, unnamed, page sized,
// and imports that refuse what could hurt the importer.
#include "shared_mem/buffer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "shared_mem/layout.h"

namespace unicorn::shm {
namespace {

TEST(ShmBuffer, MemfdIsSealedPageSizedAndUnnamed) {
  auto b = SharedBuffer::Allocate(BufferKind::kMemfd, 10000, "act");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*b)->size(), 3 * kPageBytes);  // rounded up to whole pages
  EXPECT_EQ(reinterpret_cast<uintptr_t>((*b)->data()) % kPageBytes, 0u);
  EXPECT_FALSE((*b)->is_dma_buf());
  int seals = ::fcntl((*b)->fd(), F_GET_SEALS);
  EXPECT_EQ(seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL),
            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  EXPECT_NE(::ftruncate((*b)->fd(), 0), 0) << "a sealed memfd must not shrink";
  EXPECT_NE(::ftruncate((*b)->fd(), 1 << 20), 0) << "a sealed memfd must not grow";
  EXPECT_NE(::fcntl((*b)->fd(), F_GETFD) & FD_CLOEXEC, 0)
      << "fds must not leak into exec'd children";
  // Only an anonymous memfd: nothing appears in /dev/shm.
  char link[256] = {};
  ASSERT_GT(::readlink(absl::StrCat("/proc/self/fd/", (*b)->fd()).c_str(), link, sizeof(link) - 1),
            0);
  EXPECT_TRUE(absl::StartsWith(link, "/memfd:unicorn-act")) << link;
  if (std::filesystem::exists("/dev/shm")) {
    for (const auto& e : std::filesystem::directory_iterator("/dev/shm")) {
      EXPECT_FALSE(absl::StrContains(e.path().filename().string(), "unicorn")) << e.path();
    }
  }
  (*b)->data()[(*b)->size() - 1] = 7;  // the whole size is mapped and writable
  EXPECT_TRUE((*b)->BeginCpuAccess(CpuAccess::kReadWrite).ok());  // no-op on memfd
  EXPECT_TRUE((*b)->EndCpuAccess(CpuAccess::kReadWrite).ok());
}

TEST(ShmBuffer, ImportMapsTheSameBytes) {
  auto a = SharedBuffer::Allocate(BufferKind::kMemfd, kPageBytes, "x");
  ASSERT_TRUE(a.ok());
  auto b = SharedBuffer::Import(::dup((*a)->fd()), BufferKind::kMemfd, kPageBytes, "x");
  ASSERT_TRUE(b.ok()) << b.status();
  (*a)->data()[100] = 42;
  EXPECT_EQ((*b)->data()[100], 42);
  EXPECT_NE((*a)->data(), (*b)->data());  // two mappings, one object
}

TEST(ShmBuffer, ImportRefusesAnUnsealedMemfd) {
  int fd = ::memfd_create("unsealed", MFD_CLOEXEC);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::ftruncate(fd, kPageBytes), 0);
  auto b = SharedBuffer::Import(fd, BufferKind::kMemfd, kPageBytes, "x");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kPermissionDenied) << b.status();
  EXPECT_TRUE(absl::StrContains(b.status().message(), "not sealed")) << b.status();
}

TEST(ShmBuffer, ImportRefusesAnnouncedSizeBeyondTheObject) {
  auto a = SharedBuffer::Allocate(BufferKind::kMemfd, kPageBytes, "x");
  ASSERT_TRUE(a.ok());
  auto b = SharedBuffer::Import(::dup((*a)->fd()), BufferKind::kMemfd, 4 * kPageBytes, "x");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kOutOfRange) << b.status();
}

TEST(ShmBuffer, ImportRefusesBadArguments) {
  EXPECT_EQ(SharedBuffer::Import(-1, BufferKind::kMemfd, kPageBytes, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto a = SharedBuffer::Allocate(BufferKind::kMemfd, kPageBytes, "x");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(SharedBuffer::Import(::dup((*a)->fd()), BufferKind::kMemfd, 100, "x").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SharedBuffer::Import(::dup((*a)->fd()), static_cast<BufferKind>(9), kPageBytes, "x")
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(SharedBuffer::Allocate(BufferKind::kMemfd, 0, "x").ok());
}

TEST(ShmBuffer, BackendChoiceReportsTheFallbackChain) {
  auto memfd = ChooseBackend(BackendPreference::kMemfd);
  ASSERT_TRUE(memfd.ok()) << memfd.status();
  EXPECT_EQ(memfd->kind, BufferKind::kMemfd);
  auto best = ChooseBackend(BackendPreference::kAuto);
  ASSERT_TRUE(best.ok()) << best.status();
  if (best->kind == BufferKind::kMemfd) {
    // Without dma-buf support the report says why each dma-buf kind was skipped.
    EXPECT_TRUE(absl::StrContains(best->report, "dma-heap unavailable")) << best->report;
    EXPECT_TRUE(absl::StrContains(best->report, "udmabuf unavailable")) << best->report;
  } else {
    EXPECT_TRUE(IsDmaBuf(best->kind));
  }
}

}  // namespace
}  // namespace unicorn::shm
