// unicorn-coordinator: serves clients over gRPC and drives the device workers
// over ZeroMQ, with activations in a shared arena.
// Usage: unicorn-coordinator --config configs/default.yaml
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "CLI/CLI.hpp"
#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "coordinator/engine.h"
#include "coordinator/grpc_service.h"
#include "coordinator/metrics.h"
#include "coordinator/metrics_server.h"
#include "coordinator/openai_server.h"
#include "coordinator/pipeline_executor.h"
#include "coordinator/plan.h"
#include "coordinator/worker_registry.h"
#include "model/model_files.h"
#include "model/tokenizer.h"
#include "model/tokenizer_loader.h"
#include "shared_mem/arena.h"
#include "shared_mem/fd_passing.h"

namespace unicorn {
namespace {

// A whole (small) file, for PEM keys and certificates.
StatusOr<std::string> ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("[coordinator] cannot read ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Fail(const Status& s, int code = 1) {
  LOG_ERROR("{}", s.message());
  return code;
}

// "127.0.0.1" of "127.0.0.1:50051", "::1" of "[::1]:50051".
std::string HostOf(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host.empty() ? "0.0.0.0" : host;
}

int Main(const std::string& config_path) {
  InitLogging("coordinator");
  trace::SetLocalProcessName("coordinator");
  std::atomic<bool>& stop = InstallStopHandlers();
  auto config = LoadConfig(config_path);
  if (!config.ok()) return Fail(config.status(), 2);
  if (Status s = EnsurePrivateDir(config->runtime_dir); !s.ok()) return Fail(s, 2);

  // The coordinator reads the model's config and tokenizer; the weights stay
  // mapped but untouched here (workers map the tensors of their parts).
  auto files = ModelFiles::Open(config->model, config->mmproj);
  if (!files.ok()) return Fail(files.status(), 2);
  const Gemma3Config& model = (*files)->config();
  // A folder's tokenizer.json, or a GGUF's own vocabulary (nothing beside it needed).
  auto tokenizer = LoadTokenizer(config->model);
  if (!tokenizer.ok()) return Fail(tokenizer.status(), 2);
  auto plan = ResolvePlan(*config, model.num_layers);
  if (!plan.ok()) return Fail(plan.status(), 2);
  LOG_INFO("[coordinator] {} ({} layers, vocab {}); plan {} ({} hops per step)", config->model,
           model.num_layers, model.vocab_size, plan->Summary(), plan->stages.size());

  const CoordinatorConfig& cc = config->coordinator;
  shm::ModelLimits limits;
  limits.hidden = model.hidden_size;
  limits.vocab = model.vocab_size;
  limits.max_batch_tokens = cc.max_step_tokens;
  limits.max_sequences = cc.max_sequences;
  if (model.has_vision && !config->plan.vision.empty()) {
    // "image": slot 0 receives one image's embeddings from the vision worker,
    // slot 1 carries a step's image rows to the embedding stage. "pixels":
    // one image's pixel_values for the vision worker.
    limits.max_images = 1;
    limits.tokens_per_image =
        std::max<int64_t>(cc.max_step_tokens, model.vision.mm_tokens_per_image);
    limits.image_slots = 2;
    limits.pixel_values = int64_t(3) * model.vision.image_size * model.vision.image_size;
  }
  auto arena_plan = shm::ArenaPlan::ForModel(limits);
  if (!arena_plan.ok()) return Fail(arena_plan.status());
  auto arena = shm::Arena::Create(*arena_plan);
  if (!arena.ok()) return Fail(arena.status());
  std::string shm_socket = config->runtime_dir + "/shm.sock";
  auto fd_server = shm::FdServer::Start(**arena, shm_socket);
  if (!fd_server.ok()) return Fail(fd_server.status());
  LOG_INFO("[coordinator] shared arena: {}", arena_plan->ToString());

  WorkerRegistry registry(*config);
  PipelineOptions po;
  po.max_sequences = cc.max_sequences;
  po.max_context =
      std::min(cc.max_context,
               model.max_position_embeddings > 0 ? model.max_position_embeddings : cc.max_context);
  po.max_step_tokens = cc.max_step_tokens;
  PipelineExecutor executor(*config, *plan, model, registry, **arena, shm_socket, po);
  CoordinatorMetrics metrics;
  metrics.HookPipeline(executor, registry);
  // The most recent spans of sampled steps (about 40 bytes each: 20 MiB; a
  // traced step with op spans holds ~15 spans per layer half and worker).
  trace::Ring trace_ring(1 << 19);
  registry.SetHandlers(
      [&](const WorkerState& w, bool up) { executor.OnWorker(w, up); },
      [&](const std::string& w, const wire::Message& m) { executor.OnMessage(w, m); });
  if (Status s = registry.Start(); !s.ok()) return Fail(s);

  EngineOptions eo = MakeEngineOptions(**tokenizer);
  eo.max_sequences = cc.max_sequences;
  eo.max_queue = cc.max_queue;
  eo.max_step_tokens = cc.max_step_tokens;
  eo.image_token_id = model.has_vision ? model.image_token_id : -1;
  eo.trace_ring = &trace_ring;
  eo.trace_every_n_steps = config->profile.sample_every_n_steps;
  eo.trace_requests = config->profile.requests;
  metrics.HookEngineOptions(&eo);
  auto engine = std::make_unique<Engine>(eo, &executor);
  metrics.WatchEngine(*engine, registry, int64_t(po.max_sequences) * po.max_context);
  std::unique_ptr<MetricsServer> metrics_server;
  if (cc.metrics_port > 0) {
    auto ms = MetricsServer::Start(cc.metrics_port, [&metrics] { return metrics.Render(); });
    if (ms.ok()) {
      metrics_server = std::move(*ms);
      LOG_INFO("[coordinator] Prometheus metrics on http://127.0.0.1:{}/metrics",
               metrics_server->port());
    } else {
      // Serving clients matters more than metrics: say so and go on.
      LOG_WARN("{}; serving without /metrics", ms.status().message());
    }
  }

  UnicornService service(*config, model, **tokenizer, *engine, registry, &executor,
                         plan->Summary());
  {
    std::vector<StageLabel> labels;
    std::vector<std::string> names = executor.StageNames();
    for (size_t i = 0; i < names.size(); ++i) labels.push_back({names[i], plan->stages[i].worker});
    service.SetProfiler(&trace_ring, std::move(labels));
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!cc.tls_cert.empty()) {
    auto cert = ReadFileText(cc.tls_cert);
    if (!cert.ok()) return Fail(cert.status(), 2);
    auto key = ReadFileText(cc.tls_key);
    if (!key.ok()) return Fail(key.status(), 2);
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({*key, *cert});
    creds = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(cc.grpc_address, creds, &bound_port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    registry.Stop(false);
    return Fail(absl::UnavailableError(absl::StrCat(
        "[coordinator] cannot listen on ", cc.grpc_address, " (in use, or not a valid address)")));
  }
  auto* health = server->GetHealthCheckService();
  // gRPC's health service starts out SERVING: say the truth until workers are ready.
  health->SetServingStatus(false);
  health->SetServingStatus("unicorn.v1.Unicorn", false);
  LOG_INFO("[coordinator] gRPC on {}{}", cc.grpc_address, cc.tls_cert.empty() ? "" : " (TLS)");

  // The OpenAI-compatible HTTP API, on the gRPC address's host (loopback by default).
  std::unique_ptr<OpenAiServer> http;
  if (cc.http_port > 0) {
    OpenAiServerOptions ho;
    ho.host = HostOf(cc.grpc_address);
    ho.port = cc.http_port;
    ho.model_path = config->model;
    ho.vision = VisionSupportOf(*config, model);
    http = std::make_unique<OpenAiServer>(ho, *engine, **tokenizer);
    if (Status s = http->Start(); !s.ok()) {
      server->Shutdown();
      registry.Stop(false);
      return Fail(s);
    }
  }
  NotifyReady("serving gRPC; waiting for workers");

  bool was_serving = false;
  while (!stop.load()) {
    executor.CheckFailover();  // workers.<name>.standby_for
    bool serving = registry.Serving();
    if (serving != was_serving) {
      health->SetServingStatus(serving);
      health->SetServingStatus("unicorn.v1.Unicorn", serving);
      LOG_INFO("[coordinator] {}", serving ? "SERVING: every stage has a ready worker"
                                           : "NOT_SERVING: a stage has no ready worker");
      NotifyStatus(serving ? "serving" : "waiting for workers");
      was_serving = serving;
    }
    NotifyWatchdog();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  NotifyStopping();
  LOG_INFO("[coordinator] stopping");
  health->SetServingStatus(false);
  if (http) http->Stop();
  engine->Stop();  // open streams end with UNAVAILABLE; new ones are refused the same way
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  metrics_server.reset();
  engine.reset();  // finishes open requests with Unavailable
  registry.Stop(false);
  return 0;
}

}  // namespace
}  // namespace unicorn

int main(int argc, char** argv) {
  CLI::App app{"Unicorn coordinator: gRPC API, scheduling, sampling"};
  std::string config = "configs/default.yaml";
  app.add_option("-c,--config", config, "config file")->check(CLI::ExistingFile);
  CLI11_PARSE(app, argc, argv);
  return unicorn::Main(config);
}
