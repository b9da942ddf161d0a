// Zero-copy activation handoff between two processes vs. a plain ZeroMQ copy.
//
//   ninja -C build benchmarks && build/bench/shm_handoff_bench            # Google Benchmark
//   build/bench/shm_handoff_bench --table [--iters N] [--bytes B] [--spin-us S] [--no-yield]
//                                         [--touch]
//
// Each round trip is two handoffs: this process hands a tensor to a peer
// process, the peer hands one back. Methods:
//   descriptor   only the 40-byte descriptor over ZeroMQ ipc:// (the floor);
//   shm          the producer fills a slot in place (BeginWrite/Commit), ZeroMQ
//                carries the descriptor, the consumer validates it
//                (BeginRead/EndRead) and releases the slot;
//   zmq-copy     the same bytes as a ZeroMQ message over ipc:// (copied into
//                the message, through the socket, out of it).
// The waiting side spins on non-blocking receives for spin_us, then blocks
// (SpinReceive). --touch makes the consumer read every byte in both methods
// (what a kernel using the activation would do); without it neither side
// touches the payload beyond what the transport needs.
#include <benchmark/benchmark.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/daemon.h"
#include "common/log.h"
#include "shared_mem/fd_passing.h"
#include "shared_mem/handoff.h"
#include "shared_mem/slot.h"
#include "shared_mem/tensor_desc.h"

namespace unicorn::shm {
namespace {

enum class Method { kDescriptor, kShm, kZmqCopy };

const char* MethodName(Method m) {
  switch (m) {
    case Method::kDescriptor:
      return "descriptor (40 B)";
    case Method::kShm:
      return "shm slot + descriptor";
    case Method::kZmqCopy:
      return "zmq copy";
  }
  return "?";
}

struct Options {
  size_t bytes = 1 << 20;
  int spin_us = 200;
  bool yield = true;
  bool touch = false;
};

constexpr int kTimeoutMs = 10000;

uint64_t Touch(const uint8_t* p, size_t n) {
  uint64_t sum = 0;
  const auto* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < n / 8; ++i) sum += w[i];
  return sum;
}

void Die(const Status& s) {
  std::fprintf(stderr, "shm_handoff_bench: %s\n", s.ToString().c_str());
  std::exit(1);
}

#define BENCH_CHECK_OK(expr)    \
  do {                          \
    ::absl::Status s_ = (expr); \
    if (!s_.ok()) Die(s_);      \
  } while (0)

// One side of the ping-pong: its arena view, its own write ring and a PAIR
// socket to the other side.
class Side {
 public:
  Side(Arena& arena, uint32_t first_slot, zmq::socket_t& socket, const Options& o)
      : arena_(arena), socket_(socket), options_(o), buffer_(o.bytes) {
    Region* act = arena.region("act");
    auto ring = WriterRing::Claim(*act, first_slot, 2, act->NextWriterGeneration());
    if (!ring.ok()) Die(ring.status());
    ring_ = std::make_unique<WriterRing>(std::move(*ring));
    auto t = RowMajor(TensorDType::kF32, {static_cast<int64_t>(o.bytes / 4)});
    if (!t.ok()) Die(t.status());
    tensor_ = *t;
    std::memset(buffer_.data(), 1, buffer_.size());
  }

  void Send(Method m) {
    switch (m) {
      case Method::kDescriptor:
        BENCH_CHECK_OK(SendDescriptor(socket_, last_));
        break;
      case Method::kShm: {
        auto w = ring_->Acquire(kTimeoutMs);
        if (!w.ok()) Die(w.status());
        auto bytes = (*w)->BeginWrite(tensor_);  // a kernel would write its output here
        if (!bytes.ok()) Die(bytes.status());
        auto d = (*w)->Commit();
        if (!d.ok()) Die(d.status());
        last_ = *d;
        BENCH_CHECK_OK(SendDescriptor(socket_, *d));
        break;
      }
      case Method::kZmqCopy:
        socket_.send(zmq::buffer(buffer_.data(), buffer_.size()), zmq::send_flags::none);
        break;
    }
  }

