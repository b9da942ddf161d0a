// Starts and stops a real Unicorn system (coordinator + both workers) for
// integration tests, on a free loopback port and a private runtime folder.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace unicorn::testing {

struct ShellResult {
  int code;
  std::string out;
};

// Runs `cmd` through the shell; returns its exit code and stdout+stderr.
inline ShellResult Shell(const std::string& cmd) {
  std::array<char, 4096> buf;
  std::string out;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  while (size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  int st = pclose(p);
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, out};
}

inline int FreePort() {
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

// A config in a fresh folder; `body` is everything after model/runtime_dir/
// coordinator (workers, plan, control...).
class TestSystem {
 public:
  // `coordinator_extra`: more keys of the coordinator mapping ("metrics_port: 0").
  TestSystem(const std::string& tag, const std::string& model, const std::string& body,
             const std::string& coordinator_extra = "") {
    dir_ = std::filesystem::temp_directory_path() / ("uc" + tag + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    port_ = FreePort();
    config_ = (dir_ / "test.yaml").string();
    std::ofstream(config_) << "model: " << model << "\n"
                           << "runtime_dir: " << (dir_ / "run").string() << "\n"
                           << "coordinator: {grpc_address: " << address()
                           << (coordinator_extra.empty() ? "" : ", " + coordinator_extra) << "}\n"
                           << body;
    bin_ = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn";
  }
  ~TestSystem() {
    Shell(bin_ + " down --config " + config_);
    std::filesystem::remove_all(dir_);
  }
  ShellResult Up(int timeout_s = 60) {
    return Shell(bin_ + " up --timeout " + std::to_string(timeout_s) + " --config " + config_);
  }
  ShellResult Down() { return Shell(bin_ + " down --config " + config_); }
  ShellResult Cli(const std::string& args) { return Shell(bin_ + " " + args); }
  int PidOf(const std::string& name) const {
    std::ifstream in(dir_ / "run" / (name + ".pid"));
    int pid = 0;
    in >> pid;
    return pid;
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& config() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  std::string config_, bin_;
};

}  // namespace unicorn::testing
