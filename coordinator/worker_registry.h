// The coordinator side of the control protocol (see common/wire.h): a ROUTER
// socket that registers workers on Hello, heartbeats each of them, and
// declares a worker dead after `heartbeat_liveness` silent intervals.
//
// Thread-safe: Start() runs the socket on its own thread; Snapshot() and
// Serving() may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace unicorn {

struct WorkerState {
  std::string name;
  std::string kind;
  std::string backend;
  std::string device;
  std::string identity;  // ZeroMQ routing id of the current connection
  int pid = 0;
  uint64_t incarnation = 0;
  int64_t last_seen_ns = 0;
  double rtt_us = 0;  // last heartbeat round trip measured by the coordinator
  bool alive = false;
  int restarts = 0;  // new incarnations seen after the first
};

class WorkerRegistry {
 public:
  explicit WorkerRegistry(const Config& config);
  ~WorkerRegistry();

  // Binds the control endpoint and starts the socket thread.
  Status Start();
  // Sends Shutdown to live workers if `shutdown_workers`, then stops.
  void Stop(bool shutdown_workers);

  std::vector<WorkerState> Snapshot() const;
  // True while every worker the plan names is alive.
  bool Serving() const;

 private:
  void Loop();

  const Config& config_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> shutdown_workers_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<WorkerState> workers_;  // guarded by mu_
  uint64_t incarnation_;
  std::string bind_error_;
};

}  // namespace unicorn
