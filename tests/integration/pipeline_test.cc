// The real three processes with the NPU-attention / GPU-FFN split: a Generate
// or Chat over gRPC gives exactly Hugging Face's greedy tokens for the demo
// model (tests/data/demo/ref.json, made by tools/refs/demo/), 8 concurrent
// clients each get their own correct stream, and greedy and sampled streams
// share steps.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <future>
#include <nlohmann/json.hpp>

#include "absl/strings/escaping.h"
#include "proto/unicorn/service.grpc.pb.h"
#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::TestSystem;

struct Sample {
  std::string name;
  std::string prompt;                                         // plain prompt, or
  std::vector<std::pair<std::string, std::string>> messages;  // a chat
  std::vector<int> expected;                                  // greedy ids up to the first near-tie
};

// Reference greedy ids, cut before the first step whose top-1/top-2 logit
// margin is under 0.02: there, float summation order may flip the argmax
// between implementations, and both answers are right.
std::vector<Sample> LoadSamples() {
  std::ifstream in(UNICORN_SOURCE_DIR "/tests/data/demo/ref.json");
  auto ref = nlohmann::json::parse(in);
  std::vector<Sample> out;
  for (const auto& s : ref["samples"]) {
    Sample x;
    x.name = s["name"];
    if (s.contains("messages")) {
      for (const auto& m : s["messages"]) x.messages.push_back({m["role"], m["content"]});
    } else {
      x.prompt = s["prompt"];
      if (x.prompt.rfind("<bos>", 0) == 0) continue;  // a raw-id prompt: not a user text
    }
    const auto& ids = s["greedy_ids"];
    const auto& margins = s["margins"];
    for (size_t i = 0; i < ids.size() && double(margins[i]) >= 0.02; ++i) {
      x.expected.push_back(ids[i]);
      if (ids[i] == 106 || ids[i] == 1) break;  // generation stops there
    }
    out.push_back(x);
  }
  return out;
}

// Greedy unless `temperature` > 0 (then seeded with `seed`).
std::vector<int> Complete(unicorn::v1::Unicorn::Stub& stub, const Sample& s, int n,
                          float temperature = 0, uint64_t seed = 0) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  unicorn::v1::GenerateResponse r;
  std::vector<int> ids;
  std::unique_ptr<grpc::ClientReader<unicorn::v1::GenerateResponse>> reader;
  if (s.messages.empty()) {
    unicorn::v1::GenerateRequest req;
    req.set_prompt(s.prompt);
    req.set_max_tokens(n);
    if (temperature > 0) {
      req.mutable_sampling()->set_temperature(temperature);
      req.mutable_sampling()->set_seed(seed);
      req.mutable_sampling()->set_has_seed(true);
    }
    reader = stub.Generate(&ctx, req);
  } else {
    unicorn::v1::ChatRequest req;
    for (const auto& [role, text] : s.messages) {
      auto* m = req.add_messages();
      m->set_role(role);
      m->add_parts()->set_text(text);
    }
    req.set_max_tokens(n);
    reader = stub.Chat(&ctx, req);
  }
  while (reader->Read(&r)) {
    if (r.token_id() >= 0) ids.push_back(r.token_id());
  }
  grpc::Status st = reader->Finish();
  EXPECT_TRUE(st.ok()) << s.name << ": " << st.error_message();
  return ids;
}

// The split plan of configs/default.yaml; `gpu_backend` picks the GPU
// worker's backend: cpu (no GPU needed) or vulkan (lavapipe in CI).
TestSystem* StartSplit(const std::string& tag, const std::string& gpu_backend) {
  auto* sys = new TestSystem(
      tag, UNICORN_SOURCE_DIR "/models/demo",
      "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: " + gpu_backend +
          "}\n"
          "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n",
      "max_sequences: 8");
  auto up = sys->Up();
  EXPECT_EQ(up.code, 0) << up.out;
  return sys;
}

class Pipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { sys_ = StartSplit("p", "cpu"); }
  static void TearDownTestSuite() {
    delete sys_;
    sys_ = nullptr;
  }
  std::unique_ptr<unicorn::v1::Unicorn::Stub> Stub() {
    return unicorn::v1::Unicorn::NewStub(
        grpc::CreateChannel(sys_->address(), grpc::InsecureChannelCredentials()));
  }
  static TestSystem* sys_;
};
TestSystem* Pipeline::sys_ = nullptr;

TEST_F(Pipeline, GreedyEqualsHuggingFace) {
  auto stub = Stub();
  for (const Sample& s : LoadSamples()) {
    ASSERT_GE(s.expected.size(), 3u) << s.name;
    std::vector<int> got = Complete(*stub, s, int(s.expected.size()));
    EXPECT_EQ(got, s.expected) << s.name;
  }
}

TEST_F(Pipeline, EightConcurrentClientsGetTheirOwnStreams) {
  std::vector<Sample> samples = LoadSamples();
  std::vector<std::future<std::vector<int>>> futures;
  for (int i = 0; i < 8; ++i) {
    futures.push_back(std::async(std::launch::async, [&, i] {
      auto stub = Stub();
      const Sample& s = samples[size_t(i) % samples.size()];
      return Complete(*stub, s, int(s.expected.size()));
    }));
  }
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(futures[size_t(i)].get(), samples[size_t(i) % samples.size()].expected) << i;
  }
}

// Steps of greedy rows only take their argmax ids from the GPU worker
// (RunStage.argmax); a step with a sampled row takes every row's logits.
// Greedy and seeded sampled streams running together get what each gets
// alone.
TEST_F(Pipeline, GreedyAndSampledStreamsShareSteps) {
  std::vector<Sample> samples = LoadSamples();
  Sample plain;
  for (const Sample& s : samples) {
    if (s.messages.empty()) plain = s;
  }
  ASSERT_FALSE(plain.prompt.empty());
  auto stub = Stub();
  const std::vector<int> sampled = Complete(*stub, plain, 16, 0.8f, 42);
  ASSERT_EQ(sampled.size(), 16u);
  std::vector<std::future<std::vector<int>>> futures;
  for (int i = 0; i < 6; ++i) {
    futures.push_back(std::async(std::launch::async, [&, i] {
      auto own = Stub();
      const Sample& s = i % 2 == 0 ? samples[size_t(i / 2) % samples.size()] : plain;
      return i % 2 == 0 ? Complete(*own, s, int(s.expected.size()))
                        : Complete(*own, plain, 16, 0.8f, 42);
    }));
  }
  for (int i = 0; i < 6; ++i) {
    const std::vector<int> want =
        i % 2 == 0 ? samples[size_t(i / 2) % samples.size()].expected : sampled;
    EXPECT_EQ(futures[size_t(i)].get(), want) << (i % 2 == 0 ? "greedy " : "sampled ") << i;
  }
}

TEST_F(Pipeline, BadRequestsGetClearErrorsAndTheSystemServesOn) {
  auto stub = Stub();
  grpc::ClientContext ctx;
  unicorn::v1::GenerateRequest req;
  req.set_prompt("hello");
  req.mutable_sampling()->set_top_p(3);
  auto reader = stub->Generate(&ctx, req);
  unicorn::v1::GenerateResponse r;
  while (reader->Read(&r)) {
  }
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("top_p"), std::string::npos) << st.error_message();
  // Still serving afterwards.
  const Sample s = LoadSamples()[0];
  EXPECT_EQ(Complete(*stub, s, int(s.expected.size())), s.expected);
}

