// Failover by config with the real processes: the split plan (attention on
// the npu worker, the rest on the gpu worker, both on the CPU backend) plus a
// worker `spare` with `standby_for: gpu`. Two greedy streams run; the gpu
// worker is killed with SIGKILL and NOT restarted. Once it has been dead for
// control.failover_after_ms the coordinator loads gpu's parts onto the spare
// and replays: both streams equal the uncrashed run (no token lost or
// repeated), Stats counts one failover, ModelInfo says who runs what. When
// the gpu worker comes back (as systemd would restart it) the parts stay on
// the spare and gpu idles; generations still equal the uncrashed run.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <thread>

#include "proto/unicorn/service.grpc.pb.h"
#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::TestSystem;
using Clock = std::chrono::steady_clock;

// Long enough that the kill lands mid-stream even when the test's thread
// wakes late on a loaded machine (at 40 tokens and the crash at 20, both
// streams once finished before the kill).
constexpr int kTokens = 96;
constexpr int kCrashAfter = 16;  // tokens over both streams
const char* const kPrompts[2] = {"The quick brown fox", "Once upon a time, in a land far away,"};

struct StreamResult {
  std::vector<int> ids;
  std::vector<Clock::time_point> at;  // arrival of each token
  grpc::Status status;
};

std::unique_ptr<unicorn::v1::Unicorn::Stub> Stub(const std::string& address) {
  return unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

StreamResult Generate(const std::string& address, const char* prompt, std::atomic<int>* received) {
  auto stub = Stub(address);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  unicorn::v1::GenerateRequest req;
  req.set_prompt(prompt);
  req.set_max_tokens(kTokens);
  auto reader = stub->Generate(&ctx, req);
  StreamResult out;
  unicorn::v1::GenerateResponse r;
  while (reader->Read(&r)) {
    if (r.token_id() < 0) continue;
    out.ids.push_back(r.token_id());
    out.at.push_back(Clock::now());
    if (received != nullptr) received->fetch_add(1);
  }
  out.status = reader->Finish();
  return out;
}

// Both streams; `during` runs once `after` tokens have arrived over both.
std::vector<StreamResult> RunBoth(const std::string& address, std::function<void()> during = {},
                                  int after = 0) {
  std::atomic<int> received{0};
  std::vector<std::future<StreamResult>> f;
  for (const char* p : kPrompts) {
    f.push_back(std::async(std::launch::async, [&, p] { return Generate(address, p, &received); }));
  }
  if (during) {
    auto end = Clock::now() + std::chrono::seconds(60);
    while (received.load() < after && Clock::now() < end) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_GE(received.load(), after) << "the streams never reached the crash point";
    during();
  }
  std::vector<StreamResult> out;
  for (auto& x : f) out.push_back(x.get());
  return out;
}

unicorn::v1::ModelInfoResponse Info(const std::string& address) {
  auto stub = Stub(address);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  unicorn::v1::ModelInfoResponse info;
  (void)stub->ModelInfo(&ctx, unicorn::v1::ModelInfoRequest(), &info);
  return info;
}

const unicorn::v1::WorkerInfo* Worker(const unicorn::v1::ModelInfoResponse& info,
                                      const std::string& name) {
  for (const auto& w : info.workers()) {
    if (w.name() == name) return &w;
  }
  return nullptr;
}

unicorn::v1::StatsResponse Stats(const std::string& address) {
  auto stub = Stub(address);
  grpc::ClientContext ctx;
  unicorn::v1::StatsResponse s;
  (void)stub->Stats(&ctx, unicorn::v1::StatsRequest(), &s);
  return s;
}

TEST(Failover, DeadGpuWorkersPartsMoveToItsStandbyAndStay) {
  // Dead after 3 silent 100 ms heartbeats; failover 400 ms after that.
  TestSystem sys("f", UNICORN_SOURCE_DIR "/models/demo",
                 "control: {heartbeat_interval_ms: 100, heartbeat_liveness: 3, "
                 "failover_after_ms: 400, reconnect_initial_ms: 50, reconnect_max_ms: 400}\n"
                 "workers:\n"
                 "  npu: {kind: npu}\n"
                 "  gpu: {kind: gpu, backend: cpu}\n"
                 "  spare: {kind: gpu, backend: cpu, standby_for: gpu}\n"
                 "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n",
                 "max_sequences: 4");
  auto up = sys.Up(120);
  ASSERT_EQ(up.code, 0) << up.out;
  const std::string addr = sys.address();
  {
    auto info = Info(addr);
    ASSERT_NE(Worker(info, "spare"), nullptr);
    EXPECT_TRUE(Worker(info, "spare")->alive());
    EXPECT_FALSE(Worker(info, "spare")->ready());  // idle: no parts loaded
    EXPECT_EQ(Worker(info, "spare")->standby_for(), "gpu");
    EXPECT_EQ(Worker(info, "spare")->runs_parts_of(), "");
    EXPECT_EQ(Worker(info, "gpu")->runs_parts_of(), "gpu");
  }

  auto baseline = RunBoth(addr);
  for (const auto& r : baseline) {
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    ASSERT_EQ(int(r.ids.size()), kTokens);
  }

  // SIGKILL gpu early in the streams; nobody restarts it.
  Clock::time_point killed;
  auto crashed = RunBoth(
      addr,
      [&] {
        killed = Clock::now();
        sys.Signal("gpu", SIGKILL);
      },
      kCrashAfter);
  // What a client noticed: the first token after the kill, from the kill.
  double stall_ms = 0;
  for (const auto& r : crashed) {
    for (auto at : r.at) {
      if (at > killed) {
        stall_ms =
            std::max(stall_ms, std::chrono::duration<double, std::milli>(at - killed).count());
        break;
      }
    }
  }
  ASSERT_GT(stall_ms, 0) << "both streams had finished before the kill";
  std::printf(
      "[failover] gpu SIGKILLed: first token on the standby %.0f ms later "
      "(declared dead after ~300 ms, failover_after_ms 400, shard load, replay)\n",
      stall_ms);
  for (size_t i = 0; i < crashed.size(); ++i) {
    EXPECT_TRUE(crashed[i].status.ok())
        << "stream " << i << ": " << crashed[i].status.error_message() << "\n"
        << sys.Log("coordinator");
    EXPECT_EQ(crashed[i].ids, baseline[i].ids) << "stream " << i;
  }
  auto stats = Stats(addr);
  EXPECT_EQ(stats.failovers_total(), 1);
  EXPECT_GE(stats.replays_total(), 1);
  {
    auto info = Info(addr);
    EXPECT_TRUE(info.serving());
    EXPECT_FALSE(Worker(info, "gpu")->alive());
    EXPECT_EQ(Worker(info, "spare")->runs_parts_of(), "gpu");
    EXPECT_TRUE(Worker(info, "spare")->ready());
    EXPECT_NE(info.plan_summary().find("failover: gpu's parts on spare"), std::string::npos)
        << info.plan_summary();
  }
  auto health = sys.Cli("health --config " + sys.config());
  EXPECT_EQ(health.code, 0) << health.out;
  EXPECT_NE(health.out.find("spare: standby for gpu; runs the parts of gpu"), std::string::npos)
      << health.out;

  // gpu comes back (systemd's Restart=): the parts stay on the spare.
  sys.Restart("gpu", "gpu-worker");
  auto end = Clock::now() + std::chrono::seconds(30);
  while (Clock::now() < end && !Worker(Info(addr), "gpu")->alive()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a few failover checks
  {
    auto info = Info(addr);
    EXPECT_TRUE(Worker(info, "gpu")->alive());
    EXPECT_FALSE(Worker(info, "gpu")->ready());
    EXPECT_EQ(Worker(info, "gpu")->runs_parts_of(), "");
    EXPECT_EQ(Worker(info, "spare")->runs_parts_of(), "gpu");
    EXPECT_TRUE(info.serving());
  }
  auto after = RunBoth(addr);
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(after[i].status.ok()) << after[i].status.error_message();
    EXPECT_EQ(after[i].ids, baseline[i].ids) << "stream " << i;
  }
  EXPECT_EQ(Stats(addr).failovers_total(), 1);
  auto down = sys.Down();
  EXPECT_EQ(down.code, 0) << down.out;
}

}  // namespace
