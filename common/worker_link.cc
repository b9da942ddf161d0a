#include "common/worker_link.h"

#include <sched.h>
#include <unistd.h>

#include <random>
#include <thread>

#include "common/cores.h"
#include "common/log.h"

namespace unicorn {
namespace {

// Longer gaps between messages are not a decode loop: nothing to spin for.
constexpr int64_t kMaxSpinGapNs = 2000000;

}  // namespace

WorkerLink::WorkerLink(const Config& config, wire::Hello hello)
    : config_(config), hello_(std::move(hello)), context_(1) {
  std::random_device rd;
  hello_.set_incarnation((uint64_t(rd()) << 32) ^ rd() ^ uint64_t(wire::MonotonicNs()));
  hello_.set_pid(::getpid());
  backoff_ms_ = config_.control.reconnect_initial_ms;
  // Spinning over a whole predicted gap pays where cores are to spare; on a
  // 2-core VM it takes the core that delivers the message.
  spin_ok_ = HasCoresToSpin();
}

WorkerLink::~WorkerLink() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  busy_cv_.notify_all();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

Status WorkerLink::Start() {
  UNICORN_RETURN_IF_ERROR(Connect());
  heartbeat_thread_ = std::thread([this] { BusyHeartbeats(); });
  return absl::OkStatus();
}

Status WorkerLink::Send(wire::Command command, const google::protobuf::MessageLite& payload) {
  std::lock_guard<std::mutex> lock(mu_);
  return wire::Send(*socket_, "", command, payload);
}

void WorkerLink::RunHandler(const Handler& handler, const wire::Message& m) {
  handler_start_ns_ = wire::MonotonicNs();
  {
    std::lock_guard<std::mutex> lock(mu_);
    busy_since_ns_ = handler_start_ns_;
  }
  busy_cv_.notify_all();
  handler(m);
  handler_end_ns_ = wire::MonotonicNs();
  std::lock_guard<std::mutex> lock(mu_);
  busy_since_ns_ = 0;
}

void WorkerLink::BusyHeartbeats() {
  const int64_t max_ns = int64_t(config_.control.busy_heartbeat_max_ms) * 1000000;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    if (busy_since_ns_ == 0) {
      busy_cv_.wait(lock, [&] { return stop_ || busy_since_ns_ != 0; });
      continue;
    }
    // Keep Poll()'s cadence: the coordinator expects a beat every interval.
    const int64_t now = wire::MonotonicNs();
    if (now >= next_heartbeat_ns_) {
      if (now - busy_since_ns_ < max_ns) {
        SendHeartbeat();
      } else if (now - busy_since_ns_ <
                 max_ns + int64_t(config_.control.heartbeat_interval_ms) * 1000000) {
        LOG_WARN(
            "[link] one command has run for {} ms (control.busy_heartbeat_max_ms): "
            "heartbeats stop until it returns",
            (now - busy_since_ns_) / 1000000);
      }
      next_heartbeat_ns_ = now + int64_t(config_.control.heartbeat_interval_ms) * 1000000;
    }
    busy_cv_.wait_for(
        lock, std::chrono::nanoseconds(std::max<int64_t>(next_heartbeat_ns_ - now, 1000000)));
  }
}

Status WorkerLink::Connect() {
  socket_ = std::make_unique<zmq::socket_t>(context_, zmq::socket_type::dealer);
  socket_->set(zmq::sockopt::linger, 0);
  socket_->set(zmq::sockopt::sndhwm, 1000);
  socket_->set(zmq::sockopt::rcvhwm, 1000);
  std::string endpoint = config_.ControlEndpoint();
  try {
    socket_->connect(endpoint);
  } catch (const zmq::error_t& e) {
    return absl::InvalidArgumentError(absl::StrCat("[link] connect(", endpoint, "): ", e.what()));
  }
  liveness_ = config_.control.heartbeat_liveness;
  acked_ = false;
  next_heartbeat_ns_ =
      wire::MonotonicNs() + int64_t(config_.control.heartbeat_interval_ms) * 1000000;
  Status s = wire::Send(*socket_, "", wire::Command::kHello, hello_);
  if (!s.ok()) LOG_WARN("{}", s.message());
  LOG_INFO("[link] connecting to {} as '{}' (incarnation {:016x})", endpoint, hello_.worker_name(),
           hello_.incarnation());
  return absl::OkStatus();
}

void WorkerLink::SendHeartbeat() {
  wire::Heartbeat hb;
  hb.set_seq(++heartbeat_seq_);
  hb.set_sent_ns(wire::MonotonicNs());
  Status s = wire::Send(*socket_, "", wire::Command::kHeartbeat, hb);
  if (!s.ok()) LOG_DEBUG("{}", s.message());
}