// The demo model is text only: an image gets INVALID_ARGUMENT naming the
// missing vision tower, through Generate and Chat alike.
TEST_F(Pipeline, ImageToATextOnlyModelIsInvalidArgument) {
  auto stub = Stub();
  // A 4x4 red PNG.
  std::string png;
  ASSERT_TRUE(absl::Base64Unescape(
      "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/"
      "x0F8jngAAAABJRU5ErkJggg==",
      &png));
  for (bool chat : {false, true}) {
    grpc::ClientContext ctx;
    std::unique_ptr<grpc::ClientReader<unicorn::v1::GenerateResponse>> reader;
    if (chat) {
      unicorn::v1::ChatRequest req;
      auto* m = req.add_messages();
      m->set_role("user");
      m->add_parts()->set_image(png);
      m->add_parts()->set_text("What colour is this?");
      reader = stub->Chat(&ctx, req);
    } else {
      unicorn::v1::GenerateRequest req;
      req.set_prompt("What colour is this?");
      req.add_images(png);
      reader = stub->Generate(&ctx, req);
    }
    unicorn::v1::GenerateResponse r;
    while (reader->Read(&r)) {
    }
    grpc::Status st = reader->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << chat;
    EXPECT_NE(st.error_message().find("model demo has no vision tower"), std::string::npos)
        << st.error_message();
  }
}

std::string ShellQuote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The baseline: the three processes give exactly the tokens of
// `unicorn run --config` in one process on the same model and backend.
TEST_F(Pipeline, GenerateEqualsUnicornRunInOneProcess) {
  const std::string out = (sys_->dir() / "run.txt").string();
  for (const Sample& s : LoadSamples()) {
    if (!s.messages.empty()) continue;
    const std::string args = " -p " + ShellQuote(s.prompt) + " -n 32 > " + out;
    auto run = sys_->Cli("run --config " + sys_->config() + args);
    ASSERT_EQ(run.code, 0) << run.out;
    std::ifstream a(out);
    std::string one_process((std::istreambuf_iterator<char>(a)), {});
    one_process = one_process.substr(0, one_process.find("[run] "));  // its stderr report
    auto gen = sys_->Cli("generate --server " + sys_->address() + args);
    ASSERT_EQ(gen.code, 0) << gen.out;
    std::ifstream b(out);
    const std::string pipeline((std::istreambuf_iterator<char>(b)), {});
    EXPECT_FALSE(pipeline.empty()) << s.name;
    EXPECT_EQ(pipeline, one_process) << s.name;
  }
}

TEST(PipelineVulkan, GreedyEqualsHuggingFaceWithTheGpuWorkerOnVulkan) {
  // Info level, so the GPU worker's log says whether it imported the arena.
  ::setenv("UNICORN_LOG_LEVEL", "info", 1);
  std::unique_ptr<TestSystem> sys(StartSplit("v", "vulkan"));
  ::setenv("UNICORN_LOG_LEVEL", "warn", 1);
  auto stub = unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(sys->address(), grpc::InsecureChannelCredentials()));
  for (const Sample& s : LoadSamples()) {
    EXPECT_EQ(Complete(*stub, s, int(s.expected.size())), s.expected) << s.name;
  }
  // The stages above ran on the imported arena (zero-copy), not the fallback.
  std::ifstream in(sys->dir() / "run" / "logs" / "gpu.log");
  std::string log((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(log.find("[vk] arena imported"), std::string::npos) << log;
  EXPECT_EQ(log.find("arena import unavailable"), std::string::npos) << log;
}

}  // namespace

namespace {

// control.endpoint: tcp:// instead of the default ipc:// socket.
TEST(PipelineTcp, ControlOverTcpServesTheSameTokens) {
  const int port = unicorn::testing::FreePort();
  const std::string endpoint = "tcp://127.0.0.1:" + std::to_string(port);
  TestSystem sys(
      "t", UNICORN_SOURCE_DIR "/models/demo",
      "control: {endpoint: '" + endpoint +
          "'}\n"
          "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
          "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n");
  auto up = sys.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  auto stub = unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials()));
  const Sample s = LoadSamples()[0];
  EXPECT_EQ(Complete(*stub, s, int(s.expected.size())), s.expected);
  // The coordinator's ROUTER listens on that TCP port, and no ipc socket exists.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0) << endpoint;
  close(fd);
  EXPECT_FALSE(std::filesystem::exists(sys.dir() / "run" / "control.sock"));
}

}  // namespace
