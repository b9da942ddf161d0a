// vk::ExternalMemory on the device of the test run (lavapipe in CI): a memfd
// region, as the shared arena maps it, imported through
// VK_EXT_external_memory_host; a shader reads and writes it in place.
#include "gpu_worker/vk/external_memory.h"

#include "gpu_worker/vk/command.h"
#include "shared_mem/buffer.h"
#include "tests/gpu_worker/vk_test_util.h"

namespace unicorn::vk {
namespace {

using shm::BufferKind;
using shm::SharedBuffer;

constexpr size_t kBytes = size_t(64) << 10;

std::unique_ptr<SharedBuffer> Memfd() {
  auto b = SharedBuffer::Allocate(BufferKind::kMemfd, kBytes, "vk-import-test");
  UNICORN_CHECK(b.ok());
  return std::move(*b);
}

// CPU writes through the mapping, a shader (y = a + b) reads the imported
// memory and writes its result back into it, the CPU sees it through the
// mapping. Input and output are different pages of the same import.
TEST(VkExternalMemory, HostImportShaderReadsAndWritesInPlace) {
  UNICORN_VK_ENV(env);
  if (!env.device->caps().external_memory_host) {
    GTEST_SKIP() << "device lacks VK_EXT_external_memory_host (lavapipe has it)";
  }
  auto mem = Memfd();
  auto buf = ExternalMemory::ImportHost(*env.device, mem->data(), mem->size(), "test region");
  ASSERT_TRUE(buf.ok()) << buf.status();
  EXPECT_EQ(buf->mapped(), mem->data());

  constexpr uint32_t n = 1000;
  constexpr VkDeviceSize in_off = 4096, out_off = 8 * 4096;
  float* in = reinterpret_cast<float*>(mem->data() + in_off);
  float* out = reinterpret_cast<float*>(mem->data() + out_off);
  for (uint32_t i = 0; i < n; ++i) {
    in[i] = float(i) * 0.25f - 17.0f;
    out[i] = -1.0f;
  }
  CommandBuffer cmd(*env.device);
  cmd.Begin();
  ASSERT_TRUE(
      env.kernels
          ->Add(cmd, buf->Sub(in_off, n * 4), buf->Sub(in_off, n * 4), buf->Sub(out_off, n * 4), n)
          .ok());
  ASSERT_TRUE(cmd.End().ok());
  ASSERT_TRUE(cmd.SubmitAndWait().ok());
  // a + a is exact in f32 (a doubling), so the check is exact.
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(out[i], 2 * in[i]) << "element " << i;

  // A second round sees the CPU's new input (nothing cached on the device side).
  for (uint32_t i = 0; i < n; ++i) in[i] = float(i);
  ASSERT_TRUE(cmd.SubmitAndWait().ok());
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(out[i], 2.0f * float(i)) << "element " << i;
}

TEST(VkExternalMemory, HostImportRejectsMisalignedPointerAndSize) {
  UNICORN_VK_ENV(env);
  if (!env.device->caps().external_memory_host) GTEST_SKIP() << "no VK_EXT_external_memory_host";
  ASSERT_GT(env.device->caps().min_imported_host_alignment, 4u);
  auto mem = Memfd();
  auto a = ExternalMemory::ImportHost(*env.device, mem->data() + 4, 4096, "misaligned");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(a.status().message().find("minImportedHostPointerAlignment"), std::string::npos)
      << a.status();
  auto b = ExternalMemory::ImportHost(*env.device, mem->data(), 4096 + 4, "odd size");
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable) << b.status();
}

// Without a dma-buf driver (lavapipe) the dma-buf path says why it cannot.
TEST(VkExternalMemory, DmaBufImportFailsCleanlyWhereUnsupported) {
  UNICORN_VK_ENV(env);
  if (env.device->caps().external_memory_dma_buf) {
    GTEST_SKIP() << "device has VK_EXT_external_memory_dma_buf; a memfd is no dma-buf";
  }
  auto mem = Memfd();
  auto b = ExternalMemory::ImportDmaBuf(*env.device, mem->fd(), mem->size(), "memfd");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(b.status().message().find("VK_EXT_external_memory_dma_buf"), std::string::npos);
}

}  // namespace
}  // namespace unicorn::vk
