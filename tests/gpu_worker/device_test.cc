// The Vulkan plumbing: device caps, memory round trips, pipeline cache.
#include <cstdio>
#include <filesystem>

#include "gpu_worker/vk/pipeline.h"
#include "tests/gpu_worker/vk_test_util.h"
#include "tests/scoped_env.h"

namespace unicorn::vk::testing {
namespace {

TEST(VkDevice, OpensWithComputeQueueAndDescribesItself) {
  UNICORN_VK_ENV(env);
  const DeviceCaps& c = env.device->caps();
  EXPECT_FALSE(c.name.empty());
  EXPECT_FALSE(c.driver_name.empty());
  EXPECT_GT(c.subgroup_size, 0u);
  EXPECT_GE(c.max_push_constants, 128u);
  std::printf("[vk] subgroup %u, shared %u B, invocations %u, f16 %d, int8 %d, timestamps %d\n",
              c.subgroup_size, c.max_shared_memory, c.max_workgroup_invocations, c.shader_float16,
              c.shader_int8, c.timestamps);
  std::string d = env.device->Describe();
  EXPECT_NE(d.find(c.name), std::string::npos) << d;
  EXPECT_NE(d.find("device-local"), std::string::npos) << d;
}

TEST(VkDevice, UnknownSelectorListsDevices) {
  auto d = Device::Open("no-such-gpu-xyz");
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("devices found"), std::string::npos) << d.status();
}

TEST(VkMemory, UploadDownloadRoundTripsThroughStaging) {
  UNICORN_VK_ENV(env);
  std::vector<float> v = Random(100000, 1);
  Buffer b = Upload(*env.device, v);
  // Through a sub-buffer at an offset, via the staging path.
  std::vector<float> tail(v.begin() + 1000, v.end());
  ASSERT_TRUE(env.device->allocator()
                  .Upload(b.Sub(4000, tail.size() * 4), tail.data(), tail.size() * 4)
                  .ok());
  std::vector<float> back = Download<float>(*env.device, b, v.size());
  EXPECT_EQ(back, v);
}

TEST(VkMemory, HostBuffersAreMapped) {
  UNICORN_VK_ENV(env);
  auto b = env.device->allocator().Create(1024, MemoryUse::kHost, "readback");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_NE(b->mapped(), nullptr);
}

TEST(VkPipelineCache, WritesItsFileUnderXdgCacheHome) {
  UNICORN_VK_ENV(env);
  std::string dir = std::string(UNICORN_BINARY_DIR) + "/tests/vk-cache-test";
  std::filesystem::remove_all(dir);
  {
    unicorn::testing::ScopedEnv cache_home("XDG_CACHE_HOME", dir.c_str());
    auto dev = Device::Open(std::getenv("UNICORN_TEST_VK_DEVICE") ?: "");
    ASSERT_TRUE(dev.ok()) << dev.status();
    auto k = Kernels::Create(**dev);  // builds pipelines through the cache
    ASSERT_TRUE(k.ok()) << k.status();
    EXPECT_EQ((*dev)->pipeline_cache().path().rfind(dir + "/unicorn/", 0), 0u);
  }
  bool found = false;
  for (auto& e : std::filesystem::directory_iterator(dir + "/unicorn")) {
    found |= e.path().filename().string().rfind("vk-pipelines-", 0) == 0;
  }
  EXPECT_TRUE(found);
}

}  // namespace
}  // namespace unicorn::vk::testing
