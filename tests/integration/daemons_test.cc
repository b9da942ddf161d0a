// Starts the real coordinator and both workers with `unicorn up`, checks that
// they register and heartbeat, that a killed worker is declared dead within
// the configured bound, and that `unicorn down` stops everything.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::TestSystem;

constexpr char kDemo[] = UNICORN_SOURCE_DIR "/models/demo";
// Both workers on the CPU backend so the test needs no GPU; the plan splits
// every layer across them.
constexpr char kBody[] =
    "control: {heartbeat_interval_ms: 100, heartbeat_liveness: 3}\n"
    "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
    "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n";

class Daemons : public ::testing::Test {
 protected:
  std::string Health() { return sys_.Cli("health --server " + sys_.address()).out; }
  TestSystem sys_{"d", kDemo, kBody};
};

TEST_F(Daemons, UpHeartbeatDeadWorkerDown) {
  auto up = sys_.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  EXPECT_NE(up.out.find("is SERVING"), std::string::npos) << up.out;

  // Both workers registered and answer heartbeats (a measured round trip).
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  std::string h = Health();
  EXPECT_EQ(h.rfind("SERVING", 0), 0u) << h;
  EXPECT_TRUE(std::regex_search(h, std::regex(R"(npu\s+npu\s+cpu\s+yes\s+\d+\s+\d+ us rtt)"))) << h;
  EXPECT_TRUE(std::regex_search(h, std::regex(R"(gpu\s+gpu\s+cpu\s+yes\s+\d+\s+\d+ us rtt)")))
      << h;
  namespace fs = std::filesystem;
  EXPECT_EQ(fs::status(sys_.dir() / "run").permissions() & fs::perms::all, fs::perms::owner_all);

  // A SIGKILLed worker is declared dead within liveness * interval (+ slack).
  int gpu = sys_.PidOf("gpu");
  ASSERT_GT(gpu, 0);
  ASSERT_EQ(kill(gpu, SIGKILL), 0);
  auto t0 = std::chrono::steady_clock::now();
  bool dead = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    h = Health();
    if (h.rfind("NOT_SERVING", 0) == 0) {
      dead = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(dead) << h;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));

  auto down = sys_.Down();
  EXPECT_EQ(down.code, 0) << down.out;
  EXPECT_NE(down.out.find("stopped coordinator"), std::string::npos) << down.out;
  EXPECT_NE(sys_.Cli("health --server " + sys_.address()).code, 0);
}

TEST(DaemonsStart, UpFailsClearlyWhenAWorkerCannotStart) {
  TestSystem sys("f", kDemo,
                 "workers:\n  npu: {kind: npu, backend: xrt, allow_cpu_fallback: false}\n"
                 "  gpu: {kind: gpu, backend: cpu}\n"
                 "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n");
  auto up = sys.Up(30);
  EXPECT_NE(up.code, 0);
  EXPECT_NE(up.out.find("npu exited"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("allow_cpu_fallback"), std::string::npos) << up.out;
}

TEST(DaemonsStart, UpFailsClearlyOnAMissingModel) {
  TestSystem sys("m", "/nonexistent/model", kBody);
  auto up = sys.Up(30);
  EXPECT_NE(up.code, 0);
  EXPECT_NE(up.out.find("coordinator exited"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("/nonexistent/model"), std::string::npos) << up.out;
}

}  // namespace