  // Receives one handoff; false when the peer said stop (an empty frame).
  bool Receive(Method m) {
    zmq::message_t msg;
    auto got = SpinReceive(socket_, msg, SpinPolicy{options_.spin_us, options_.yield}, kTimeoutMs);
    if (!got.ok()) Die(got.status());
    if (!*got) Die(absl::DeadlineExceededError("peer silent"));
    if (msg.size() == 0) return false;
    if (m == Method::kZmqCopy) {
      if (options_.touch) sink_ += Touch(static_cast<const uint8_t*>(msg.data()), msg.size());
      return true;
    }
    auto d = Decode(std::span<const uint8_t>(static_cast<const uint8_t*>(msg.data()), msg.size()));
    if (!d.ok()) Die(d.status());
    if (m == Method::kDescriptor) {
      last_ = *d;
      return true;
    }
    auto view = BeginRead(arena_, *d);
    if (!view.ok()) Die(view.status());
    if (options_.touch) sink_ += Touch(view->data, view->tensor.byte_size);
    BENCH_CHECK_OK(EndRead(*view));
    Release(*view);
    return true;
  }

  void SendStop() { socket_.send(zmq::message_t(), zmq::send_flags::none); }

 private:
  Arena& arena_;
  zmq::socket_t& socket_;
  Options options_;
  std::vector<uint8_t> buffer_;  // where the zmq-copy producer's tensor lives
  std::unique_ptr<WriterRing> ring_;
  TensorDesc tensor_;
  SlotDescriptor last_{};
  uint64_t sink_ = 0;
};

// A peer process that echoes handoffs of one method until told to stop.
class Session {
 public:
  Session(Method m, const Options& o) : method_(m) {
    dir_ = absl::StrCat("/tmp/unicorn-shm-bench-", ::getpid());
    std::string fd_socket = dir_ + "/shm.sock";
    std::string endpoint = "ipc://" + dir_ + "/handoff.sock";
    pid_ = ::fork();  // before any thread or ZeroMQ context exists here
    if (pid_ == 0) {
      RunPeer(m, o, fd_socket, endpoint);
      ::_exit(0);
    }
    BENCH_CHECK_OK(EnsurePrivateDir(dir_));
    ArenaPlan plan;
    plan.regions.push_back({"act", o.bytes, 4});
    ArenaOptions ao;
    ao.backend = BackendPreference::kAuto;
    auto arena = Arena::Create(plan, ao);
    if (!arena.ok()) Die(arena.status());
    arena_ = std::move(*arena);
    auto server = FdServer::Start(*arena_, fd_socket);
    if (!server.ok()) Die(server.status());
    server_ = std::move(*server);
    context_ = std::make_unique<zmq::context_t>(1);
    socket_ = std::make_unique<zmq::socket_t>(*context_, zmq::socket_type::pair);
    socket_->bind(endpoint);
    side_ = std::make_unique<Side>(*arena_, 0, *socket_, o);
    // The peer says hello once attached.
    zmq::message_t hello;
    auto got = SpinReceive(*socket_, hello, SpinPolicy{0}, kTimeoutMs);
    if (!got.ok() || !*got) Die(absl::UnavailableError("bench peer did not start"));
  }

  ~Session() {
    side_->SendStop();
    int status = 0;
    ::waitpid(pid_, &status, 0);
    side_.reset();
    socket_.reset();
    context_.reset();
    server_.reset();
  }

  void RoundTrip() {
    side_->Send(method_);
    side_->Receive(method_);
  }

