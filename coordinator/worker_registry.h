// The coordinator side of the control protocol (see common/wire.h): a ROUTER
// socket that registers workers on Hello, heartbeats each of them, declares a
// worker dead after `heartbeat_liveness` silent intervals, and carries the
// pipeline's messages both ways.
//
// Thread-safe: Start() runs the socket on its own thread (the only one that
// touches it). Post() may be called from any thread; handlers run on the
// socket thread and must not block.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/status.h"
#include "common/wire.h"

namespace unicorn {

struct WorkerState {
  std::string name;
  std::string kind;
  std::string backend;
  std::string device;
  std::string requested_backend;  // the config's backend; differs from `backend` on a fallback
  std::string backend_note;       // why it differs
  std::string identity;           // ZeroMQ routing id of the current connection
  int pid = 0;
  uint64_t incarnation = 0;
  int64_t last_seen_ns = 0;
  double rtt_us = 0;  // last heartbeat round trip measured by the coordinator
  bool alive = false;
  bool ready = false;  // its shard is loaded (set through MarkReady)
  int restarts = 0;    // new incarnations seen after the first
};

class WorkerRegistry {
 public:
  explicit WorkerRegistry(const Config& config);
  ~WorkerRegistry();

  // Called on the socket thread when a worker registers (`up`, after its
  // Hello) or is declared dead / reconnects as a new incarnation (`!up`).
  using LifecycleHandler = std::function<void(const WorkerState& w, bool up)>;
  // Called on the socket thread for pipeline messages (not Hello/Heartbeat).
  using MessageHandler = std::function<void(const std::string& worker, const wire::Message& m)>;
  void SetHandlers(LifecycleHandler lifecycle, MessageHandler message);

  // Binds the control endpoint and starts the socket thread.
  Status Start();
  // Stops the thread; sends Shutdown to live workers first if asked.
  void Stop(bool shutdown_workers);

  // Queues a message to worker `name`; the socket thread sends it at once.
  // Unavailable if the worker is not alive.
  Status Post(const std::string& name, wire::Command command, std::string payload);

  // A hint from the pipeline: traffic is due between the two times
  // (wire::MonotonicNs()). The socket thread then spins on its socket over
  // that window instead of sleeping in poll, which saves a thread wake-up per
  // message on the decode path. Ignored on hosts with few cores, where the
  // spinning would take the core ZeroMQ's I/O thread needs.
  void ExpectTraffic(int64_t from_ns, int64_t until_ns);

  void MarkReady(const std::string& name, bool ready);
  std::vector<WorkerState> Snapshot() const;
  // True while every worker the plan names is alive and ready (after a
  // failover: the workers named by SetServingWorkers).
  bool Serving() const;
  // The workers Serving() waits for, replacing the plan's names (the
  // pipeline calls it when it moves a worker's parts to its standby).
  void SetServingWorkers(std::vector<std::string> names);

 private:
  struct Outgoing {
    std::string identity;
    wire::Command command;
    std::string payload;
  };
  void Loop(void* socket);
  void HandleHello(void* socket, const wire::Message& m, int64_t now);
  WorkerState* FindByName(const std::string& name);  // mu_ held

  const Config& config_;
  LifecycleHandler on_lifecycle_;
  MessageHandler on_message_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> shutdown_workers_{false};
  std::thread thread_;
  int wake_fd_ = -1;    // eventfd: Post() wakes the socket thread
  const bool spin_ok_;  // enough cores to spin (ExpectTraffic)
  std::atomic<int64_t> spin_from_ns_{0}, spin_until_ns_{0};
  mutable std::mutex mu_;
  std::vector<WorkerState> workers_;          // guarded by mu_
  std::deque<Outgoing> outbox_;               // guarded by mu_
  std::vector<std::string> serving_workers_;  // guarded by mu_; empty = the plan's
  uint64_t incarnation_;
};

}  // namespace unicorn
