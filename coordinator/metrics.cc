#include "coordinator/metrics.h"

namespace unicorn {
namespace {

// 1 ms .. 65 s, doubling: covers a token on a fast GPU to a long prompt on a CPU.
std::vector<double> RequestBuckets() { return prom::ExponentialBuckets(0.001, 2, 17); }
// 10 us .. 5 s, doubling: one stage of one step.
std::vector<double> StageBuckets() { return prom::ExponentialBuckets(1e-5, 2, 20); }

}  // namespace

CoordinatorMetrics::CoordinatorMetrics() {
  auto b = RequestBuckets();
  ttft_ = registry_.GetHistogram("unicorn_time_to_first_token_seconds",
                                 "Time from request arrival to its first generated token.", b);
  itl_ = registry_.GetHistogram("unicorn_inter_token_latency_seconds",
                                "Time between two generated tokens of one request.", b);
  e2e_ = registry_.GetHistogram("unicorn_e2e_request_latency_seconds",
                                "Time from request arrival to its last event.", b);
  queue_ = registry_.GetHistogram("unicorn_request_queue_time_seconds",
                                  "Time a request waited before its first step.", b);
  prefill_ = registry_.GetHistogram("unicorn_request_prefill_time_seconds",
                                    "Time from a request's first step to its first token.", b);
  decode_ = registry_.GetHistogram("unicorn_request_decode_time_seconds",
                                   "Time from a request's first token to its end.", b);
}

void CoordinatorMetrics::HookEngineOptions(EngineOptions* eo) {
  eo->on_token = [this](bool first, double seconds) { (first ? ttft_ : itl_)->Observe(seconds); };
  eo->on_finish = [this](const RequestTimes& t) {
    e2e_->Observe(t.e2e);
    queue_->Observe(t.queue);
    if (t.has_first_token) {
      prefill_->Observe(t.prefill);
      decode_->Observe(t.decode);
    }
  };
}

void CoordinatorMetrics::HookPipeline(PipelineExecutor& pipeline, const WorkerRegistry& registry) {
  std::vector<std::string> names = pipeline.StageNames();
  std::vector<std::string> workers;
  for (const Stage& st : pipeline.plan().stages) workers.push_back(st.worker);
  stages_.assign(names.size(), nullptr);
  auto* failovers = registry_.GetCounter(
      "unicorn_failovers_total",
      "Times a dead worker's plan parts were moved to its standby (workers.<name>.standby_for).");
  registry_.OnCollect([failovers, &pipeline] { failovers->Set(double(pipeline.failovers())); });
  pipeline.SetHopObserver([this, names, workers, &registry](size_t i, double seconds) {
    if (i >= stages_.size()) return;
    if (stages_[i] == nullptr) {
      std::string device;
      for (const WorkerState& w : registry.Snapshot()) {
        if (w.name == workers[i]) device = w.device;
      }
      stages_[i] = registry_.GetHistogram(
          "unicorn_stage_latency_seconds",
          "Round trip of one pipeline stage of one step: request sent to the worker, "
          "compute, reply received.",
          StageBuckets(), {{"stage", names[i]}, {"worker", workers[i]}, {"device", device}});
    }
    stages_[i]->Observe(seconds);
  });
}

void CoordinatorMetrics::WatchEngine(const Engine& engine, const WorkerRegistry& registry,
                                     int64_t kv_capacity_tokens) {
  auto* prompt = registry_.GetCounter("unicorn_prompt_tokens_total", "Prompt tokens received.");
  auto* generated = registry_.GetCounter("unicorn_generation_tokens_total", "Tokens generated.");
  auto* replays = registry_.GetCounter("unicorn_replays_total",
                                       "Times running requests were rebuilt after a worker loss.");
  auto* running = registry_.GetGauge("unicorn_num_requests_running", "Requests in the batch.");
  auto* waiting = registry_.GetGauge("unicorn_num_requests_waiting", "Requests in the queue.");
  auto* kv =
      registry_.GetGauge("unicorn_kv_cache_usage_ratio",
                         "Tokens held in KV caches over max_sequences * max_context (0..1).");
  registry_.OnCollect([=, this, &engine, &registry] {
    EngineStats s = engine.GetStats();
    prompt->Set(double(s.prompt_tokens));
    generated->Set(double(s.generated_tokens));
    replays->Set(double(s.replays));
    running->Set(s.running);
    waiting->Set(s.waiting);
    kv->Set(kv_capacity_tokens > 0 ? double(s.kv_tokens) / double(kv_capacity_tokens) : 0);
    for (const WorkerState& w : registry.Snapshot()) {
      registry_
          .GetCounter("unicorn_worker_restarts_total", "Times a worker came back as a new process.",
                      {{"worker", w.name}})
          ->Set(w.restarts);
    }
  });
}

}  // namespace unicorn