 private:
  static void RunPeer(Method m, const Options& o, const std::string& fd_socket,
                      const std::string& endpoint) {
    std::unique_ptr<Arena> arena;
    for (int i = 0; i < 500 && !arena; ++i) {
      auto a = AttachArena(fd_socket, 1000);
      if (a.ok()) {
        arena = std::move(*a);
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    if (!arena) Die(absl::UnavailableError("bench peer could not attach"));
    zmq::context_t context(1);
    zmq::socket_t socket(context, zmq::socket_type::pair);
    socket.connect(endpoint);
    Side side(*arena, 2, socket, o);
    socket.send(zmq::str_buffer("hello"), zmq::send_flags::none);
    while (side.Receive(m)) side.Send(m);
  }

  Method method_;
  std::string dir_;
  pid_t pid_ = -1;
  std::unique_ptr<Arena> arena_;
  std::unique_ptr<FdServer> server_;
  std::unique_ptr<zmq::context_t> context_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::unique_ptr<Side> side_;
};

Options g_options;

// --- Google Benchmark: one iteration = one round trip = two handoffs ---
void BM_RoundTrip(benchmark::State& state) {
  Options o = g_options;
  Method m = static_cast<Method>(state.range(0));
  o.spin_us = static_cast<int>(state.range(1));
  Session session(m, o);
  for (int i = 0; i < 20; ++i) session.RoundTrip();  // warm up
  for (auto _ : state) session.RoundTrip();
  state.SetLabel(absl::StrCat(MethodName(m), ", spin ", o.spin_us, " us"));
}
BENCHMARK(BM_RoundTrip)
    ->ArgsProduct({{static_cast<int>(Method::kDescriptor), static_cast<int>(Method::kShm),
                    static_cast<int>(Method::kZmqCopy)},
                   {0, 200}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime()  // the waiting side sleeps or spins: wall time is what counts
    ->MinTime(0.5);

// In-process cost of publishing and validating one descriptor (no transport).
void BM_CommitAndValidate(benchmark::State& state) {
  ArenaPlan plan;
  plan.regions.push_back({"act", 1 << 20, 1});
  ArenaOptions ao;
  ao.backend = BackendPreference::kMemfd;
  auto arena = Arena::Create(plan, ao);
  if (!arena.ok()) Die(arena.status());
  Region* act = (*arena)->region("act");
  auto w = SlotWriter::Claim(*act, 0, 1);
  auto t = RowMajor(TensorDType::kF32, {256, 1024});
  for (auto _ : state) {
    (void)w->BeginWrite(*t);
    auto d = w->Commit();
    EncodedDescriptor e = Encode(*d);
    auto back = Decode(e);
    auto view = BeginRead(**arena, *back);
    benchmark::DoNotOptimize(view->data);
    (void)EndRead(*view);
    Release(*view);
  }
}
BENCHMARK(BM_CommitAndValidate);

// --- Standalone table ---
struct Stats {
  double median, p90, mean;
};

Stats Measure(Method m, const Options& o, int iterations) {
  Session session(m, o);
  for (int i = 0; i < std::max(20, iterations / 10); ++i) session.RoundTrip();
  std::vector<double> us(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    session.RoundTrip();
    us[i] =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  }
  double mean = 0;
  for (double v : us) mean += v;
  mean /= iterations;
  std::sort(us.begin(), us.end());
  return {us[iterations / 2], us[iterations * 9 / 10], mean};
}

int Table(int iterations) {
  std::printf(
      "shm handoff: %zu-byte tensor, %d round trips per row (2 handoffs each), touch=%s, "
      "yield=%s\n",
      g_options.bytes, iterations, g_options.touch ? "yes" : "no", g_options.yield ? "yes" : "no");
  std::printf("%-24s %8s | %12s %12s %12s | %14s\n", "method", "spin_us", "median us", "p90 us",
              "mean us", "per handoff us");
  for (int spin : {0, g_options.spin_us}) {
    double shm_median = 0, copy_median = 0;
    for (Method m : {Method::kDescriptor, Method::kShm, Method::kZmqCopy}) {
      Options o = g_options;
      o.spin_us = spin;
      Stats s = Measure(m, o, iterations);
      std::printf("%-24s %8d | %12.1f %12.1f %12.1f | %14.1f\n", MethodName(m), spin, s.median,
                  s.p90, s.mean, s.median / 2);
      if (m == Method::kShm) shm_median = s.median;
      if (m == Method::kZmqCopy) copy_median = s.median;
    }
    std::printf("  -> zmq copy / shm (median round trip), spin %d us: %.1fx\n", spin,
                copy_median / shm_median);
  }
  return 0;
}

}  // namespace
}  // namespace unicorn::shm

int main(int argc, char** argv) {
  unicorn::InitLogging("shm-bench");
  spdlog::set_level(spdlog::level::warn);
  bool table = false;
  int iterations = 2000;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atol(argv[++i]) : 0; };
    if (a == "--table") {
      table = true;
    } else if (a == "--iters") {
      iterations = static_cast<int>(next());
    } else if (a == "--bytes") {
      unicorn::shm::g_options.bytes = static_cast<size_t>(next());
    } else if (a == "--spin-us") {
      unicorn::shm::g_options.spin_us = static_cast<int>(next());
    } else if (a == "--no-yield") {
      unicorn::shm::g_options.yield = false;
    } else if (a == "--touch") {
      unicorn::shm::g_options.touch = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  if (table) return unicorn::shm::Table(std::max(iterations, 10));
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
