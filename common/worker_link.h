// The worker side of the control protocol (see common/wire.h): a DEALER
// socket to the coordinator with Hello, heartbeats both ways, liveness
// counting and reconnect with exponential backoff (Paranoid Pirate).
//
// One thread owns a WorkerLink and calls Poll() in its loop; handlers for
// other commands are added by later stages of the pipeline through
// SetHandler() and run on that thread, answering through Send(). While a
// handler runs (a step, a shard load), a side thread keeps the heartbeats
// going, for up to control.busy_heartbeat_max_ms: a long step is not a dead
// worker, but a handler stuck for longer (a hung device) falls silent and the
// coordinator declares the worker dead.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/wire.h"
#include "proto/unicorn/worker.pb.h"

namespace unicorn {

class WorkerLink {
 public:
  // `hello` describes this worker; its incarnation is filled in here.
  WorkerLink(const Config& config, wire::Hello hello);
  ~WorkerLink();

  // Connects and sends Hello. Errors are endpoint problems (bad address).
  Status Start();

  // Waits up to `timeout_ms` for traffic, handles it, sends a heartbeat when
  // due and reconnects when the coordinator has gone silent. Returns false
  // once the coordinator asked this worker to shut down.
  bool Poll(int timeout_ms);

  using Handler = std::function<void(const wire::Message&)>;
  void SetHandler(wire::Command command, Handler handler) {
    handlers_[command] = std::move(handler);
  }

  // Sends to the coordinator; for handlers (safe beside the heartbeat thread).
  Status Send(wire::Command command, const google::protobuf::MessageLite& payload);

  bool connected() const { return acked_; }
  uint64_t incarnation() const { return hello_.incarnation(); }
  double last_rtt_us() const { return last_rtt_us_; }
  int reconnects() const { return reconnects_; }

 private:
  Status Connect();
  void Handle(const wire::Message& m);
  void SendHeartbeat();
  void RunHandler(const Handler& handler, const wire::Message& m);
  void BusyHeartbeats();  // the side thread

  const Config& config_;
  wire::Hello hello_;
  zmq::context_t context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::map<wire::Command, Handler> handlers_;
  int liveness_ = 0;
  int backoff_ms_ = 0;
  int64_t next_heartbeat_ns_ = 0;
  int64_t last_traffic_ns_ = 0;  // the last message handled (its answer sent)
  int64_t gap_ns_ = 0;           // from the last message handled to the next one
  bool spin_ok_ = false;         // enough cores to spin over gap_ns_
  uint64_t heartbeat_seq_ = 0;
  bool acked_ = false;
  bool shutdown_ = false;
  double last_rtt_us_ = 0;
  int reconnects_ = 0;

  // The socket is the Poll() thread's, except while a handler runs: then
  // Send() and the heartbeat thread use it, one at a time under mu_.
  std::mutex mu_;
  std::condition_variable busy_cv_;
  int64_t busy_since_ns_ = 0;  // 0 = no handler running
  // The last handler's run (main thread only): a heartbeat answered after it
  // reports the part of its wait it spent behind that handler.
  int64_t handler_start_ns_ = 0, handler_end_ns_ = 0;
  bool stop_ = false;
  std::thread heartbeat_thread_;
};

}  // namespace unicorn
