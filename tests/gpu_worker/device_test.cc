// The Vulkan plumbing: device caps, memory round trips, pipeline cache.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "gpu_worker/vk/command.h"
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

// The wait timed by a prediction (Device::SubmitAndWait with a spin): it
// returns once the work is done, whether the work ends long before the
// prediction (the driver's wait with a timeout returns on the fence) or long
// after it (the poll gives way to a blocking wait), and the work is done then.
TEST(VkDevice, PredictedWaitReturnsWhenTheWorkIsDone) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  // Mapped memory, read right after the wait: a wait that returned early
  // would see the previous value at the end of 64 MiB.
  auto b = d.allocator().Create(64 << 20, MemoryUse::kHost, "fill");
  ASSERT_TRUE(b.ok()) << b.status();
  ASSERT_NE(b->mapped(), nullptr);
  const uint32_t* words = static_cast<const uint32_t*>(b->mapped());
  const size_t last = (64 << 20) / 4 - 1;
  CommandBuffer cmd(d);
  uint32_t value = 0;
  struct Case {
    int64_t predicted_ns, spin_ns;
  };
  for (Case c : {Case{int64_t(10e9), 1000000}, Case{1000, 1000}, Case{0, 0}}) {
    cmd.Begin();
    cmd.Fill(b->All(), ++value);
    ASSERT_TRUE(cmd.End().ok());
    int64_t took = -1;
    const auto t0 = std::chrono::steady_clock::now();
    Status s = d.SubmitAndWait({cmd.handle()}, c.predicted_ns, c.spin_ns, &took);
    const auto waited = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_GT(took, 0);
    EXPECT_LT(waited, std::chrono::seconds(5)) << "predicted " << c.predicted_ns << " ns";
    EXPECT_EQ(words[last], value) << "predicted " << c.predicted_ns << " ns";
    EXPECT_EQ(words[0], value);
  }
}

// The ablation knob (UNICORN_VK_SKIP): a dispatch whose label starts with
// a skipped prefix is not recorded; the others are.
TEST(VkCommand, SkipLeavesOutTheDispatchesItNames) {
  UNICORN_VK_ENV(env);
  Device& d = *env.device;
  const std::vector<float> ones(256, 1.0f), zeros(256, 0.0f);
  Buffer a = Upload(d, ones), y_skipped = Upload(d, zeros), y_kept = Upload(d, zeros);
  CommandBuffer cmd(d);
  cmd.Begin();
  cmd.Skip({"left out", "barrier"});
  cmd.SetLabel("left out (add)");
  ASSERT_TRUE(env.kernels->Add(cmd, a.All(), a.All(), y_skipped.All(), 256).ok());
  cmd.SetLabel("kept");
  ASSERT_TRUE(env.kernels->Add(cmd, a.All(), a.All(), y_kept.All(), 256).ok());
  cmd.ComputeBarrier();
  ASSERT_TRUE(cmd.End().ok());
  ASSERT_TRUE(cmd.SubmitAndWait().ok());
  EXPECT_EQ(cmd.barriers(), 0u);
  EXPECT_EQ(Download<float>(d, y_skipped, 256), zeros);
  EXPECT_EQ(Download<float>(d, y_kept, 256), std::vector<float>(256, 2.0f));
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
