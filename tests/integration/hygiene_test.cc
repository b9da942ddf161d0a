// Limits and hygiene of the coordinator: loopback by default, gRPC over TLS
// by config (a self-signed certificate made by openssl here), a clear
// RESOURCE_EXHAUSTED when the request queue is full, and a clear error for a
// model path that does not exist.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "common/config.h"
#include "proto/unicorn/service.grpc.pb.h"
#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::Shell;
using unicorn::testing::TestSystem;

constexpr char kDemo[] = UNICORN_SOURCE_DIR "/models/demo";
const std::string kCoordinator = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn-coordinator";

TEST(Hygiene, CoordinatorBindsLoopbackByDefault) {
  auto c = unicorn::ParseConfig(
      "model: m\nworkers: {gpu: {kind: gpu}}\n"
      "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: gpu, "
      "ffn: gpu}]}\n",
      "/x/test.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->coordinator.grpc_address.rfind("127.0.0.1:", 0), 0u) << c->coordinator.grpc_address;
  EXPECT_EQ(c->ControlEndpoint().rfind("ipc://", 0), 0u);  // no TCP for the workers
  EXPECT_TRUE(c->coordinator.tls_cert.empty());
  auto half = unicorn::ParseConfig(
      "model: m\ncoordinator: {tls: {cert: a.pem}}\n"
      "workers: {gpu: {kind: gpu}}\n",
      "/x/test.yaml");
  ASSERT_FALSE(half.ok());
  EXPECT_NE(half.status().message().find("coordinator.tls"), std::string::npos);
}

TEST(Hygiene, GrpcOverTlsWithASelfSignedCertificate) {
  // The key and certificate exist before the config names them.
  std::string dir =
      (std::filesystem::temp_directory_path() / ("uctls" + std::to_string(getpid()))).string();
  std::filesystem::create_directories(dir);
  std::string cert = dir + "/server.pem", key = dir + "/server.key";
  auto gen =
      Shell("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout " + key +
            " -out " + cert);
  ASSERT_EQ(gen.code, 0) << gen.out;
  TestSystem sys("t", kDemo,
                 "workers: {gpu: {kind: gpu, backend: cpu}}\n"
                 "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: gpu, ffn: gpu}]}\n",
                 "tls: {cert: " + cert + ", key: " + key + "}");
  std::string tls_config = sys.config();
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open((sys.dir() / "coord.log").c_str(), O_WRONLY | O_CREAT, 0600);
    dup2(fd, 1);
    dup2(fd, 2);
    execl(kCoordinator.c_str(), kCoordinator.c_str(), "--config", tls_config.c_str(), nullptr);
    _exit(127);
  }
  std::string pem = Shell("cat " + cert).out;
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  grpc::Status st;
  unicorn::v1::ModelInfoResponse info;
  for (int i = 0; i < 100; ++i) {  // until it listens (a fresh channel: no reconnect backoff)
    auto tls = unicorn::v1::Unicorn::NewStub(
        grpc::CreateCustomChannel(sys.address(), grpc::SslCredentials(ssl), args));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
    st = tls->ModelInfo(&ctx, unicorn::v1::ModelInfoRequest(), &info);
    if (st.ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(st.ok()) << st.error_message() << "\n"
                       << Shell("cat " + (sys.dir() / "coord.log").string()).out;
  EXPECT_EQ(info.num_layers(), 6);
  EXPECT_FALSE(info.serving());  // no workers were started
  // Plaintext to a TLS port gets nowhere.
  auto plain = unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_FALSE(plain->ModelInfo(&ctx, unicorn::v1::ModelInfoRequest(), &info).ok());
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove_all(dir);
}

TEST(Hygiene, FullQueueGivesResourceExhausted) {
  TestSystem sys("q", kDemo,
                 "workers: {gpu: {kind: gpu, backend: cpu, threads: 1}}\n"
                 "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: gpu, ffn: gpu}]}\n",
                 "max_sequences: 1, max_queue: 1");
  auto up = sys.Up();
  ASSERT_EQ(up.code, 0) << up.out;
  auto stub = unicorn::v1::Unicorn::NewStub(
      grpc::CreateChannel(sys.address(), grpc::InsecureChannelCredentials()));
  // The first two generations are long enough to outlast the check at any
  // decode speed, and are cancelled once it is done.
  auto stream = [&](grpc::ClientContext* ctx, std::atomic<int>* tokens, int max_tokens) {
    unicorn::v1::GenerateRequest req;
    req.set_prompt("Once upon a time");
    req.set_max_tokens(max_tokens);
    auto reader = stub->Generate(ctx, req);
    unicorn::v1::GenerateResponse r;
    while (reader->Read(&r)) tokens->fetch_add(1);
    return reader->Finish();
  };
  std::atomic<int> a{0}, b{0}, c{0};
  grpc::ClientContext ctx_a, ctx_b, ctx_c;
  auto fa = std::async(std::launch::async, stream, &ctx_a, &a, 4000);
  while (a.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // running
  auto fb = std::async(std::launch::async, stream, &ctx_b, &b, 4000);               // waiting
  for (int i = 0; i < 500; ++i) {
    grpc::ClientContext ctx;
    unicorn::v1::StatsResponse s;
    stub->Stats(&ctx, unicorn::v1::StatsRequest(), &s);
    if (s.requests_waiting() == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  grpc::Status third = stream(&ctx_c, &c, 400);
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << third.error_message();
  EXPECT_NE(third.error_message().find("queue full"), std::string::npos) << third.error_message();
  EXPECT_EQ(c.load(), 0);
  ctx_a.TryCancel();
  ctx_b.TryCancel();
  for (auto* f : {&fa, &fb}) {
    grpc::Status st = f->get();
    EXPECT_TRUE(st.ok() || st.error_code() == grpc::StatusCode::CANCELLED) << st.error_message();
  }
}

TEST(Hygiene, MissingModelPathIsAClearError) {
  TestSystem sys("m", "/nonexistent/unicorn-model",
                 "workers: {gpu: {kind: gpu, backend: cpu}}\n"
                 "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: gpu, ffn: gpu}]}\n");
  auto r = Shell(kCoordinator + " --config " + sys.config());
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("/nonexistent/unicorn-model"), std::string::npos) << r.out;
  auto w = Shell(std::string(UNICORN_BINARY_DIR) + "/bin/unicorn inspect /nonexistent/x.gguf");
  EXPECT_NE(w.code, 0);
  EXPECT_NE(w.out.find("/nonexistent/x.gguf"), std::string::npos) << w.out;
}

}  // namespace
