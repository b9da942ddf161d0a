// Soak (label slow): 1,000 requests at concurrency 32 against the real
// processes on the CPU backend, with random cancellations (Cancel RPC),
// client disconnects (the client cancels its stream mid-way) and short
// deadlines. Checks: every request ends with an expected status (none lost),
// the engine ends idle with every request counted, the RSS of the
// coordinator and the workers stays flat between the first and the last
// quarter, and (in a UNICORN_SANITIZE build: ASan + LSan) no daemon log holds
// a sanitizer report after a clean `unicorn down`.
//   cmake -S . -B build-asan -G Ninja -DUNICORN_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
//   ninja -C build-asan soak_test && ctest --test-dir build-asan -R Soak --output-on-failure
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <random>

#include "proto/unicorn/service.grpc.pb.h"
#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::TestSystem;

constexpr int kRequests = 1000;
constexpr int kConcurrency = 32;

long RssKb(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST(Soak, ThousandRequestsWithCancellationsAndDisconnects) {
  TestSystem sys("s", UNICORN_SOURCE_DIR "/models/demo",
                 "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
                 "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n",
                 "max_sequences: 16, max_queue: 64");
  auto up = sys.Up(120);
  ASSERT_EQ(up.code, 0) << up.out;
  auto channel = grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials());
  auto stub = unicorn::v1::Unicorn::NewStub(channel);
  const std::vector<std::string> names = {"coordinator", "npu", "gpu"};

  std::atomic<int> next{0};
  std::mutex mu;
  std::map<std::string, int> outcomes;
  std::map<std::string, std::vector<long>> rss;
  auto sample_rss = [&] {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& n : names) rss[n].push_back(RssKb(sys.PidOf(n)));
  };
  auto client = [&](int worker) {
    std::mt19937 rng(uint32_t(worker) * 7919u + 1);
    while (true) {
      int i = next.fetch_add(1);
      if (i >= kRequests) return;
      if (i == kRequests / 4 || i == kRequests - kConcurrency) sample_rss();
      int kind = std::uniform_int_distribution<int>(0, 9)(rng);
      grpc::ClientContext ctx;
      std::string id = "soak-" + std::to_string(i);
      unicorn::v1::GenerateRequest req;
      req.set_prompt("Request " + std::to_string(i) + ": tell me a story about the sea");
      req.set_max_tokens(std::uniform_int_distribution<int>(1, 24)(rng));
      req.set_request_id(id);
      if (kind == 9)
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(20));
      auto reader = stub->Generate(&ctx, req);
      unicorn::v1::GenerateResponse r;
      int tokens = 0;
      bool final_seen = false;
      while (reader->Read(&r)) {
        if (r.token_id() < 0) final_seen = true;
        ++tokens;
        if (kind == 7 && tokens == 2) {  // disconnect: drop the stream mid-way
          ctx.TryCancel();
        } else if (kind == 8 && tokens == 1) {  // cancel through the API
          grpc::ClientContext c2;
          unicorn::v1::CancelRequest cr;
          cr.set_request_id(id);
          unicorn::v1::CancelResponse resp;
          (void)stub->Cancel(&c2, cr, &resp);
        }
      }
      grpc::Status st = reader->Finish();
      std::string outcome;
      if (st.ok()) {
        outcome = final_seen ? "ok" : "ok-without-final";
      } else {
        outcome = "status-" + std::to_string(int(st.error_code()));
      }
      bool expected = (st.ok() && final_seen) ||
                      (kind == 7 && st.error_code() == grpc::StatusCode::CANCELLED) ||
                      (kind == 9 && st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED);
      if (!expected)
        outcome += " (unexpected, kind " + std::to_string(kind) + ": " + st.error_message() + ")";
      std::lock_guard<std::mutex> lock(mu);
      ++outcomes[outcome];
    }
  };
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::future<void>> clients;
  for (int c = 0; c < kConcurrency; ++c) {
    clients.push_back(std::async(std::launch::async, client, c));
  }
  for (auto& f : clients) f.get();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  int total = 0;
  for (const auto& [o, n] : outcomes) {
    total += n;
    std::printf("[soak] %-20s %d\n", o.c_str(), n);
    EXPECT_EQ(o.find("unexpected"), std::string::npos) << o << " x" << n;
  }
  EXPECT_EQ(total, kRequests);
  // The engine is idle again and saw every request.
  unicorn::v1::StatsResponse s;
  for (int i = 0; i < 200; ++i) {
    grpc::ClientContext ctx;
    stub->Stats(&ctx, unicorn::v1::StatsRequest(), &s);
    if (s.requests_running() == 0 && s.requests_waiting() == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(s.requests_running(), 0);
  EXPECT_EQ(s.requests_waiting(), 0);
  EXPECT_EQ(s.requests_total(), kRequests);
  std::printf("[soak] %d requests in %.1f s at concurrency %d; %lld tokens generated\n", kRequests,
              secs, kConcurrency, (long long)s.generated_tokens_total());
  // Memory flat: the last sample within 16 MiB (allocator and ASan quarantine
  // noise) of the first.
  for (const auto& n : names) {
    ASSERT_EQ(rss[n].size(), 2u) << n;
    std::printf("[soak] %s RSS %ld -> %ld KiB\n", n.c_str(), rss[n][0], rss[n][1]);
    EXPECT_LT(rss[n][1] - rss[n][0], 16 * 1024) << n << " grew";
  }
  auto down = sys.Down();
  EXPECT_EQ(down.code, 0) << down.out;
  for (const auto& n : names) {
    std::string log = sys.Log(n);
    EXPECT_EQ(log.find("Sanitizer"), std::string::npos) << n << ":\n" << log.substr(0, 4000);
  }
}

}  // namespace
