#include "common/config.h"

#include <gtest/gtest.h>

#include <thread>

#include "common/cores.h"

namespace unicorn {
namespace {

constexpr char kMinimal[] = R"(
model: m.gguf
workers:
  npu: {kind: npu}
  gpu: {kind: gpu}
plan:
  embedding: gpu
  lm_head: gpu
  layers:
    - {layers: all, attention: npu, ffn: gpu}
    - {layers: 2-3, attention: gpu, ffn: gpu}
)";

TEST(Config, DefaultConfigLoads) {
  auto c = LoadConfig(std::string(UNICORN_SOURCE_DIR) + "/configs/default.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->coordinator.grpc_address.rfind("127.0.0.1:", 0), 0u) << "loopback by default";
  EXPECT_NE(c->FindWorker("npu"), nullptr);
  EXPECT_NE(c->FindWorker("gpu"), nullptr);
}

TEST(Config, MinimalWithDefaultsAndRanges) {
  auto c = ParseConfig(kMinimal, "/etc/unicorn/x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->model, "/etc/unicorn/m.gguf");  // relative to the file
  EXPECT_EQ(c->FindWorker("npu")->backend, "cpu");
  EXPECT_EQ(c->FindWorker("gpu")->backend, "vulkan");
  ASSERT_EQ(c->plan.layers.size(), 2u);
  EXPECT_EQ(c->plan.layers[0].last_layer, -1);
  EXPECT_EQ(c->plan.layers[1].first_layer, 2);
  EXPECT_EQ(c->plan.layers[1].last_layer, 3);
  EXPECT_EQ(c->control.heartbeat_liveness, 3);
  EXPECT_EQ(c->ControlEndpoint(), "ipc://" + c->runtime_dir + "/control.sock");
}

// busy_poll_us: unset is auto (200 us with cores to spare, else 0), an
// explicit value is kept, out-of-range values are refused by name.
TEST(Config, BusyPollIsAutoUnlessSet) {
  auto c = ParseConfig(kMinimal, "/etc/unicorn/x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->control.busy_poll_us, -1);
  EXPECT_EQ(BusyPollUs(c->control), HasCoresToSpin() ? 200 : 0);
  EXPECT_EQ(HasCoresToSpin(), std::thread::hardware_concurrency() >= 8);
  for (int us : {0, 50, 200}) {
    auto set = ParseConfig(
        std::string(kMinimal) + "control: {busy_poll_us: " + std::to_string(us) + "}\n", "x.yaml");
    ASSERT_TRUE(set.ok()) << set.status();
    EXPECT_EQ(BusyPollUs(set->control), us);
  }
  auto bad = ParseConfig(std::string(kMinimal) + "control: {busy_poll_us: -5}\n", "x.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("control.busy_poll_us"), std::string::npos) << bad.status();
}

TEST(Config, TcpControlEndpointByConfig) {
  auto c = ParseConfig(std::string(kMinimal) + "control: {endpoint: 'tcp://127.0.0.1:5599'}\n",
                       "/etc/unicorn/x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->ControlEndpoint(), "tcp://127.0.0.1:5599");
  auto bad = ParseConfig(std::string(kMinimal) + "control: {endpoint: 'udp://x'}\n", "x.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("control.endpoint"), std::string::npos) << bad.status();
}

struct BadCase {
  const char* yaml;
  const char* expected;  // substring of the error
};

TEST(Config, BadInputNamesKeyAndProblem) {
  const BadCase cases[] = {
      {"model: [", "invalid YAML"},
      {"workers: {}\nplan: {}", "model: missing"},
      {"model: m\nplan: {}", "workers: missing"},
      {"model: m\nworkers: {a: {kind: tpu}}\nplan: {}", "workers.a.kind: 'tpu'"},
      {"model: m\nworkers: {a: {kind: npu, backend: cuda}}\nplan: {}",
       "workers.a.backend: 'cuda': expected cpu or xrt"},
      {"model: m\nworkers: {a: {kind: npu}}\nplan: {embedding: a, lm_head: b, layers: "
       "[{attention: a, ffn: a}]}",
       "plan.lm_head: unknown worker 'b'"},
      {"model: m\nworkers: {a: {kind: npu}}\nplan: {embedding: a, lm_head: a, layers: "
       "[{layers: 5-2, attention: a, ffn: a}]}",
       "plan.layers[0].layers: empty or negative range"},
      {"model: m\ncoordinator: {http_port: abc}\nworkers: {a: {kind: npu}}\nplan: {}",
       "coordinator.http_port: expected an integer"},
      {"model: m\nbogus: 1\nworkers: {a: {kind: npu}}\nplan: {}", "bogus: unknown key"},
  };
  for (const auto& c : cases) {
    auto r = ParseConfig(c.yaml, "t.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(r.status().message()).find(c.expected), std::string::npos)
        << "got: " << r.status().message() << "\nwant: " << c.expected;
    EXPECT_NE(std::string(r.status().message()).find("t.yaml"), std::string::npos);
  }
}

TEST(Config, NpuKernelsParseWithPathsRelativeToTheFile) {
  auto c = ParseConfig(R"(
model: m.gguf
workers:
  npu:
    kind: npu
    backend: xrt
    kernels:
      - {name: q, xclbin: k/q.xclbin, insts: k/q.insts.bin, dtype: int8, m: 256, k: 1152, n: 1024}
      - {xclbin: /abs/o.xclbin, insts: /abs/o.txt, m: 64, k: 1024, n: 1152}
plan: {embedding: npu, lm_head: npu, layers: [{attention: npu, ffn: npu}]}
)",
                       "/etc/unicorn/x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const auto& ks = c->FindWorker("npu")->kernels;
  ASSERT_EQ(ks.size(), 2u);
  EXPECT_EQ(ks[0].name, "q");
  EXPECT_EQ(ks[0].xclbin, "/etc/unicorn/k/q.xclbin");
  EXPECT_EQ(ks[0].insts, "/etc/unicorn/k/q.insts.bin");
  EXPECT_EQ(ks[0].kernel, "MLIR_AIE");
  EXPECT_EQ(ks[0].dtype, "int8");
  EXPECT_EQ(ks[0].m, 256);
  EXPECT_EQ(ks[1].name, "gemm_64x1024x1152_bf16");
  EXPECT_EQ(ks[1].dtype, "bf16");

  for (const auto& [yaml, want] : std::vector<std::pair<std::string, std::string>>{
           {"[{xclbin: a, m: 1, k: 1, n: 1}]", "kernels[0]: needs xclbin and insts"},
           {"[{xclbin: a, insts: b, dtype: fp8, m: 1, k: 1, n: 1}]",
            "'fp8': expected bf16 or int8"},
           {"[{xclbin: a, insts: b, m: 0, k: 1, n: 1}]", "m, k and n must be positive"},
           {"[{xclbin: a, insts: b, m: 1, k: 1, n: 1, bogus: 1}]", "bogus"},
           {"{a: 1}", "expected a list of kernels"}}) {
    auto r = ParseConfig(
        "model: m\nworkers:\n  npu: {kind: npu, kernels: " + yaml +
            "}\nplan: {embedding: npu, lm_head: npu, layers: [{attention: npu, ffn: npu}]}\n",
        "t.yaml");
    ASSERT_FALSE(r.ok()) << yaml;
    EXPECT_NE(r.status().message().find(want), std::string::npos) << r.status();
  }
}

TEST(Config, ProfileSampling) {
  auto c = ParseConfig(
      std::string(kMinimal) + "profile: {sample_every_n_steps: 8, requests: 0.25}\n", "t.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->profile.sample_every_n_steps, 8);
  EXPECT_DOUBLE_EQ(c->profile.requests, 0.25);
  EXPECT_EQ(ParseConfig(kMinimal, "t.yaml")->profile.sample_every_n_steps, 0);  // off by default
  auto bad = ParseConfig(std::string(kMinimal) + "profile: {requests: 2}\n", "t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("profile.requests"), std::string::npos) << bad.status();
  auto typo = ParseConfig(std::string(kMinimal) + "profile: {every: 2}\n", "t.yaml");
  EXPECT_NE(typo.status().message().find("profile.every: unknown key"), std::string::npos)
      << typo.status();
}

TEST(Config, StandbyForAndFailoverAfter) {
  auto with = [](const std::string& standby, const std::string& control = "") {
    std::string text = R"(
model: m.gguf
workers:
  npu: {kind: npu}
  gpu: {kind: gpu}
)" + standby + "\nplan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n" +
                       control;
    return ParseConfig(text, "x.yaml");
  };
  auto ok = with("  spare: {kind: gpu, backend: cpu, standby_for: gpu}",
                 "control: {failover_after_ms: 500}\n");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->FindWorker("spare")->standby_for, "gpu");
  EXPECT_EQ(ok->FindWorker("gpu")->standby_for, "");
  EXPECT_EQ(ok->control.failover_after_ms, 500);
  EXPECT_EQ(with("")->control.failover_after_ms, 10000);
  EXPECT_EQ(with("")->control.busy_heartbeat_max_ms, 120000);
  EXPECT_EQ(with("", "control: {busy_heartbeat_max_ms: 5000}\n")->control.busy_heartbeat_max_ms,
            5000);
  struct Bad {
    std::string standby, control, expect;
  };
  for (const Bad& b : std::vector<Bad>{
           {"  spare: {kind: gpu, standby_for: nope}", "", "unknown worker 'nope'"},
           {"  spare: {kind: gpu, standby_for: npu}\n  spare2: {kind: npu, standby_for: npu}", "",
            "'npu' already has a standby"},
           {"  spare: {kind: gpu, standby_for: spare2}\n  spare2: {kind: gpu}", "",
            "'spare2' runs nothing in the plan"},
           {"  spare: {kind: gpu}", "control: {failover_after_ms: 60000}\n",
            "control.failover_after_ms"},
           {"", "control: {busy_heartbeat_max_ms: -1}\n", "control.busy_heartbeat_max_ms"},
       }) {
    auto c = with(b.standby, b.control);
    ASSERT_FALSE(c.ok()) << b.standby;
    EXPECT_NE(c.status().message().find(b.expect), std::string::npos) << c.status();
  }
  // The plan may not name a standby.
  auto in_plan = ParseConfig(R"(
model: m.gguf
workers:
  npu: {kind: npu, standby_for: gpu}
  gpu: {kind: gpu}
plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}
)",
                             "x.yaml");
  ASSERT_FALSE(in_plan.ok());
  EXPECT_NE(in_plan.status().message().find("must not be named by the plan"), std::string::npos)
      << in_plan.status();
}

TEST(Config, TlsCaIsResolvedAgainstTheFile) {
  auto c = ParseConfig(
      std::string(kMinimal) + "coordinator: {tls: {cert: s.pem, key: s.key, ca: ca.pem}}\n",
      "/etc/unicorn/x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->coordinator.tls_ca, "/etc/unicorn/ca.pem");
  EXPECT_EQ(c->coordinator.tls_cert, "/etc/unicorn/s.pem");
}

TEST(Config, MissingFile) {
  auto r = LoadConfig("/nonexistent/x.yaml");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(std::string(r.status().message()).find("/nonexistent/x.yaml"), std::string::npos);
}

}  // namespace
}  // namespace unicorn

namespace unicorn {
namespace {

TEST(Config, ShippedConfigsLoad) {
  for (const char* name : {"default", "gpu-only", "gemma3-4b", "gemma3-27b"}) {
    auto c = LoadConfig(std::string(UNICORN_SOURCE_DIR) + "/configs/" + name + ".yaml");
    EXPECT_TRUE(c.ok()) << name << ": " << c.status();
  }
}

}  // namespace
}  // namespace unicorn
