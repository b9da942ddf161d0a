// Hostile control traffic against a real worker process: the test plays the
// coordinator (a raw ZeroMQ ROUTER on the control endpoint, plus the shared
// arena and its fd socket) and sends a GPU worker (CPU backend) malformed
// frames, a wrong protocol version, an unknown command, a garbage payload and
// bad shared-memory descriptors (unknown region, offset out of range, wrong
// generation, unknown output region). Each gets an error reply; afterwards the
// same worker still answers heartbeats and runs a valid stage.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/shm_ref.h"
#include "common/wire.h"
#include "proto/unicorn/worker.pb.h"
#include "shared_mem/arena.h"
#include "shared_mem/fd_passing.h"
#include "shared_mem/plan.h"
#include "zmq.hpp"

namespace {

namespace fs = std::filesystem;
using unicorn::wire::Command;

class WorkerFrames : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("ucf" + std::to_string(getpid()));
    fs::create_directories(dir_ / "run");
    fs::permissions(dir_ / "run", fs::perms::owner_all, fs::perm_options::replace);
    config_ = (dir_ / "test.yaml").string();
    std::ofstream(config_) << "model: " UNICORN_SOURCE_DIR "/models/demo\n"
                           << "runtime_dir: " << (dir_ / "run").string() << "\n"
                           << "control: {heartbeat_interval_ms: 200, heartbeat_liveness: 50}\n"
                              "workers:\n  gpu: {kind: gpu, backend: cpu, threads: 1}\n"
                              "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: gpu, "
                              "ffn: gpu}]}\n";
    unicorn::shm::ModelLimits limits;
    limits.hidden = 192;
    limits.vocab = 1024;
    limits.max_batch_tokens = 16;
    limits.max_sequences = 2;
    auto plan = unicorn::shm::ArenaPlan::ForModel(limits);
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto arena = unicorn::shm::Arena::Create(*plan);
    ASSERT_TRUE(arena.ok()) << arena.status();
    arena_ = std::move(*arena);
    shm_socket_ = (dir_ / "run" / "shm.sock").string();
    auto server = unicorn::shm::FdServer::Start(*arena_, shm_socket_);
    ASSERT_TRUE(server.ok()) << server.status();
    fd_server_ = std::move(*server);

    router_ = std::make_unique<zmq::socket_t>(ctx_, zmq::socket_type::router);
    router_->set(zmq::sockopt::linger, 0);
    router_->bind("ipc://" + (dir_ / "run" / "control.sock").string());

    std::string exe = UNICORN_BINARY_DIR "/bin/unicorn-gpu-worker";
    pid_ = fork();
    if (pid_ == 0) {
      execl(exe.c_str(), exe.c_str(), "--config", config_.c_str(), "--name", "gpu", nullptr);
      _exit(127);
    }
    auto hello = Expect(Command::kHello, 20000);
    ASSERT_TRUE(hello.has_value());
    identity_ = hello->identity;
    unicorn::wire::HelloAck ack;
    Send(Command::kHelloAck, ack.SerializeAsString());