void WorkerLink::Handle(const wire::Message& m) {
  switch (m.command) {
    case wire::Command::kHelloAck:
      if (!acked_) LOG_INFO("[link] registered with the coordinator");
      acked_ = true;
      backoff_ms_ = config_.control.reconnect_initial_ms;
      return;
    case wire::Command::kHeartbeat: {
      wire::Heartbeat hb;
      if (!wire::ParsePayload(m, &hb).ok()) break;
      wire::HeartbeatAck ack;
      ack.set_seq(hb.seq());
      ack.set_echoed_sent_ns(hb.sent_ns());
      ack.set_received_ns(wire::MonotonicNs());
      // Sent while the last handler ran: it waited here until that returned.
      ack.set_held_ns(
          std::max<int64_t>(0, handler_end_ns_ - std::max(handler_start_ns_, hb.sent_ns())));
      (void)wire::Send(*socket_, "", wire::Command::kHeartbeatAck, ack);
      return;
    }
    case wire::Command::kHeartbeatAck: {
      wire::HeartbeatAck ack;
      if (!wire::ParsePayload(m, &ack).ok()) break;
      last_rtt_us_ = double(wire::MonotonicNs() - ack.echoed_sent_ns()) / 1000.0;
      return;
    }
    case wire::Command::kShutdown: {
      wire::Shutdown sd;
      (void)wire::ParsePayload(m, &sd);
      LOG_INFO("[link] coordinator asked to shut down: {}", sd.reason());
      shutdown_ = true;
      return;
    }
    case wire::Command::kError: {
      wire::Error err;
      (void)wire::ParsePayload(m, &err);
      LOG_WARN("[link] coordinator reported an error: {}", err.message());
      if (err.code() == int(absl::StatusCode::kUnauthenticated)) {
        // The coordinator does not know this connection: it restarted (and
        // ZeroMQ reconnected us under a new routing id). Register again now
        // rather than after `liveness` silent intervals.
        LOG_INFO("[link] the coordinator does not know this worker: saying Hello again");
        acked_ = false;
        Status s = wire::Send(*socket_, "", wire::Command::kHello, hello_);
        if (!s.ok()) LOG_WARN("{}", s.message());
      }
      return;
    }
    default:
      break;
  }
  auto it = handlers_.find(m.command);
  if (it != handlers_.end()) {
    RunHandler(it->second, m);
    return;
  }
  wire::SendError(*socket_, "",
                  absl::UnimplementedError(
                      absl::StrCat("[link] worker cannot handle ", wire::CommandName(m.command))));
}

bool WorkerLink::Poll(int timeout_ms) {
  if (shutdown_) return false;
  zmq::pollitem_t item{socket_->handle(), 0, ZMQ_POLLIN, 0};
  int64_t now = wire::MonotonicNs();
  int wait_ms = int(std::max<int64_t>(0, (next_heartbeat_ns_ - now) / 1000000));
  wait_ms = std::min(wait_ms, timeout_ms);
  try {
    // Right after traffic, spin on the socket for busy_poll_us before blocking:
    // the next pipeline step usually follows within microseconds, and waking a
    // blocked thread costs more than that on small VMs. In a decode loop the
    // next request comes about as long after the answer as the last one did
    // (the coordinator samples meanwhile): with cores to spare, spin over that.
    int64_t spin_ns = int64_t(BusyPollUs(config_.control)) * 1000;
    if (spin_ok_ && gap_ns_ < kMaxSpinGapNs) spin_ns += gap_ns_;
    const int64_t spin_until = last_traffic_ns_ + spin_ns;
    while (wire::MonotonicNs() < spin_until &&
           zmq::poll(&item, 1, std::chrono::milliseconds(0)) == 0) {
      sched_yield();  // let ZeroMQ's I/O thread (which delivers the message) run
    }
    if (!(item.revents & ZMQ_POLLIN)) zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms));
  } catch (const zmq::error_t& e) {
    if (e.num() != EINTR) LOG_WARN("[link] poll: {}", e.what());
    return !shutdown_;
  }
  if (item.revents & ZMQ_POLLIN) {
    // Drain everything that is waiting; any traffic proves the peer alive.
    for (int i = 0; i < 64; ++i) {
      auto r = wire::TryReceive(*socket_, false);
      if (!r.ok()) {
        LOG_WARN("[link] dropped a bad message: {}", r.status().message());
        wire::SendError(*socket_, "", r.status());
        continue;
      }
      if (!r->has_value()) break;
      // Traffic proves the coordinator alive, except an Error: a restarted
      // coordinator answers every message of an unknown connection with one,
      // and counting those would keep this link from ever registering again.
      if ((*r)->command != wire::Command::kError) liveness_ = config_.control.heartbeat_liveness;
      const int64_t now = wire::MonotonicNs();
      gap_ns_ = now - last_traffic_ns_;
      last_traffic_ns_ = now;
      Handle(**r);
      // The spin window starts when the answer has left, not when the
      // request came: a stage of milliseconds would otherwise use it up.
      last_traffic_ns_ = wire::MonotonicNs();
    }
  }
  now = wire::MonotonicNs();
  if (now >= next_heartbeat_ns_) {
    if (--liveness_ <= 0) {
      LOG_WARN("[link] coordinator silent for {} heartbeats; reconnecting in {} ms",
               config_.control.heartbeat_liveness, backoff_ms_);
      std::this_thread::sleep_for(std::chrono::milliseconds(backoff_ms_));
      backoff_ms_ = std::min(backoff_ms_ * 2, config_.control.reconnect_max_ms);
      ++reconnects_;
      Status s = Connect();
      if (!s.ok()) LOG_ERROR("{}", s.message());
    } else {
      SendHeartbeat();
      next_heartbeat_ns_ = now + int64_t(config_.control.heartbeat_interval_ms) * 1000000;
    }
  }
  return !shutdown_;
}

}  // namespace unicorn
