// The dma-buf path: runs where the kernel offers /dev/dma_heap/system or
// /dev/udmabuf (the target laptops), skips with the reason elsewhere (the
// development and CI kernels have neither).
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "shared_mem/arena.h"
#include "shared_mem/buffer.h"
#include "shared_mem/slot.h"
#include "shared_mem/tensor_desc.h"

namespace unicorn::shm {
namespace {

class ShmDmaBuf : public ::testing::TestWithParam<BufferKind> {
 protected:
  void SetUp() override {
    Status s = ProbeKind(GetParam());
    if (!s.ok()) {
      GTEST_SKIP() << BufferKindName(GetParam()) << " unavailable on this kernel, dma-buf path "
                   << "not exercised here: " << s.message();
    }
  }
};

TEST_P(ShmDmaBuf, AllocateMapSyncAndImport) {
  auto b = SharedBuffer::Allocate(GetParam(), 3 * kPageBytes + 1, "dmabuf");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_TRUE((*b)->is_dma_buf());
  EXPECT_EQ((*b)->size(), 4 * kPageBytes);
  EXPECT_EQ(::lseek((*b)->fd(), 0, SEEK_END), static_cast<off_t>(4 * kPageBytes));
  ASSERT_TRUE((*b)->BeginCpuAccess(CpuAccess::kWrite).ok());
  (*b)->data()[5] = 99;
  ASSERT_TRUE((*b)->EndCpuAccess(CpuAccess::kWrite).ok());
  auto imported = SharedBuffer::Import(::dup((*b)->fd()), GetParam(), (*b)->size(), "dmabuf");
  ASSERT_TRUE(imported.ok()) << imported.status();
  ASSERT_TRUE((*imported)->BeginCpuAccess(CpuAccess::kRead).ok());
  EXPECT_EQ((*imported)->data()[5], 99);
  ASSERT_TRUE((*imported)->EndCpuAccess(CpuAccess::kRead).ok());
}

TEST_P(ShmDmaBuf, SlotRoundTripOnADmaBufRegion) {
  auto buffer = SharedBuffer::Allocate(GetParam(), RegionBytes({"act", 8192, 2}), "act");
  ASSERT_TRUE(buffer.ok()) << buffer.status();
  auto region = Region::Format(std::move(*buffer), 1, {"act", 8192, 2}, 5);
  ASSERT_TRUE(region.ok()) << region.status();
  std::vector<std::unique_ptr<Region>> regions;
  Region* r = region->get();
  regions.push_back(std::move(*region));
  auto arena = Arena::FromRegions(std::move(regions), 5);
  ASSERT_TRUE(arena.ok());
  auto w = SlotWriter::Claim(*r, 1, 1);
  ASSERT_TRUE(w.ok());
  auto bytes = w->BeginWrite(*RowMajor(TensorDType::kU8, {8192}));
  ASSERT_TRUE(bytes.ok());
  for (size_t i = 0; i < bytes->size(); ++i) (*bytes)[i] = static_cast<uint8_t>(i * 7);
  auto d = w->Commit();
  ASSERT_TRUE(d.ok());
  auto view = BeginRead(**arena, *d);
  ASSERT_TRUE(view.ok()) << view.status();
  for (size_t i = 0; i < 8192; ++i) ASSERT_EQ(view->data[i], static_cast<uint8_t>(i * 7));
  EXPECT_TRUE(EndRead(*view).ok());
}

INSTANTIATE_TEST_SUITE_P(Kinds, ShmDmaBuf,
                         ::testing::Values(BufferKind::kDmaHeap, BufferKind::kUdmabuf),
                         [](const auto& info) {
                           return info.param == BufferKind::kDmaHeap ? std::string("DmaHeap")
                                                                     : std::string("Udmabuf");
                         });

// Where neither exists, asking for a dma-buf is a clear error, not a silent memfd.
TEST(ShmDmaBufAbsent, RequiringDmaBufFailsClearly) {
  if (ProbeKind(BufferKind::kDmaHeap).ok() || ProbeKind(BufferKind::kUdmabuf).ok()) {
    GTEST_SKIP() << "this kernel has a dma-buf allocator";
  }
  auto c = ChooseBackend(BackendPreference::kDmaBuf);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(absl::StrContains(c.status().message(), kDmaHeapPath)) << c.status();
  EXPECT_TRUE(absl::StrContains(c.status().message(), kUdmabufPath)) << c.status();
}

}  // namespace
}  // namespace unicorn::shm
