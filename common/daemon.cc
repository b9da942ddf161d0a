#include "common/daemon.h"

#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

namespace unicorn {

Status EnsurePrivateDir(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoError(absl::StrCat("[daemon] mkdir(", path, ")"), ec.value());
  if (::chmod(path.c_str(), 0700) != 0) {
    return ErrnoError(absl::StrCat("[daemon] chmod(", path, ", 0700)"), errno);
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return ErrnoError(absl::StrCat("[daemon] stat(", path, ")"), errno);
  }
  if (st.st_uid != ::getuid()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "[daemon] runtime dir ", path, " belongs to uid ", st.st_uid, ", not ", ::getuid()));
  }
  if ((st.st_mode & 0077) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("[daemon] runtime dir ", path, " is accessible to other users"));
  }
  return absl::OkStatus();
}

namespace {
std::atomic<bool> g_stop{false};
void OnStop(int) { g_stop.store(true); }
}  // namespace

std::atomic<bool>& InstallStopHandlers() {
  struct sigaction sa {};
  sa.sa_handler = OnStop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return g_stop;
}

void NotifyReady(const std::string& status) { sd_notifyf(0, "READY=1\nSTATUS=%s", status.c_str()); }

void NotifyStatus(const std::string& status) { sd_notifyf(0, "STATUS=%s", status.c_str()); }

void NotifyStopping() { sd_notify(0, "STOPPING=1"); }

void NotifyWatchdog() {
  static uint64_t period_us = [] {
    uint64_t us = 0;
    return sd_watchdog_enabled(0, &us) > 0 ? us : 0;
  }();
  if (period_us == 0) return;
  static auto last = std::chrono::steady_clock::time_point{};
  auto now = std::chrono::steady_clock::now();
  if (now - last >= std::chrono::microseconds(period_us / 2)) {
    sd_notify(0, "WATCHDOG=1");
    last = now;
  }
}

}  // namespace unicorn
