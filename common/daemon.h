// What every Unicorn daemon needs from its environment: a private runtime
// folder, stop signals, and systemd readiness/watchdog notifications.
#pragma once

#include <atomic>
#include <string>

#include "common/status.h"

namespace unicorn {

// Creates `path` (and parents) with mode 0700 and checks that this user owns
// it and nobody else can enter it. Sockets and fd-passing endpoints live here.
Status EnsurePrivateDir(const std::string& path);

// Installs SIGTERM/SIGINT handlers that set the returned flag; SIGPIPE is
// ignored (a vanished peer is an error value, not a signal).
std::atomic<bool>& InstallStopHandlers();

// systemd Type=notify support; no-ops when not started by systemd.
void NotifyReady(const std::string& status);
void NotifyStatus(const std::string& status);
void NotifyStopping();
// Sends WATCHDOG=1 if systemd asked for a watchdog and half its period passed.
void NotifyWatchdog();

}  // namespace unicorn
