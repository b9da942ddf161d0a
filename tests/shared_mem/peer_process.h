// Starts shm_test_peer as a real process (fork + exec) with a control socket
// on its fd 3, and an owner-side arena + fd server in a private temp folder.
#pragma once

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "shared_mem/arena.h"
#include "shared_mem/fd_passing.h"
#include "tests/shared_mem/test_util.h"

namespace unicorn::shm::testing {

inline std::string PeerBinary() { return std::string(UNICORN_BINARY_DIR) + "/tests/shm_test_peer"; }

class PeerProcess {
 public:
  // Starts the peer with `args` (after the program name).
  explicit PeerProcess(const std::vector<std::string>& args) {
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) return;
    std::vector<std::string> all = {PeerBinary()};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(sv[1], kPeerControlFd);  // dup2 clears close-on-exec
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(sv[1]);
    fd_ = sv[0];
  }
  ~PeerProcess() {
    Kill();
    if (fd_ >= 0) ::close(fd_);
  }

  bool started() const { return pid_ > 0 && fd_ >= 0; }
  int fd() const { return fd_; }
  pid_t pid() const { return pid_; }

  std::optional<Received> Recv(int timeout_ms = 10000) { return RecvMsg(fd_, timeout_ms); }

  // The next status line ("OK ...", "ERR ..."), or "TIMEOUT".
  std::string Status(int timeout_ms = 10000) {
    for (;;) {
      auto m = Recv(timeout_ms);
      if (!m) return "TIMEOUT";
      if (m->type == Msg::kStatus) return m->payload;
    }
  }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    Wait();
  }
  // Exit status as waitpid reports it.
  int Wait() {
    if (pid_ <= 0) return exit_status_;
    ::waitpid(pid_, &exit_status_, 0);
    pid_ = -1;
    return exit_status_;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int exit_status_ = 0;
};

// A private temp folder removed on destruction.
class TempRuntimeDir {
 public:
  TempRuntimeDir() {
    static std::atomic<int> counter{0};
    path_ = absl::StrCat("/tmp/unicorn-shm-test-", ::getpid(), "-", counter.fetch_add(1));
  }
  ~TempRuntimeDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string socket() const { return path_ + "/shm.sock"; }

 private:
  std::string path_;
};

// The owner side: a memfd arena with an "act" region of `slots` slots of
// [16, hidden] f32, served over the fd socket.
struct Owner {
  TempRuntimeDir dir;
  std::unique_ptr<Arena> arena;
  std::unique_ptr<FdServer> server;

  static std::unique_ptr<Owner> Start(int64_t hidden, uint32_t slots) {
    auto o = std::make_unique<Owner>();
    ArenaPlan plan;
    plan.regions.push_back({"act", static_cast<uint64_t>(16 * hidden * 4), slots});
    plan.regions.push_back({"logits", 64 * 1024, 2});
    ArenaOptions opts;
    opts.backend = BackendPreference::kMemfd;
    auto arena = Arena::Create(plan, opts);
    EXPECT_TRUE(arena.ok()) << arena.status();
    if (!arena.ok()) return nullptr;
    o->arena = std::move(*arena);
    auto server = FdServer::Start(*o->arena, o->dir.socket());
    EXPECT_TRUE(server.ok()) << server.status();
    if (!server.ok()) return nullptr;
    o->server = std::move(*server);
    return o;
  }
};

}  // namespace unicorn::shm::testing
