// The coordinator's Prometheus metrics, named after vLLM's and llama-server's
// under a unicorn_ prefix:
//   histograms  unicorn_time_to_first_token_seconds, unicorn_inter_token_latency_seconds,
//               unicorn_e2e_request_latency_seconds, unicorn_request_queue_time_seconds,
//               unicorn_request_prefill_time_seconds, unicorn_request_decode_time_seconds,
//               unicorn_stage_latency_seconds{stage,worker,device}
//   counters    unicorn_prompt_tokens_total, unicorn_generation_tokens_total,
//               unicorn_worker_restarts_total{worker}, unicorn_replays_total,
//               unicorn_failovers_total
//   gauges      unicorn_num_requests_running, unicorn_num_requests_waiting,
//               unicorn_kv_cache_usage_ratio
// Request histograms and stage latencies are fed by engine and pipeline hooks
// (always on: a few clock reads and atomic adds per step); the rest is copied
// from engine stats and the worker registry whenever /metrics is scraped.
#pragma once

#include <string>
#include <vector>

#include "coordinator/engine.h"
#include "coordinator/pipeline_executor.h"
#include "coordinator/prometheus.h"
#include "coordinator/worker_registry.h"

namespace unicorn {

class CoordinatorMetrics {
 public:
  CoordinatorMetrics();

  // Sets eo->on_token and eo->on_finish (before the engine starts).
  void HookEngineOptions(EngineOptions* eo);
  // Per-stage latency from the pipeline's hops, labelled with the stage, its
  // worker and that worker's device (from `registry`, when first seen).
  void HookPipeline(PipelineExecutor& pipeline, const WorkerRegistry& registry);
  // Gauges and counters copied from `engine` and `registry` at each scrape.
  // kv_capacity_tokens: max_sequences * max_context, the ratio's denominator
  // (every sequence's KV cache is sized for max_context on its workers).
  void WatchEngine(const Engine& engine, const WorkerRegistry& registry,
                   int64_t kv_capacity_tokens);

  prom::Registry& registry() { return registry_; }
  std::string Render() const { return registry_.Render(); }

 private:
  prom::Registry registry_;
  prom::Histogram* ttft_;
  prom::Histogram* itl_;
  prom::Histogram* e2e_;
  prom::Histogram* queue_;
  prom::Histogram* prefill_;
  prom::Histogram* decode_;
  std::vector<prom::Histogram*> stages_;  // engine thread: by stage index, made on first use
};

}  // namespace unicorn
