// Runs forward steps through the device workers (StepExecutor over the
// pipeline). For each step it sends one RunStage per stage of the resolved
// plan, in order, to the stage's worker; activations stay in the shared
// arena, and each StageDone names the slot holding the stage's output. The
// coordinator relays every hop, which keeps it the single owner of request
// state (what replay after a worker loss needs); the waiting side busy-polls
// so a hop costs tens of microseconds, not a thread wake-up.
//
// Worker lifecycle: every (re)registered worker gets a LoadShard for its
// parts; it serves once it answers ShardReady. A worker lost during a step
// fails the step with Unavailable, and the engine replays.
//
// Thread-safety: Run/Free/WaitReady from the engine thread; the On* handlers
// from the registry's socket thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>

#include "common/config.h"
#include "coordinator/plan.h"
#include "coordinator/step_executor.h"
#include "coordinator/worker_registry.h"
#include "model/gemma3_config.h"
#include "proto/unicorn/worker.pb.h"
#include "shared_mem/arena.h"

namespace unicorn {

struct PipelineOptions {
  int max_sequences = 16;
  int max_context = 4096;
  int max_step_tokens = 256;
};

class PipelineExecutor final : public StepExecutor {
 public:
  PipelineExecutor(const Config& config, const ResolvedPlan& plan, const Gemma3Config& model,
                   WorkerRegistry& registry, const shm::Arena& arena, std::string shm_socket,
                   PipelineOptions options);

  // Registry handlers (socket thread).
  void OnWorker(const WorkerState& w, bool up);
  void OnMessage(const std::string& worker, const wire::Message& m);

  Status Run(std::span<const SeqStep> batch, std::vector<float>* logits) override;
  void Free(uint64_t seq_id) override;
  Status WaitReady(int timeout_ms) override;
  int vocab_size() const override { return model_.vocab_size; }
  int max_context() const override { return options_.max_context; }

  // Called after every stage of every step (engine thread) with the stage's
  // index and its round trip (RunStage sent -> StageDone received), for the
  // per-stage latency metric. Set before the first step.
  void SetHopObserver(std::function<void(size_t stage, double seconds)> f) {
    on_hop_ = std::move(f);
  }
  // One readable name per stage, in order: "L3 attention", "embedding + L0 ffn".
  std::vector<std::string> StageNames() const;
  const ResolvedPlan& plan() const { return plan_; }

  // Errors of shards that failed to load, by worker (for ModelInfo).
  std::map<std::string, std::string> ShardErrors() const;
  int64_t hops() const { return hops_.load(); }
  // Replies dropped because they answered a step no longer in flight.
  int64_t stale_replies() const {
    std::lock_guard<std::mutex> lock(mu_);
    return stale_replies_;
  }

 private:
  void SendLoadShard(const std::string& worker);
  // Waits for the answer to the stage in flight (or its worker's loss),
  // posted at `posted`; `predicted` is how long that stage took last time at
  // this many rows (0: unknown). The reply is awaited blocked until shortly
  // before it is due, then by spinning (control.busy_poll_us on each side of
  // the prediction): a decode hop then costs no thread wake-up on this side.
  StatusOr<wire::StageDone> Await(std::chrono::steady_clock::time_point posted,
                                  std::chrono::nanoseconds predicted);

  const Config& config_;
  ResolvedPlan plan_;
  Gemma3Config model_;
  WorkerRegistry& registry_;
  const shm::Arena& arena_;
  std::string shm_socket_;
  PipelineOptions options_;
  uint64_t shard_id_;
  uint32_t act_region_ = 0, logits_region_ = 0;
  uint32_t act_slots_ = 0;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  // The stage in flight: which worker and step it waits for, and its answer.
  std::string inflight_worker_;                      // guarded by mu_
  uint64_t inflight_step_ = 0;                       // guarded by mu_
  bool inflight_done_ = false;                       // guarded by mu_
  Status inflight_error_;                            // guarded by mu_
  wire::StageDone inflight_reply_;                   // guarded by mu_
  std::atomic<bool> reply_ready_{false};             // lets the engine thread spin without the lock
  std::map<std::string, std::string> shard_errors_;  // guarded by mu_
  uint64_t next_step_ = 0;
  std::atomic<int64_t> hops_{0};
  std::atomic<bool> lost_{false};  // a worker was lost since the last WaitReady()
  int64_t stale_replies_ = 0;      // guarded by mu_
  std::function<void(size_t, double)> on_hop_;
  std::vector<uint16_t> stage_process_;  // trace::ProcessId of each stage's worker
  // The last duration of each (stage, rows) hop: when to start spinning.
  std::map<std::pair<size_t, int>, std::chrono::nanoseconds> last_hop_;  // engine thread
  // When the last Run() ended and how long the engine took before the next
  // (trace::NowNs() units): when the registry should expect the next step.
  int64_t last_run_end_ns_ = 0, think_ns_ = 0;  // engine thread
  int64_t busy_ns() const { return int64_t(config_.control.busy_poll_us) * 1000; }
};

}  // namespace unicorn
