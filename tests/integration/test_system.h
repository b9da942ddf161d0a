// Starts and stops a real Unicorn system (coordinator + both workers) for
// integration tests, on a free loopback port and a private runtime folder.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

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
// coordinator (workers, plan, control...); `coordinator` adds keys to the
// coordinator mapping (e.g. "max_sequences: 1, max_queue: 1").
class TestSystem {
 public:
  TestSystem(const std::string& tag, const std::string& model, const std::string& body,
             const std::string& coordinator = "") {
    dir_ = std::filesystem::temp_directory_path() / ("uc" + tag + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    port_ = FreePort();
    http_port_ = FreePort();
    config_ = (dir_ / "test.yaml").string();
    std::ofstream(config_) << "model: " << model << "\n"
                           << "runtime_dir: " << (dir_ / "run").string() << "\n"
                           << "coordinator: {grpc_address: " << address()
                           << ", http_port: " << http_port_
                           << (coordinator.empty() ? "" : ", " + coordinator) << "}\n"
                           << body;
    bin_ = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn";
  }
  ~TestSystem() {
    for (pid_t pid : children_) {
      if (pid > 0) kill(pid, SIGTERM);  // never kill(-1, ...)
    }
    for (pid_t pid : children_) {
      if (pid > 0) waitpid(pid, nullptr, 0);
    }
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
  // Starts one daemon again the way systemd's Restart= does: the same command
  // line (`unicorn up`'s, see tools/cli/cmd_daemons.cc), the log appended, the
  // pid file updated. `name` is "coordinator" or a worker name; `exe` is
  // "coordinator", "npu-worker" or "gpu-worker". Returns the new pid.
  pid_t Restart(const std::string& name, const std::string& exe) {
    std::string path = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn-" + exe;
    std::vector<std::string> args = {path, "--config", config_};
    if (name != "coordinator") {
      args.push_back("--name");
      args.push_back(name);
    }
    std::string log = (dir_ / "run" / "logs" / (name + ".log")).string();
    pid_t pid = fork();
    if (pid == 0) {
      setsid();
      int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    children_.push_back(pid);
    std::ofstream(dir_ / "run" / (name + ".pid")) << pid << "\n";
    return pid;
  }
  // Sends `sig` to a daemon; SIGKILL also waits until it is gone (reaping it
  // if this process started it).
  void Signal(const std::string& name, int sig) {
    pid_t pid = PidOf(name);
    if (pid <= 0) return;
    kill(pid, sig);
    if (sig != SIGKILL) return;
    for (pid_t& c : children_) {
      if (c == pid) {
        waitpid(pid, nullptr, 0);
        c = -1;
        return;
      }
    }
    // Not ours: wait for /proc to say it is dead (or a zombie of its parent).
    for (int i = 0; i < 500; ++i) {
      std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
      std::string line;
      if (!std::getline(st, line)) return;
      auto p = line.rfind(')');
      if (p != std::string::npos && p + 2 < line.size() && line[p + 2] == 'Z') return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  std::string Log(const std::string& name) const {
    std::ifstream in(dir_ / "run" / "logs" / (name + ".log"));
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The OpenAI-compatible HTTP API's base URL, "http://127.0.0.1:<port>".
  std::string http_url() const { return "http://127.0.0.1:" + std::to_string(http_port_); }
  const std::string& config() const { return config_; }
  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  int http_port_ = 0;
  std::string config_, bin_;
  std::vector<pid_t> children_;  // daemons restarted by this process
};

}  // namespace unicorn::testing
