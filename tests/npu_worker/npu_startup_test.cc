// The real unicorn-npu-worker binary asked for backend xrt on a machine
// without an NPU: with allow_cpu_fallback it runs on the CPU backend and says
// so (log, and ModelInfo through `unicorn health`); without it, start-up fails
// with the reason. Skipped where /dev/accel/accel0 exists (there the answer
// depends on the NPU, which the npu-labelled tests cover).
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::Shell;
using unicorn::testing::TestSystem;

constexpr char kDemo[] = UNICORN_SOURCE_DIR "/models/demo";
constexpr char kWorker[] = UNICORN_BINARY_DIR "/bin/unicorn-npu-worker";

std::string Body(bool fallback) {
  return std::string("control: {heartbeat_interval_ms: 100, heartbeat_liveness: 3}\n") +
         "workers:\n  npu: {kind: npu, backend: xrt, allow_cpu_fallback: " +
         (fallback ? "true" : "false") + "}\n  gpu: {kind: gpu, backend: cpu}\n" +
         "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n";
}

class NoNpu : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::filesystem::exists("/dev/accel/accel0")) {
      GTEST_SKIP() << "/dev/accel/accel0 exists: these tests are for machines without an NPU";
    }
  }
};

TEST_F(NoNpu, FallbackAllowedRunsOnTheCpuAndSaysSo) {
  TestSystem sys("nf", kDemo, Body(true));
  // No coordinator: the worker opens its backend, then waits to connect
  // until SIGINT stops it cleanly.
  auto r = Shell(std::string("UNICORN_LOG_LEVEL=info timeout --preserve-status -s INT 3 ") +
                 kWorker + " --config " + sys.config());
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[npu] no NPU found (/dev/accel/accel0 missing): using the CPU backend"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("backend cpu on cpu"), std::string::npos) << r.out;
}

TEST_F(NoNpu, FallbackRefusedFailsStartUpWithTheReason) {
  TestSystem sys("nr", kDemo, Body(false));
  auto r = Shell(std::string("timeout --preserve-status -s INT 10 ") + kWorker + " --config " +
                 sys.config());
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("[npu] backend xrt requested with allow_cpu_fallback: false, but no NPU "
                       "found (/dev/accel/accel0 missing)"),
            std::string::npos)
      << r.out;
}

TEST_F(NoNpu, ModelInfoReportsTheBackendActuallyUsed) {
  TestSystem sys("nm", kDemo, Body(true));
  auto up = sys.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  std::string h = sys.Cli("health --server " + sys.address()).out;
  EXPECT_NE(h.find("npu: requested xrt, runs cpu: no NPU found (/dev/accel/accel0 missing): "
                   "using the CPU backend"),
            std::string::npos)
      << h;
  // The split plan still answers end to end on the fallback.
  auto gen = sys.Cli("generate --server " + sys.address() + " --max-tokens 4 --prompt hello");
  EXPECT_EQ(gen.code, 0) << gen.out;
  EXPECT_EQ(sys.Down().code, 0);
}

}  // namespace