    unicorn::wire::LoadShard load;
    load.set_shard_id(7);
    load.set_model_path(UNICORN_SOURCE_DIR "/models/demo");
    load.set_embedding(true);
    load.set_max_sequences(2);
    load.set_max_context(64);
    load.set_max_step_tokens(16);
    load.set_shm_socket(shm_socket_);
    Send(Command::kLoadShard, load.SerializeAsString());
    auto ready = Expect(Command::kShardReady, 20000);
    ASSERT_TRUE(ready.has_value());
    unicorn::wire::ShardReady r;
    ASSERT_TRUE(r.ParseFromString(ready->payload));
    ASSERT_EQ(r.error(), "");
  }
  void TearDown() override {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    router_.reset();
    fd_server_.reset();
    fs::remove_all(dir_);
  }

  // Raw frames after the routing id: exactly what a hostile peer can send.
  void SendRaw(const std::vector<std::string>& frames) {
    router_->send(zmq::buffer(identity_), zmq::send_flags::sndmore);
    for (size_t i = 0; i < frames.size(); ++i) {
      router_->send(zmq::buffer(frames[i]),
                    i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
  }
  void Send(Command c, const std::string& payload,
            uint8_t version = unicorn::wire::kProtocolVersion) {
    std::string tag(unicorn::wire::kProtocolTag);
    tag.push_back(char(version));
    SendRaw({tag, std::string(1, char(c)), payload});
  }
  // The next message of command `c` (heartbeats in between are skipped).
  std::optional<unicorn::wire::Message> Expect(Command c, int timeout_ms = 5000) {
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (std::chrono::steady_clock::now() < end) {
      zmq::pollitem_t item{router_->handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(50));
      if (!(item.revents & ZMQ_POLLIN)) continue;
      auto m = unicorn::wire::TryReceive(*router_, true);
      if (!m.ok() || !m->has_value()) continue;
      if ((*m)->command == c) return **m;
    }
    ADD_FAILURE() << "no " << unicorn::wire::CommandName(c) << " within " << timeout_ms << " ms";
    return std::nullopt;
  }
  unicorn::wire::Error ExpectError() {
    unicorn::wire::Error e;
    auto m = Expect(Command::kError);
    if (m) {
      EXPECT_TRUE(e.ParseFromString(m->payload));
    }
    return e;
  }
  unicorn::wire::StageDone RunStage(const unicorn::wire::RunStage& req) {
    Send(Command::kRunStage, req.SerializeAsString());
    unicorn::wire::StageDone d;
    auto m = Expect(Command::kStageDone);
    if (m) {
      EXPECT_TRUE(d.ParseFromString(m->payload));
    }
    return d;
  }
  // An embedding-only stage of 2 tokens into act slot 0.
  unicorn::wire::RunStage ValidStage(uint64_t step) {
    unicorn::wire::RunStage req;
    req.set_step_id(step);
    req.set_shard_id(7);
    req.set_embedding(true);
    auto* s = req.add_seqs();
    s->set_seq_id(1);
    s->set_n_tokens(2);
    req.add_token_ids(2);
    req.add_token_ids(10);
    req.set_output_region(arena_->region("act")->id());
    req.set_output_slot(0);
    return req;
  }
  void ExpectStillServing(uint64_t step) {
    unicorn::wire::Heartbeat hb;
    hb.set_seq(99);
    Send(Command::kHeartbeat, hb.SerializeAsString());
    EXPECT_TRUE(Expect(Command::kHeartbeatAck).has_value());
    auto done = RunStage(ValidStage(step));
    EXPECT_EQ(done.error(), "");
    EXPECT_EQ(done.step_id(), step);
    EXPECT_GT(done.output().size(), 0u);
    EXPECT_EQ(waitpid(pid_, nullptr, WNOHANG), 0) << "the worker died";
  }

  fs::path dir_;
  std::string config_, shm_socket_, identity_;
  std::unique_ptr<unicorn::shm::Arena> arena_;
  std::unique_ptr<unicorn::shm::FdServer> fd_server_;
  zmq::context_t ctx_{1};
  std::unique_ptr<zmq::socket_t> router_;
  pid_t pid_ = -1;
};

TEST_F(WorkerFrames, MalformedFramesGetErrorsAndTheWorkerServesOn) {
  ExpectStillServing(1);
  SendRaw({"garbage"});
  EXPECT_NE(ExpectError().message().find("expected 3 frames"), std::string::npos);
  SendRaw({"NOTUNIC\x01", std::string(1, char(Command::kHeartbeat)), ""});
  EXPECT_NE(ExpectError().message().find("bad protocol tag"), std::string::npos);
  SendRaw({"a", "b", "c", "d", "e"});
  EXPECT_NE(ExpectError().message().find("frames"), std::string::npos);
  Send(Command::kHeartbeat, "", 2);
  auto e = ExpectError();
  EXPECT_EQ(e.code(), int(absl::StatusCode::kFailedPrecondition));
  EXPECT_NE(e.message().find("protocol version 2 not supported"), std::string::npos) << e.message();
  Send(Command(99), "");
  EXPECT_NE(ExpectError().message().find("unknown command 99"), std::string::npos);
  SendRaw({std::string(unicorn::wire::kProtocolTag) + char(1), "xx", ""});
  EXPECT_NE(ExpectError().message().find("command frame"), std::string::npos);
  Send(Command::kRunStage, std::string("\xff\xff\xff\xff", 4));
  auto done = Expect(Command::kStageDone);
  ASSERT_TRUE(done.has_value());
  unicorn::wire::StageDone d;
  ASSERT_TRUE(d.ParseFromString(done->payload));
  EXPECT_NE(d.error().find("malformed RunStage"), std::string::npos) << d.error();
  ExpectStillServing(2);
}

TEST_F(WorkerFrames, BadShmDescriptorsGetErrorsAndTheWorkerServesOn) {
  // A real output of the embedding stage: the template for bad inputs.
  auto ok = RunStage(ValidStage(1));
  ASSERT_EQ(ok.error(), "");
  // The next stage reads it (parts [1, 2) = layer 0's FFN is not in this
  // shard, but the descriptor is checked first; an empty stage of the same
  // shard reads the input and copies it through).
  auto with_input = [&](unicorn::wire::ShmRef ref) {
    unicorn::wire::RunStage req = ValidStage(5);
    req.set_embedding(false);
    *req.mutable_hidden() = ref;
    req.set_output_slot(1);
    return RunStage(req);
  };
  struct Case {
    const char* what;
    std::function<void(unicorn::wire::ShmRef*)> mutate;
  };
  const uint32_t act = arena_->region("act")->id();
  std::vector<Case> cases = {
      {"unknown region", [](unicorn::wire::ShmRef* r) { r->set_region(999); }},
      {"offset out of range", [](unicorn::wire::ShmRef* r) { r->set_offset(uint64_t(1) << 40); }},
      {"size out of range", [](unicorn::wire::ShmRef* r) { r->set_size(uint64_t(1) << 40); }},
      {"wrong generation",
       [](unicorn::wire::ShmRef* r) { r->set_generation(r->generation() + 1); }},
      {"stale sequence", [](unicorn::wire::ShmRef* r) { r->set_sequence(r->sequence() + 100); }},
  };
  for (const auto& c : cases) {
    unicorn::wire::ShmRef ref = ok.output();
    ASSERT_EQ(ref.region(), act);
    c.mutate(&ref);
    auto d = with_input(ref);
    EXPECT_NE(d.error(), "") << c.what << ": accepted";
    EXPECT_FALSE(d.has_output()) << c.what;
  }
  unicorn::wire::RunStage bad_out = ValidStage(6);
  bad_out.set_output_region(999);
  EXPECT_NE(RunStage(bad_out).error().find("unknown"), std::string::npos);
  bad_out = ValidStage(7);
  bad_out.set_output_slot(1u << 30);
  EXPECT_NE(RunStage(bad_out).error().find("does not exist"), std::string::npos);
  ExpectStillServing(8);
}

}  // namespace
