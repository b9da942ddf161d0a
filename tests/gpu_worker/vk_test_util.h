// Shared helpers of the Vulkan kernel tests: one device (lavapipe in CI; pick
// another with UNICORN_TEST_VK_DEVICE=<index or name>) and its kernels for the
// whole test binary, buffers from host vectors, and closeness checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "gpu_worker/kernels.h"
#include "gpu_worker/vk/device.h"
#include "gpu_worker/vk/memory.h"

namespace unicorn::vk::testing {

struct Env {
  std::unique_ptr<Device> device;
  std::unique_ptr<Kernels> kernels;
};

// Opens the device once; a test fails (not skips) when there is none, since
// CI has lavapipe and a missing device means a broken setup.
inline Env& GetEnv() {
  static Env* env = [] {
    auto* e = new Env;
    const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
    auto dev = Device::Open(sel ? sel : "");
    if (!dev.ok()) {
      ADD_FAILURE() << dev.status();
      return e;
    }
    e->device = std::move(*dev);
    auto k = Kernels::Create(*e->device);
    if (!k.ok()) {
      ADD_FAILURE() << k.status();
      return e;
    }
    e->kernels = std::move(*k);
    return e;
  }();
  return *env;
}

#define UNICORN_VK_ENV(env)                                            \
  ::unicorn::vk::testing::Env& env = ::unicorn::vk::testing::GetEnv(); \
  ASSERT_TRUE(env.device&& env.kernels) << "no Vulkan device"

// Where the device has no tensor cores, runs the tensor-core kernels with
// emulated fragments (Kernels::set_coop_emulation) for one test: their
// indexing, k split, sums and epilogue are then checked on lavapipe too.
class CoopEmulated {
 public:
  explicit CoopEmulated(Kernels& k) : k_(k) { k.set_coop_emulation(!k.coopmat()); }
  ~CoopEmulated() { k_.set_coop_emulation(false); }
  // Whether the kernels run here, on the tensor cores or emulated.
  bool runs() const { return k_.coopmat() || k_.coop_emulation(); }
  bool emulated() const { return !k_.coopmat() && k_.coop_emulation(); }

 private:
  Kernels& k_;
};

template <class T>
Buffer Upload(Device& d, const std::vector<T>& v, const char* what = "test") {
  auto b =
      d.allocator().Create(std::max<size_t>(v.size() * sizeof(T), 4), MemoryUse::kDevice, what);
  UNICORN_CHECK(b.ok());
  if (!v.empty()) UNICORN_CHECK(d.allocator().Upload(*b, 0, v.data(), v.size() * sizeof(T)).ok());
  return std::move(*b);
}

inline Buffer Zeros(Device& d, size_t bytes, const char* what = "test") {
  auto b = d.allocator().Create(bytes, MemoryUse::kDevice, what);
  UNICORN_CHECK(b.ok());
  UNICORN_CHECK(d.allocator().Zero(b->All()).ok());
  return std::move(*b);
}

template <class T>
std::vector<T> Download(Device& d, const Buffer& b, size_t n) {
  std::vector<T> v(n);
  UNICORN_CHECK(d.allocator().Download(b.All(), v.data(), n * sizeof(T)).ok());
  return v;
}

inline std::vector<float> Random(size_t n, uint32_t seed, float lo = -1, float hi = 1) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Largest |a - b| relative to max(|b|) (the output's scale), so one bound
// fits outputs of any magnitude.
inline double MaxRelError(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double scale = 0, err = 0;
  for (size_t i = 0; i < b.size(); ++i) scale = std::max(scale, double(std::fabs(b[i])));
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    double e = std::fabs(double(a[i]) - double(b[i]));
    if (std::isnan(a[i]) || std::isnan(b[i])) e = INFINITY;
    err = std::max(err, e);
  }
  return err / std::max(scale, 1e-30);
}

// Records `fn(cmd)` into a fresh command buffer, runs it and waits.
template <class Fn>
void RunCmd(Device& d, Fn&& fn) {
  CommandBuffer cmd(d);
  cmd.Begin();
  fn(cmd);
  Status s = cmd.End();
  ASSERT_TRUE(s.ok()) << s;
  s = cmd.SubmitAndWait();
  ASSERT_TRUE(s.ok()) << s;
}

}  // namespace unicorn::vk::testing
