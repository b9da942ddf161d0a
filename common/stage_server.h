// The worker side of the pipeline: answers LoadShard, RunStage (model parts,
// or the vision tower when RunStage.vision is set) and FreeSequences (proto/unicorn/worker.proto)
// with the worker's StageModel, reading and writing activations in the coordinator's shared arena.
//
// A bad request gets an error reply (StageDone.error or Error) and changes
// nothing; the worker keeps serving. Loading runs on a separate thread so
// heartbeats continue while weights are mapped or uploaded.
#pragma once

#include <functional>
#include <future>
#include <map>
#include <memory>

#include "common/trace.h"
#include "common/worker_link.h"
#include "model/stage.h"
#include "shared_mem/arena.h"
#include "shared_mem/slot.h"

namespace unicorn {

using ShardLoader = std::function<StatusOr<std::unique_ptr<StageModel>>(const ShardSpec&)>;
// Called with the arena after the server attached it, so the backend can map
// it for the device (the GPU worker imports it into Vulkan), and with nullptr
// before that arena is unmapped (a new one attached, or the server closing).
// The stage input and output pointers handed to StageModel::Run lie in it.
using ArenaHook = std::function<void(const shm::Arena*)>;

class StageServer {
 public:
  StageServer(WorkerLink& link, ShardLoader loader, ArenaHook on_arena = nullptr);
  ~StageServer();

  // Call from the worker loop after each Poll(): finishes a pending load.
  void Tick();

 private:
  void OnLoadShard(const wire::Message& m);
  void OnRunStage(const wire::Message& m);
  void OnFree(const wire::Message& m);
  Status RunStage(const wire::RunStage& req, wire::StageDone* done);
  // RunStage with `vision` set: one image through the vision tower.
  Status RunVision(const wire::RunStage& req, wire::StageDone* done);
  StatusOr<shm::SlotWriter*> Writer(uint32_t region, uint32_t slot);

  WorkerLink& link_;
  ShardLoader loader_;
  ArenaHook on_arena_;
  uint64_t shard_id_ = 0;  // of the loaded (or loading) shard
  std::unique_ptr<StageModel> model_;
  std::unique_ptr<shm::Arena> arena_;
  std::string arena_socket_;
  std::map<std::pair<uint32_t, uint32_t>, shm::SlotWriter> writers_;
  struct Pending {
    uint64_t shard_id;
    std::future<StatusOr<std::unique_ptr<StageModel>>> result;
    int64_t started_ns;
  };
  std::unique_ptr<Pending> pending_;
  std::vector<int> ids_;
  std::vector<float> scratch_;    // hidden rows an lm_head stage computes and drops
  // Of the stage being run, when it is profiled: its parts and their ops
  // (~15 per layer half, so a 62-layer stage's fit).
  trace::Collector spans_{4096};
};

}  // namespace unicorn
