#include "coordinator/worker_registry.h"

#include <future>
#include <random>
#include <set>

#include "common/log.h"
#include "common/wire.h"
#include "proto/unicorn/worker.pb.h"

namespace unicorn {

WorkerRegistry::WorkerRegistry(const Config& config) : config_(config) {
  std::random_device rd;
  incarnation_ = (uint64_t(rd()) << 32) ^ rd();
  for (const auto& w : config_.workers) {
    WorkerState s;
    s.name = w.name;
    s.kind = w.kind;
    s.backend = w.backend;
    workers_.push_back(s);
  }
}

WorkerRegistry::~WorkerRegistry() { Stop(false); }

Status WorkerRegistry::Start() {
  std::promise<Status> bound;
  auto fut = bound.get_future();
  thread_ = std::thread([this, &bound] {
    zmq::context_t ctx(1);
    zmq::socket_t sock(ctx, zmq::socket_type::router);
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::router_mandatory, 0);
    std::string endpoint = config_.ControlEndpoint();
    try {
      sock.bind(endpoint);
    } catch (const zmq::error_t& e) {
      bound.set_value(
          absl::UnavailableError(absl::StrCat("[registry] bind(", endpoint, "): ", e.what())));
      return;
    }
    LOG_INFO("[registry] control endpoint {}", endpoint);
    bound.set_value(absl::OkStatus());

    const int64_t interval_ns = int64_t(config_.control.heartbeat_interval_ms) * 1000000;
    const int64_t expiry_ns = interval_ns * config_.control.heartbeat_liveness;
    int64_t next_heartbeat = wire::MonotonicNs() + interval_ns;
    uint64_t seq = 0;
    while (!stop_.load()) {
      zmq::pollitem_t item{sock.handle(), 0, ZMQ_POLLIN, 0};
      try {
        zmq::poll(&item, 1, std::chrono::milliseconds(50));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) LOG_WARN("[registry] poll: {}", e.what());
      }
      for (int i = 0; i < 256 && (item.revents & ZMQ_POLLIN); ++i) {
        std::string sender;
        auto r = wire::TryReceive(sock, true, &sender);
        if (!r.ok()) {
          LOG_WARN("[registry] bad message: {}", r.status().message());
          if (!sender.empty()) {
            wire::Error err;
            err.set_code(int(r.status().code()));
            err.set_message(std::string(r.status().message()));
            (void)wire::Send(sock, sender, wire::Command::kError, err);
          }
          continue;
        }
        if (!r->has_value()) break;
        const wire::Message& m = **r;
        int64_t now = wire::MonotonicNs();
        std::lock_guard<std::mutex> lock(mu_);
        WorkerState* w = nullptr;
        for (auto& s : workers_) {
          if (s.identity == m.identity && !m.identity.empty()) w = &s;
        }
        if (m.command == wire::Command::kHello) {
          wire::Hello hello;
          Status ps = wire::ParsePayload(m, &hello);
          WorkerState* named = nullptr;
          for (auto& s : workers_) {
            if (s.name == hello.worker_name()) named = &s;
          }
          if (!ps.ok() || named == nullptr) {
            wire::Error err;
            err.set_code(int(absl::StatusCode::kNotFound));
            err.set_message(ps.ok()
                                ? absl::StrCat("[registry] no worker named '", hello.worker_name(),
                                               "' in ", config_.source_path)
                                : std::string(ps.message()));
            LOG_WARN("{}", err.message());
            (void)wire::Send(sock, m.identity, wire::Command::kError, err);
            continue;
          }
          if (named->incarnation != 0 && named->incarnation != hello.incarnation()) {
            ++named->restarts;
            LOG_WARN("[registry] worker '{}' restarted (pid {} -> {})", named->name, named->pid,
                     hello.pid());
          }
          if (!named->alive || named->incarnation != hello.incarnation()) {
            LOG_INFO("[registry] worker '{}' up: {} backend on {}, pid {}", hello.worker_name(),
                     hello.backend(), hello.device(), hello.pid());
          }
          named->identity = m.identity;
          named->backend = hello.backend();
          named->device = hello.device();
          named->pid = hello.pid();
          named->incarnation = hello.incarnation();
          named->alive = true;
          named->last_seen_ns = now;
          wire::HelloAck ack;
          ack.set_coordinator_incarnation(incarnation_);
          ack.set_runtime_dir(config_.runtime_dir);
          (void)wire::Send(sock, m.identity, wire::Command::kHelloAck, ack);
          continue;
        }
        if (w == nullptr) {
          // Traffic from a connection that never said Hello (or that we expired):
          // tell it so; the worker's link reconnects and says Hello again.
          wire::Error err;
          err.set_code(int(absl::StatusCode::kFailedPrecondition));
          err.set_message("[registry] unknown peer: send Hello first");
          (void)wire::Send(sock, m.identity, wire::Command::kError, err);
          continue;
        }
        w->last_seen_ns = now;
        if (!w->alive) LOG_INFO("[registry] worker '{}' is back", w->name);
        w->alive = true;
        if (m.command == wire::Command::kHeartbeat) {
          wire::Heartbeat hb;
          if (wire::ParsePayload(m, &hb).ok()) {
            wire::HeartbeatAck ack;
            ack.set_seq(hb.seq());
            ack.set_echoed_sent_ns(hb.sent_ns());
            ack.set_received_ns(now);
            (void)wire::Send(sock, m.identity, wire::Command::kHeartbeatAck, ack);
          }
        } else if (m.command == wire::Command::kHeartbeatAck) {
          wire::HeartbeatAck ack;
          if (wire::ParsePayload(m, &ack).ok()) {
            w->rtt_us = double(now - ack.echoed_sent_ns()) / 1000.0;
          }
        } else if (m.command == wire::Command::kError) {
          wire::Error err;
          (void)wire::ParsePayload(m, &err);
          LOG_WARN("[registry] worker '{}' reported: {}", w->name, err.message());
        }
      }
      int64_t now = wire::MonotonicNs();
      if (now >= next_heartbeat) {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& w : workers_) {
          if (!w.alive) continue;
          if (now - w.last_seen_ns > expiry_ns) {
            w.alive = false;
            LOG_WARN("[registry] worker '{}' (pid {}) silent for {} ms: declared dead", w.name,
                     w.pid, (now - w.last_seen_ns) / 1000000);
            continue;
          }
          wire::Heartbeat hb;
          hb.set_seq(++seq);
          hb.set_sent_ns(now);
          (void)wire::Send(sock, w.identity, wire::Command::kHeartbeat, hb);
        }
        next_heartbeat = now + interval_ns;
      }
    }
    if (shutdown_workers_.load()) {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& w : workers_) {
        if (!w.alive) continue;
        wire::Shutdown sd;
        sd.set_reason("coordinator stopping");
        (void)wire::Send(sock, w.identity, wire::Command::kShutdown, sd);
      }
      // Give the messages a moment to leave before the socket closes.
      sock.set(zmq::sockopt::linger, 200);
    }
  });
  Status s = fut.get();
  if (!s.ok()) {
    thread_.join();
    return s;
  }
  return absl::OkStatus();
}

void WorkerRegistry::Stop(bool shutdown_workers) {
  shutdown_workers_.store(shutdown_workers);
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::vector<WorkerState> WorkerRegistry::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return workers_;
}

bool WorkerRegistry::Serving() const {
  std::set<std::string> needed = {config_.plan.embedding, config_.plan.lm_head};
  if (!config_.plan.vision.empty()) needed.insert(config_.plan.vision);
  for (const auto& r : config_.plan.layers) {
    needed.insert(r.attention);
    needed.insert(r.ffn);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& w : workers_) {
    if (needed.count(w.name) && !w.alive) return false;
  }
  return true;
}

}  // namespace unicorn
