// Tracing and metrics through the real three processes with the NPU-attention
// / GPU-FFN split of configs/default.yaml (the GPU worker on its CPU backend,
// so no GPU is needed): one request's trace holds a span for every layer on
// the worker the plan gives it, the hops between them, and its per-stage
// spans account for >= 95% of the token time; /metrics parses with
// prometheus_client's parser and carries the documented metric names.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "proto/unicorn/service.grpc.pb.h"
#include "tests/integration/test_system.h"

namespace {

using nlohmann::json;
using unicorn::testing::FreePort;
using unicorn::testing::TestSystem;

class Profile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    metrics_port_ = FreePort();
    sys_ = new TestSystem("prof", UNICORN_SOURCE_DIR "/models/demo",
                          "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
                          "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: "
                          "gpu}]}\n"
                          "profile: {sample_every_n_steps: 0, requests: 1.0}\n",
                          "metrics_port: " + std::to_string(metrics_port_));
    auto up = sys_->Up();
    ASSERT_EQ(up.code, 0) << up.out;
  }
  static void TearDownTestSuite() {
    delete sys_;
    sys_ = nullptr;
  }
  std::unique_ptr<unicorn::v1::Unicorn::Stub> Stub() {
    return unicorn::v1::Unicorn::NewStub(
        grpc::CreateChannel(sys_->address(), grpc::InsecureChannelCredentials()));
  }
  // Generates `n` tokens; returns the request id the responses carry.
  std::string Generate(int n) {
    auto stub = Stub();
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
    unicorn::v1::GenerateRequest req;
    req.set_prompt("The quick brown fox");
    req.set_max_tokens(n);
    auto reader = stub->Generate(&ctx, req);
    unicorn::v1::GenerateResponse r;
    std::string id;
    int tokens = 0;
    while (reader->Read(&r)) {
      id = r.request_id();
      tokens += r.token_id() >= 0 ? 1 : 0;
    }
    EXPECT_TRUE(reader->Finish().ok());
    EXPECT_GE(tokens, 3);
    return id;
  }
  static TestSystem* sys_;
  static int metrics_port_;
};
TestSystem* Profile::sys_ = nullptr;
int Profile::metrics_port_ = 0;

TEST_F(Profile, TraceHasEveryLayerOnItsWorkerTheHopsAndCoversTheTokenTime) {
  const std::string id = Generate(12);
  ASSERT_FALSE(id.empty());
  auto stub = Stub();
  unicorn::v1::ModelInfoResponse info;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ModelInfo(&ctx, {}, &info).ok());
  }
  unicorn::v1::ProfileResponse prof;
  {
    grpc::ClientContext ctx;
    unicorn::v1::ProfileRequest req;
    req.set_request_id(id);
    grpc::Status st = stub->Profile(&ctx, req, &prof);
    ASSERT_TRUE(st.ok()) << st.error_message();
  }
  json doc = json::parse(prof.trace_json());
  std::map<int, std::string> process;  // pid -> name
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "M" && e["name"] == "process_name")
      process[e["pid"].get<int>()] = e["args"]["name"];
  }
  // Spans by step.
  struct Step {
    double start = 0, end = 0, covered = 0;
    std::set<std::string> layers;  // "attention L3@npu"
    std::set<std::string> ops;     // "matmul ffn_down L3@gpu"
    std::set<std::string> hop_workers;
    int hops = 0;
  };
  std::map<int64_t, Step> steps;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] != "X") continue;
    const std::string name = e["name"], cat = e["cat"], proc = process[e["pid"].get<int>()];
    const int64_t step = e["args"]["step"];
    const double ts = e["ts"], dur = e["dur"];
    if (step == 0) continue;  // queue, tokenize
    Step& s = steps[step];
    if (name == "step") {
      s.start = ts;
      s.end = ts + dur;
    } else if (proc == "coordinator" && cat == "step") {  // schedule, hops, logits read
      s.covered += dur;
      if (name.rfind("hop ", 0) == 0) {
        ++s.hops;
        s.hop_workers.insert(name.substr(name.rfind('@') + 1));
      }
    } else if (proc == "coordinator" && name == "stream") {  // sample lies inside logits read
      s.covered += dur;
    } else if (cat == "layer") {
      s.layers.insert(name + "@" + proc);
    } else if (cat == "op") {
      s.ops.insert(name + "@" + proc);
    }
  }
  ASSERT_GE(steps.size(), 3u) << prof.summary();
  const int layers = info.num_layers();
  double covered = 0, token_time = 0;
  int64_t prev = -1;
  for (const auto& [n, s] : steps) {
    // Every layer ran on the worker the plan gives it: attention on npu, FFN on gpu.
    for (int l = 0; l < layers; ++l) {
      EXPECT_TRUE(s.layers.count("attention L" + std::to_string(l) + "@npu")) << n << " L" << l;
      EXPECT_TRUE(s.layers.count("ffn L" + std::to_string(l) + "@gpu")) << n << " L" << l;
      EXPECT_FALSE(s.layers.count("attention L" + std::to_string(l) + "@gpu")) << n;
      EXPECT_FALSE(s.layers.count("ffn L" + std::to_string(l) + "@npu")) << n;
    }
    // Op spans inside the parts (the gpu worker runs the CPU backend here):
    // every FFN's products and the LM head's.
    for (int l = 0; l < layers; ++l) {
      EXPECT_TRUE(s.ops.count("matmul ffn_down L" + std::to_string(l) + "@gpu")) << n << " L" << l;
      EXPECT_TRUE(s.ops.count("matmul ffn_gate+up L" + std::to_string(l) + "@gpu")) << n;
    }
    EXPECT_TRUE(s.ops.count("matmul lm_head@gpu")) << n;
    EXPECT_TRUE(s.layers.count("embedding@gpu")) << n;
    EXPECT_TRUE(s.layers.count("lm_head@gpu")) << n;
    // Stages: embedding@gpu, then per layer attention@npu and ffn@gpu (the
    // last one with the LM head): 2 hops per layer and one more.
    EXPECT_EQ(s.hops, 2 * layers + 1) << n;
    EXPECT_EQ(s.hop_workers, (std::set<std::string>{"npu", "gpu"})) << n;
    // Decode steps: the token time is from one step's start to the next's.
    if (prev >= 0) {
      const Step& p = steps[prev];
      if (n == prev + 1) {
        token_time += s.start - p.start;
        covered += p.covered;
      }
    }
    prev = n;
  }
  ASSERT_GT(token_time, 0) << prof.summary();
  // The per-stage spans (schedule, hops, logits read + sample, stream) account
  // for >= 95% of the token time; the rest is the engine loop between steps.
  EXPECT_GE(covered / token_time, 0.95) << prof.summary();
  EXPECT_NE(prof.summary().find("tok/s"), std::string::npos) << prof.summary();
  std::cout << prof.summary();  // for the log: where the token time goes
}

