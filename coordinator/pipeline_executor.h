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
// Failover (workers.<name>.standby_for): the plan names roles (its worker
// names); each role runs on its worker, or on that worker's standby after a
// failover. CheckFailover() moves a role whose worker was declared dead and
// has not come back within control.failover_after_ms to the other worker of
// the pair, if it is alive: LoadShard of the role's parts, and the engine's
// replay (waiting in WaitReady) rebuilds the running sequences there. The
// role stays on the standby when the primary returns (no second disruption);
// the primary then idles as the standby of its standby. A worker that never
// registered is not failed over (startup order is not a failure).
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
#include "shared_mem/descriptor.h"

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
  // Moves roles off workers dead for control.failover_after_ms (see above).
  // Call it periodically (the coordinator's main loop does, every 50 ms).
  void CheckFailover();
  int64_t failovers() const { return failovers_.load(); }
  // The role (plan worker name) whose parts `worker` runs now, "" if none.
  std::string RoleOf(const std::string& worker) const;
  // "" normally; after a failover e.g. "failover: gpu's parts on gpu-standby".
  std::string FailoverSummary() const;
  void OnMessage(const std::string& worker, const wire::Message& m);

  Status Run(std::span<const SeqStep> batch, LogitsFn use_logits) override;
  // One RunStage with `vision` set to the plan's vision worker: the pixels go
  // through the arena's "pixels" slot, the embeddings come back in slot 0 of
  // its "image" region (slot 1 carries each step's image rows to the
  // embedding stage).
  Status EncodeImage(std::span<const float> pixels, std::vector<float>* embeds) override;
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
  // LoadShard of `role`'s parts to worker `to`.
  void SendLoadShard(const std::string& role, const std::string& to);
  std::string WorkerFor(const std::string& role) const;  // mu_ held
  std::vector<std::string> ActiveWorkers() const;        // mu_ held
  std::vector<std::string> Roles() const;                // the plan's worker names, vision included
  // Waits for the answer to the stage in flight (or its worker's loss),
  // posted at `posted`; `predicted` is how long that stage took last time at
  // this many rows (0: unknown). The reply is awaited blocked until shortly
  // before it is due, then by spinning (control.busy_poll_us on each side of
  // the prediction): a decode hop then costs no thread wake-up on this side.
  StatusOr<wire::StageDone> Await(std::chrono::steady_clock::time_point posted,
                                  std::chrono::nanoseconds predicted);
  // Posts `req` as the stage in flight to the worker now running `role`'s
  // parts (the role itself, or its standby after a failover; named in
  // `worker`) and waits for its answer. `predicted` (may be null): the last
  // round trip of this stage and row count, used to time the wait, and
  // updated with this one.
  StatusOr<wire::StageDone> RoundTrip(const std::string& role, uint64_t step_id,
                                      const wire::RunStage& req, std::string* worker,
                                      std::chrono::nanoseconds* predicted);
  // Files a worker's spans (StageDone.spans) under the current step and
  // that worker's trace process, with the device they were timed on.
  void FileWorkerSpans(const wire::StageDone& done, uint16_t process);
  // Writes `data` into slot `slot` of `region` as f32 [rows, cols]; returns its descriptor.
  StatusOr<shm::SlotDescriptor> WriteSlot(uint32_t region, uint32_t slot, const float* data,
                                          int64_t rows, int64_t cols);

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
  uint32_t image_region_ = 0, pixels_region_ = 0;  // 0: the arena has none (no vision)
  std::vector<float> step_images_;                 // one step's image rows, gathered

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
  // Failover. partner_: primary <-> standby, both ways (fixed). active_: the
  // worker running each role that has a standby. dead_since_: workers that
  // died and have not come back, with when (MonotonicNs).
  std::map<std::string, std::string> partner_;
  std::map<std::string, std::string> active_;  // guarded by mu_
  std::map<std::string, int64_t> dead_since_;  // guarded by mu_
  std::atomic<int64_t> failovers_{0};
  // The last duration of each (stage, rows) hop: when to start spinning.
  std::map<std::pair<size_t, int>, std::chrono::nanoseconds> last_hop_;  // engine thread
  // When the last Run() ended and how long the engine took before the next
  // (trace::NowNs() units): when the registry should expect the next step.
  int64_t last_run_end_ns_ = 0, think_ns_ = 0;  // engine thread
  int64_t busy_ns() const { return int64_t(BusyPollUs(config_.control)) * 1000; }
};

}  // namespace unicorn
