// WorkerLink's heartbeats while a handler runs: the test plays the
// coordinator (a ROUTER on an ipc:// endpoint) and gives the link a command
// whose handler takes many heartbeat intervals. The worker keeps beating
// through it, up to control.busy_heartbeat_max_ms, and then falls silent.
#include "common/worker_link.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

namespace unicorn {
namespace {

namespace fs = std::filesystem;

constexpr int kIntervalMs = 50;

class BusyLink : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("uwl" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    config_.control.endpoint = "ipc://" + (dir_ / "control.sock").string();
    config_.control.heartbeat_interval_ms = kIntervalMs;
    config_.control.heartbeat_liveness = 1000;  // the worker never gives up on us here
    router_.set(zmq::sockopt::linger, 0);
    router_.bind(config_.control.endpoint);
  }
  void TearDown() override {
    if (thread_.joinable()) {
      wire::Shutdown sd;
      (void)wire::Send(router_, identity_, wire::Command::kShutdown, sd);
      thread_.join();
    }
    fs::remove_all(dir_);
  }

  // Starts a link whose RunStage handler sleeps `busy_ms`, then answers.
  void StartWorker(int busy_ms) {
    thread_ = std::thread([this, busy_ms] {
      wire::Hello hello;
      hello.set_worker_name("w");
      WorkerLink link(config_, hello);
      ASSERT_TRUE(link.Start().ok());
      link.SetHandler(wire::Command::kRunStage, [&](const wire::Message&) {
        std::this_thread::sleep_for(std::chrono::milliseconds(busy_ms));
        wire::StageDone done;
        EXPECT_TRUE(link.Send(wire::Command::kStageDone, done).ok());
      });
      while (link.Poll(10)) {
      }
    });
    auto hello = Receive(5000);
    ASSERT_TRUE(hello.has_value());
    ASSERT_EQ(hello->command, wire::Command::kHello);
    identity_ = hello->identity;
  }

  std::optional<wire::Message> Receive(int timeout_ms) {
    const int64_t until = wire::MonotonicNs() + int64_t(timeout_ms) * 1000000;
    while (wire::MonotonicNs() < until) {
      auto r = wire::TryReceive(router_, true);
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok() && r->has_value()) return **r;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return std::nullopt;
  }

  // Sends a RunStage and returns the arrival times (ms after sending) of the
  // heartbeats that came before its StageDone.
  std::vector<double> BeatsDuringStage(int timeout_ms) {
    wire::RunStage run;
    const int64_t t0 = wire::MonotonicNs();
    EXPECT_TRUE(wire::Send(router_, identity_, wire::Command::kRunStage, run).ok());
    std::vector<double> beats;
    while (auto m = Receive(timeout_ms)) {
      if (m->command == wire::Command::kStageDone) return beats;
      if (m->command == wire::Command::kHeartbeat)
        beats.push_back((wire::MonotonicNs() - t0) / 1e6);
    }
    ADD_FAILURE() << "no StageDone";
    return beats;
  }

  fs::path dir_;
  Config config_;
  zmq::context_t ctx_;
  zmq::socket_t router_{ctx_, zmq::socket_type::router};
  std::string identity_;
  std::thread thread_;
};

// A step of 16 intervals: a beat at least every ~3 intervals throughout, so the
// coordinator (which waits interval x liveness) never sees a silent worker.
TEST_F(BusyLink, KeepsBeatingWhileAHandlerRuns) {
  config_.control.busy_heartbeat_max_ms = 60000;
  StartWorker(16 * kIntervalMs);
  const auto beats = BeatsDuringStage(5000);
  ASSERT_GE(beats.size(), 8u);
  double last = 0;
  for (double t : beats) {
    EXPECT_LT(t - last, 3.0 * kIntervalMs + 50) << "a gap in the heartbeats at " << t << " ms";
    last = t;
  }
  EXPECT_GT(last, 12.0 * kIntervalMs);
}

// A handler that outlives busy_heartbeat_max_ms (a hung device): the beats
// stop, so the coordinator can declare the worker dead; the link still answers
// once the handler returns.
TEST_F(BusyLink, FallsSilentAfterTheLimit) {
  config_.control.busy_heartbeat_max_ms = 4 * kIntervalMs;
  StartWorker(20 * kIntervalMs);
  const auto beats = BeatsDuringStage(5000);
  ASSERT_FALSE(beats.empty());
  EXPECT_LT(beats.back(), 6.0 * kIntervalMs) << beats.size() << " beats";
  EXPECT_LE(beats.size(), 6u);
}

// A coordinator heartbeat that arrives while a step runs is answered after
// it; the ack says how long it was held behind the step, so the round trip
// (as `unicorn health` shows it) leaves the step out.
TEST_F(BusyLink, HeartbeatAckSaysHowLongAStepHeldIt) {
  config_.control.busy_heartbeat_max_ms = 60000;
  StartWorker(300);
  wire::RunStage run;
  ASSERT_TRUE(wire::Send(router_, identity_, wire::Command::kRunStage, run).ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the step is running
  wire::Heartbeat hb;
  hb.set_seq(1);
  hb.set_sent_ns(wire::MonotonicNs());
  ASSERT_TRUE(wire::Send(router_, identity_, wire::Command::kHeartbeat, hb).ok());
  while (auto m = Receive(5000)) {
    if (m->command != wire::Command::kHeartbeatAck) continue;
    const int64_t now = wire::MonotonicNs();
    wire::HeartbeatAck ack;
    ASSERT_TRUE(wire::ParsePayload(*m, &ack).ok());
    EXPECT_EQ(ack.echoed_sent_ns(), hb.sent_ns());
    EXPECT_GT(now - hb.sent_ns(), 200'000'000);  // it waited for the step
    EXPECT_GT(ack.held_ns(), 150'000'000);       // and says so
    EXPECT_LT(now - hb.sent_ns() - ack.held_ns(), 100'000'000);
    return;
  }
  FAIL() << "no HeartbeatAck";
}

}  // namespace
}  // namespace unicorn
