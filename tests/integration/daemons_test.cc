// Starts the real coordinator and both workers with `unicorn up`, checks that
// they register and heartbeat, that a killed worker is declared dead within
// the configured bound, and that `unicorn down` stops everything.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

namespace {

namespace fs = std::filesystem;

struct Result {
  int code;
  std::string out;
};

Result Shell(const std::string& cmd) {
  std::array<char, 4096> buf;
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

class Daemons : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ucd-" + std::to_string(getpid()));
    fs::create_directories(dir_);
    port_ = FreePort();
    config_ = (dir_ / "test.yaml").string();
    std::ofstream(config_) << "model: m.gguf\n"
                           << "runtime_dir: " << (dir_ / "run").string() << "\n"
                           << "coordinator: {grpc_address: 127.0.0.1:" << port_ << "}\n"
                           << "control: {heartbeat_interval_ms: 100, heartbeat_liveness: 3}\n"
                           << "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu}\n"
                           << "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, "
                              "ffn: gpu}]}\n";
    bin_ = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn";
  }
  void TearDown() override {
    Shell(bin_ + " down --config " + config_);
    fs::remove_all(dir_);
  }
  std::string Health() {
    return Shell(bin_ + " health --server 127.0.0.1:" + std::to_string(port_)).out;
  }
  int PidOf(const std::string& name) {
    std::ifstream in(dir_ / "run" / (name + ".pid"));
    int pid = 0;
    in >> pid;
    return pid;
  }

  fs::path dir_;
  int port_ = 0;
  std::string config_, bin_;
};

TEST_F(Daemons, UpHeartbeatDeadWorkerDown) {
  Result up = Shell(bin_ + " up --timeout 60 --config " + config_);
  ASSERT_EQ(up.code, 0) << up.out;
  EXPECT_NE(up.out.find("SERVING"), std::string::npos) << up.out;

  // Both workers registered and answer heartbeats (a measured round trip).
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  std::string h = Health();
  EXPECT_NE(h.find("SERVING"), std::string::npos) << h;
  EXPECT_TRUE(std::regex_search(h, std::regex(R"(npu\s+npu\s+cpu\s+yes\s+\d+\s+\d+ us rtt)"))) << h;
  EXPECT_TRUE(std::regex_search(h, std::regex(R"(gpu\s+gpu\s+vulkan\s+yes\s+\d+\s+\d+ us rtt)")))
      << h;
  EXPECT_EQ(fs::status(dir_ / "run").permissions() & fs::perms::all, fs::perms::owner_all);

  // A SIGKILLed worker is declared dead within liveness * interval (+ slack).
  int gpu = PidOf("gpu");
  ASSERT_GT(gpu, 0);
  ASSERT_EQ(kill(gpu, SIGKILL), 0);
  auto t0 = std::chrono::steady_clock::now();
  bool dead = false;
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5)) {
    h = Health();
    if (h.find("NOT_SERVING") != std::string::npos) {
      dead = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(dead) << h;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));

  Result down = Shell(bin_ + " down --config " + config_);
  EXPECT_EQ(down.code, 0) << down.out;
  EXPECT_NE(down.out.find("stopped coordinator"), std::string::npos) << down.out;
  EXPECT_NE(Shell(bin_ + " health --server 127.0.0.1:" + std::to_string(port_)).code, 0);
}

TEST_F(Daemons, UpFailsClearlyWhenAWorkerCannotStart) {
  std::ofstream(config_)
      << "model: m.gguf\n"
      << "runtime_dir: " << (dir_ / "run").string() << "\n"
      << "coordinator: {grpc_address: 127.0.0.1:" << port_ << "}\n"
      << "workers:\n  npu: {kind: npu, backend: xrt, allow_cpu_fallback: false}\n"
      << "  gpu: {kind: gpu}\n"
      << "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, "
         "ffn: gpu}]}\n";
  Result up = Shell(bin_ + " up --timeout 30 --config " + config_);
  EXPECT_NE(up.code, 0);
  EXPECT_NE(up.out.find("npu exited"), std::string::npos) << up.out;
  EXPECT_NE(up.out.find("allow_cpu_fallback"), std::string::npos) << up.out;
}

}  // namespace
