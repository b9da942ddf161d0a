#include "coordinator/worker_registry.h"

#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <future>
#include <random>
#include <set>

#include "common/cores.h"
#include "common/log.h"
#include "proto/unicorn/worker.pb.h"

namespace unicorn {
// Spinning pays where cores are to spare (measured on 16 cores of the GPU
// host); on a 2-core VM it takes the core that delivers the message.
WorkerRegistry::WorkerRegistry(const Config& config) : config_(config), spin_ok_(HasCoresToSpin()) {
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

WorkerRegistry::~WorkerRegistry() {
  Stop(false);
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void WorkerRegistry::SetHandlers(LifecycleHandler lifecycle, MessageHandler message) {
  on_lifecycle_ = std::move(lifecycle);
  on_message_ = std::move(message);
}

WorkerState* WorkerRegistry::FindByName(const std::string& name) {
  for (auto& s : workers_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

Status WorkerRegistry::Start() {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return ErrnoError("[registry] eventfd", errno);
  std::promise<Status> bound;
  auto fut = bound.get_future();
  thread_ = std::thread([this, &bound] {
    zmq::context_t ctx(1);
    zmq::socket_t sock(ctx, zmq::socket_type::router);
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::sndhwm, 10000);
    sock.set(zmq::sockopt::rcvhwm, 10000);
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
    Loop(&sock);
  });
  Status s = fut.get();
  if (!s.ok()) thread_.join();
  return s;
}

void WorkerRegistry::HandleHello(void* socket, const wire::Message& m, int64_t now) {
  zmq::socket_t& sock = *static_cast<zmq::socket_t*>(socket);
  wire::Hello hello;
  Status ps = wire::ParsePayload(m, &hello);
  WorkerState snapshot;
  bool restarted = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    WorkerState* w = ps.ok() ? FindByName(hello.worker_name()) : nullptr;
    if (w == nullptr) {
      std::string msg = ps.ok() ? absl::StrCat("[registry] no worker named '", hello.worker_name(),
                                               "' in ", config_.source_path)
                                : std::string(ps.message());
      LOG_WARN("{}", msg);
      wire::SendError(sock, m.identity, absl::NotFoundError(msg));
      return;
    }
    if (w->incarnation != 0 && w->incarnation != hello.incarnation()) {
      ++w->restarts;
      restarted = true;
      LOG_WARN("[registry] worker '{}' restarted (pid {} -> {})", w->name, w->pid, hello.pid());
    }
    if (!w->alive || restarted) {
      LOG_INFO("[registry] worker '{}' up: {} backend on {}, pid {}", hello.worker_name(),
               hello.backend(), hello.device(), hello.pid());
    }
    w->identity = m.identity;
    w->backend = hello.backend();
    w->device = hello.device();
    w->requested_backend = hello.requested_backend();
    w->backend_note = hello.backend_note();
    w->pid = hello.pid();
    w->incarnation = hello.incarnation();
    w->alive = true;
    w->ready = false;  // until it confirms its shard
    w->last_seen_ns = now;
    snapshot = *w;
  }
  wire::HelloAck ack;
  ack.set_coordinator_incarnation(incarnation_);
  ack.set_runtime_dir(config_.runtime_dir);
  (void)wire::Send(sock, m.identity, wire::Command::kHelloAck, ack);
  if (restarted && on_lifecycle_) on_lifecycle_(snapshot, false);
  if (on_lifecycle_) on_lifecycle_(snapshot, true);
}

void WorkerRegistry::Loop(void* socket) {
  zmq::socket_t& sock = *static_cast<zmq::socket_t*>(socket);
  const int64_t interval_ns = int64_t(config_.control.heartbeat_interval_ms) * 1000000;
  const int64_t expiry_ns = interval_ns * config_.control.heartbeat_liveness;
  int64_t next_heartbeat = wire::MonotonicNs() + interval_ns;
  uint64_t seq = 0;
  zmq::pollitem_t items[2] = {{sock.handle(), 0, ZMQ_POLLIN, 0},
                              {nullptr, wake_fd_, ZMQ_POLLIN, 0}};
  while (!stop_.load()) {
    items[0].revents = items[1].revents = 0;
    try {
      // Blocks until a message or a Post() (eventfd) arrives, except inside
      // an ExpectTraffic() window. Spinning always was measured slower on a
      // 2-core VM: it starves ZeroMQ's I/O threads, which carry every hop.
      const int64_t now = wire::MonotonicNs();
      const int64_t from = spin_from_ns_.load(), until = spin_until_ns_.load();
      int n = 0;
      if (spin_ok_ && now < until) {
        if (from - now >= 1000000)
          n = zmq::poll(items, 2, std::chrono::milliseconds((from - now) / 1000000));
        while (n == 0 && wire::MonotonicNs() < until) {
          n = zmq::poll(items, 2, std::chrono::milliseconds(0));
          if (n == 0) sched_yield();
        }
      }
      if (n == 0) zmq::poll(items, 2, std::chrono::milliseconds(20));
    } catch (const zmq::error_t& e) {
      if (e.num() != EINTR) LOG_WARN("[registry] poll: {}", e.what());
    }
    if (items[1].revents & ZMQ_POLLIN) {
      uint64_t v;
      (void)!::read(wake_fd_, &v, sizeof(v));
    }
    // Outgoing first: the hot path is a stage request waiting to leave.
    std::deque<Outgoing> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out.swap(outbox_);
    }
    for (auto& o : out) {
      std::string tag(wire::kProtocolTag);
      tag.push_back(char(wire::kProtocolVersion));
      uint8_t cmd = uint8_t(o.command);
      try {
        sock.send(zmq::buffer(o.identity), zmq::send_flags::sndmore);
        sock.send(zmq::buffer(tag), zmq::send_flags::sndmore);
        sock.send(zmq::buffer(&cmd, 1), zmq::send_flags::sndmore);
        sock.send(zmq::buffer(o.payload), zmq::send_flags::none);
      } catch (const zmq::error_t& e) {
        LOG_WARN("[registry] send {}: {}", wire::CommandName(o.command), e.what());
      }
    }
    for (int i = 0; i < 256; ++i) {
      std::string sender;
      auto r = wire::TryReceive(sock, true, &sender);
      if (!r.ok()) {
        LOG_WARN("[registry] bad message: {}", r.status().message());
        if (!sender.empty()) {
          wire::SendError(sock, sender, r.status());
        }
        continue;
      }
      if (!r->has_value()) break;
      const wire::Message& m = **r;
      int64_t now = wire::MonotonicNs();
      if (m.command == wire::Command::kHello) {
        HandleHello(&sock, m, now);
        continue;
      }
      std::string name;
      bool came_back = false;
      WorkerState back;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& s : workers_) {
          if (!m.identity.empty() && s.identity == m.identity) {
            name = s.name;
            s.last_seen_ns = now;
            if (!s.alive) {
              LOG_INFO("[registry] worker '{}' is back", s.name);
              s.alive = true;
              came_back = true;
              back = s;
            }
            if (m.command == wire::Command::kHeartbeatAck) {
              wire::HeartbeatAck ack;
              if (wire::ParsePayload(m, &ack).ok()) {
                // Not the time it waited behind a step on the worker.
                s.rtt_us =
                    double(std::max<int64_t>(0, now - ack.echoed_sent_ns() - ack.held_ns())) /
                    1000.0;
              }
            }
          }
        }
      }
      if (name.empty()) {
        // A connection that never said Hello (or was expired): the worker's
        // link reconnects and says Hello again.
        // UNAUTHENTICATED tells the worker to say Hello again (common/wire.h).
        wire::SendError(sock, m.identity,
                        absl::UnauthenticatedError("[registry] unknown peer: send Hello first"));
        continue;
      }
      if (came_back && on_lifecycle_) on_lifecycle_(back, true);
      switch (m.command) {
        case wire::Command::kHeartbeat: {
          wire::Heartbeat hb;
          if (wire::ParsePayload(m, &hb).ok()) {
            wire::HeartbeatAck ack;
            ack.set_seq(hb.seq());
            ack.set_echoed_sent_ns(hb.sent_ns());
            ack.set_received_ns(now);
            (void)wire::Send(sock, m.identity, wire::Command::kHeartbeatAck, ack);
          }
          break;
        }
        case wire::Command::kHeartbeatAck:
          break;
        case wire::Command::kError: {
          wire::Error err;
          (void)wire::ParsePayload(m, &err);
          LOG_WARN("[registry] worker '{}' reported: {}", name, err.message());
          if (on_message_) on_message_(name, m);
          break;
        }
        default:
          if (on_message_) on_message_(name, m);
      }
    }
    int64_t now = wire::MonotonicNs();
    if (now >= next_heartbeat) {
      std::vector<WorkerState> died;
      {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& w : workers_) {
          if (!w.alive) continue;
          if (now - w.last_seen_ns > expiry_ns) {
            w.alive = false;
            w.ready = false;
            LOG_WARN("[registry] worker '{}' (pid {}) silent for {} ms: declared dead", w.name,
                     w.pid, (now - w.last_seen_ns) / 1000000);
            died.push_back(w);
            continue;
          }
          wire::Heartbeat hb;
          hb.set_seq(++seq);
          hb.set_sent_ns(now);
          (void)wire::Send(sock, w.identity, wire::Command::kHeartbeat, hb);
        }
      }
      for (const auto& w : died) {
        if (on_lifecycle_) on_lifecycle_(w, false);
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
    sock.set(zmq::sockopt::linger, 200);
  }
}

void WorkerRegistry::Stop(bool shutdown_workers) {
  shutdown_workers_.store(shutdown_workers);
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

void WorkerRegistry::ExpectTraffic(int64_t from_ns, int64_t until_ns) {
  spin_from_ns_.store(from_ns);
  spin_until_ns_.store(until_ns);
}

Status WorkerRegistry::Post(const std::string& name, wire::Command command, std::string payload) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    WorkerState* w = FindByName(name);
    if (w == nullptr || !w->alive) {
      return absl::UnavailableError(absl::StrCat("[registry] worker '", name, "' is not alive"));
    }
    outbox_.push_back({w->identity, command, std::move(payload)});
  }
  uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof(one));
  return absl::OkStatus();
}

void WorkerRegistry::MarkReady(const std::string& name, bool ready) {
  std::lock_guard<std::mutex> lock(mu_);
  if (WorkerState* w = FindByName(name)) w->ready = ready && w->alive;
}

std::vector<WorkerState> WorkerRegistry::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return workers_;
}

void WorkerRegistry::SetServingWorkers(std::vector<std::string> names) {
  std::lock_guard<std::mutex> lock(mu_);
  serving_workers_ = std::move(names);
}

bool WorkerRegistry::Serving() const {
  std::set<std::string> needed = {config_.plan.embedding, config_.plan.lm_head};
  if (!config_.plan.vision.empty()) needed.insert(config_.plan.vision);
  for (const auto& r : config_.plan.layers) {
    needed.insert(r.attention);
    needed.insert(r.ffn);
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!serving_workers_.empty()) needed = {serving_workers_.begin(), serving_workers_.end()};
  for (const auto& w : workers_) {
    if (needed.count(w.name) && !(w.alive && w.ready)) return false;
  }
  return true;
}

}  // namespace unicorn
