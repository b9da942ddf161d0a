// The shared skeleton of a device worker daemon: parse the command line, load
// the config, open the backend, register with the coordinator, serve until
// told to stop. Each daemon (npu_worker, gpu_worker) supplies only how to
// open its backend.
#pragma once

#include <functional>
#include <string>

#include "common/config.h"
#include "common/stage_server.h"
#include "common/status.h"
#include "common/worker_link.h"
#include "model/stage.h"

namespace unicorn {

struct BackendInfo {
  BackendInfo(std::string b, std::string d, std::string n = "")
      : backend(std::move(b)), device(std::move(d)), note(std::move(n)) {}
  std::string backend;  // what actually runs: "cpu", "xrt", "vulkan"
  std::string device;   // human-readable device description
  // Set when `backend` is not what the config asked for: why (a fallback).
  std::string note;
};

struct WorkerSpec {
  std::string kind;  // "npu" or "gpu"
  std::string description;
  // Opens the device for `w`. An error stops the daemon with that message.
  std::function<StatusOr<BackendInfo>(const WorkerConfig& w)> open_backend;
  // Loads a shard of the model on the opened device (called on a loader
  // thread; errors are reported to the coordinator, the worker lives on).
  std::function<StatusOr<std::unique_ptr<StageModel>>(const ShardSpec& spec)> load_shard;
  // Optional: lets the backend use the coordinator's arena in place (see
  // ArenaHook in stage_server.h).
  ArenaHook on_arena;
};

int RunWorkerMain(const WorkerSpec& spec, int argc, char** argv);

}  // namespace unicorn
