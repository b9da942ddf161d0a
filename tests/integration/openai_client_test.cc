// The OpenAI-compatible HTTP API end to end: the official `openai` npm client
// (tests/openai_client/test.mjs, pinned by its package-lock.json) against a
// real system started with `unicorn up` on the demo model, and a second one on
// vision-small for the image checks. The client is
// installed with `npm ci` into the build folder (offline from npm's cache
// when it can); the test skips, saying why, only when node or the package
// cannot be had. The client is openai 4.x, which supports Debian 12's Node 18.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <latch>
#include <thread>
#include <vector>

#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::Shell;
using unicorn::testing::TestSystem;

constexpr char kDemo[] = UNICORN_SOURCE_DIR "/models/demo";
constexpr char kBody[] =
    "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
    "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n";
constexpr char kVisionBody[] =
    "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
    "plan: {embedding: gpu, lm_head: gpu, vision: gpu, layers: [{attention: npu, ffn: gpu}]}\n";

// build/tests/openai_client with node_modules/openai installed, or "" and why.
std::string PrepareClient(std::string* why) {
  namespace fs = std::filesystem;
  fs::path src = fs::path(UNICORN_SOURCE_DIR) / "tests/openai_client";
  fs::path dir = fs::path(UNICORN_BINARY_DIR) / "tests/openai_client";
  fs::create_directories(dir);
  for (const char* f : {"package.json", "package-lock.json", "test.mjs"}) {
    fs::copy_file(src / f, dir / f, fs::copy_options::overwrite_existing);
  }
  if (Shell("node --version").code != 0) {
    *why = "node is not installed (tools/install-deps.sh installs nodejs and npm)";
    return "";
  }
  // Installs again whenever package-lock.json changed since the last install.
  auto read = [](const fs::path& p) {
    std::ifstream in(p);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  fs::path stamp = dir / "node_modules/.unicorn-installed-lock";
  if (!fs::exists(dir / "node_modules/openai/package.json") ||
      read(stamp) != read(dir / "package-lock.json")) {
    auto r = Shell("cd " + dir.string() + " && npm ci --prefer-offline --no-audit --no-fund");
    if (r.code != 0 || !fs::exists(dir / "node_modules/openai/package.json")) {
      *why = "npm ci failed (no registry and no cache?): " + r.out;
      return "";
    }
    fs::copy_file(dir / "package-lock.json", stamp, fs::copy_options::overwrite_existing);
  }
  return dir.string();
}

TEST(OpenAiClient, OfficialNpmClientAgainstRunningSystem) {
  std::string why;
  std::string dir = PrepareClient(&why);
  if (dir.empty()) GTEST_SKIP() << why;
  TestSystem sys("oa", kDemo, kBody);
  auto up = sys.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  // A second system on vision-small, for the image checks.
  TestSystem vision("oav", UNICORN_SOURCE_DIR "/tests/data/models/vision-small", kVisionBody);
  up = vision.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  auto r = Shell("cd " + dir + " && node test.mjs " + sys.http_url() + "/v1 " + vision.http_url() +
                 "/v1");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("all checks passed"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ok   image completion"), std::string::npos) << r.out;
}

// A burst of clients connecting at once (a load test's 16-32 streams) is
// accepted at once: no connection waits for a SYN retry (1 s) or is reset,
// as with cpp-httplib's default listen backlog of 5.
TEST(OpenAiClient, ABurstOfConnectionsIsServedAtOnce) {
  TestSystem sys("oab", kDemo, kBody);
  auto up = sys.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  const int port = std::stoi(sys.http_url().substr(sys.http_url().rfind(':') + 1));
  constexpr int kClients = 256;
  std::vector<double> ms(kClients, -1);
  std::vector<std::string> head(kClients);
  std::latch start(kClients);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      start.arrive_and_wait();
      const auto t0 = std::chrono::steady_clock::now();
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(uint16_t(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
        const std::string req = "GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        if (send(fd, req.data(), req.size(), 0) == ssize_t(req.size())) {
          char buf[256];
          ssize_t n = recv(fd, buf, sizeof(buf), 0);
          if (n > 0) head[size_t(i)].assign(buf, size_t(n));
        }
      }
      close(fd);
      ms[size_t(i)] =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(head[size_t(i)].rfind("HTTP/1.1 200", 0), 0u) << i << ": " << head[size_t(i)];
  }
  EXPECT_LT(*std::max_element(ms.begin(), ms.end()), 900.0)
      << "a connection waited for a SYN retry";
}

}  // namespace