TEST_F(Profile, CliWritesTheTraceAndPrintsTheSummary) {
  const std::string id = Generate(4);
  const std::string out = (sys_->dir() / "trace.json").string();
  const std::string png = (sys_->dir() / "chart.png").string();
  auto r = sys_->Cli("profile --server " + sys_->address() + " --request " + id + " -o " + out +
                     " --png " + png);
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("p95"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tok/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("    op matmul ffn_down @gpu"), std::string::npos) << r.out;
  {
    // A PNG 1000 pixels wide (tests/tools/share_chart_test.cc checks the pixels).
    std::ifstream p(png, std::ios::binary);
    std::string head(24, '\0');
    p.read(head.data(), 24);
    ASSERT_TRUE(p) << r.out;
    EXPECT_EQ(head.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
    EXPECT_EQ(uint8_t(head[18]) * 256 + uint8_t(head[19]), 1000);
  }
  std::ifstream in(out);
  json doc = json::parse(in);
  EXPECT_GT(doc["traceEvents"].size(), 10u);
  auto window = sys_->Cli("profile --server " + sys_->address() + " --seconds 60");
  EXPECT_EQ(window.code, 0) << window.out;
  auto bad = sys_->Cli("profile --server " + sys_->address() + " --request nosuch");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.out.find("unknown"), std::string::npos) << bad.out;
}

TEST_F(Profile, MetricsParseWithPrometheusClient) {
  Generate(5);
  auto r = unicorn::testing::Shell("/usr/bin/python3 " UNICORN_SOURCE_DIR
                                   "/tests/integration/parse_metrics.py http://127.0.0.1:" +
                                   std::to_string(metrics_port_) + "/metrics");
  ASSERT_EQ(r.code, 0) << r.out;
  json m = json::parse(r.out);
  const std::map<std::string, std::string> families = m["families"];
  for (const char* h :
       {"unicorn_time_to_first_token_seconds", "unicorn_inter_token_latency_seconds",
        "unicorn_e2e_request_latency_seconds", "unicorn_request_queue_time_seconds",
        "unicorn_request_prefill_time_seconds", "unicorn_request_decode_time_seconds",
        "unicorn_stage_latency_seconds"}) {
    EXPECT_EQ(families.count(h) ? families.at(h) : "", "histogram") << h;
  }
  // The parser names counter families without their _total suffix.
  for (const char* c : {"unicorn_prompt_tokens", "unicorn_generation_tokens",
                        "unicorn_worker_restarts", "unicorn_replays"}) {
    EXPECT_EQ(families.count(c) ? families.at(c) : "", "counter") << c;
  }
  for (const char* g : {"unicorn_num_requests_running", "unicorn_num_requests_waiting",
                        "unicorn_kv_cache_usage_ratio"}) {
    EXPECT_EQ(families.count(g) ? families.at(g) : "", "gauge") << g;
  }
  double generated = 0, ttft_count = 0;
  std::set<std::string> stage_workers;
  for (const auto& s : m["samples"]) {
    if (s[0] == "unicorn_generation_tokens_total") generated = s[2];
    if (s[0] == "unicorn_time_to_first_token_seconds_count") ttft_count = s[2];
    if (s[0] == "unicorn_stage_latency_seconds_count") {
      stage_workers.insert(s[1]["worker"].get<std::string>());
      EXPECT_TRUE(s[1].contains("stage") && s[1].contains("device")) << s;
    }
  }
  EXPECT_GE(generated, 5);
  EXPECT_GE(ttft_count, 1);
  EXPECT_EQ(stage_workers, (std::set<std::string>{"npu", "gpu"}));
}

}  // namespace
