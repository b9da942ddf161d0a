// The Unicorn config file (YAML), as plain data with in-place defaults.
// LoadConfig() is the only code that knows YAML; everything else sees these
// structs. Relative paths in the file are resolved against the file's folder.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn {

struct CoordinatorConfig {
  std::string grpc_address = "127.0.0.1:50051";  // loopback by default
  int http_port = 8080;                          // OpenAI-compatible API; 0 = off
  int metrics_port = 9464;                       // Prometheus /metrics
  int max_sequences = 16;                        // decoded together per step
  int max_queue = 256;                           // waiting requests beyond that
  int max_step_tokens = 256;                     // prefill chunk per step, all sequences
  int max_context = 4096;                        // tokens per sequence (prompt + output)
  // gRPC over TLS when both are set (`tls: {cert: server.pem, key: server.key}`,
  // PEM files, relative to the config file); plaintext otherwise.
  std::string tls_cert;
  std::string tls_key;
  // Optional `tls.ca`: the CA that signed `cert`, which the `unicorn` client
  // commands reading this config trust (unset: `cert` itself, which suits a
  // self-signed certificate). Not used by the coordinator.
  std::string tls_ca;
};

struct ControlConfig {
  // ZeroMQ control endpoint: "" = ipc://<runtime_dir>/control.sock; a
  // tcp://HOST:PORT is allowed (activations still travel through this host's
  // shared memory, so workers must run on the same host).
  std::string endpoint;
  int heartbeat_interval_ms = 1000;  // both directions
  int heartbeat_liveness = 3;        // missed intervals before a peer is dead
  int reconnect_initial_ms = 250;    // worker reconnect backoff, doubling...
  int reconnect_max_ms = 8000;       // ...up to this
  // Spin on the socket this long before blocking, on both sides of a hop.
  // -1 (the default, "auto"): BusyPollUs() decides by the machine.
  int busy_poll_us = -1;
  // A plan worker declared dead that has not come back within this long has
  // its parts moved to its standby (a worker with standby_for naming it),
  // if that one is alive. Must stay below the engine's replay wait (60 s).
  int failover_after_ms = 10000;
  // A worker busy with one command (a step, a shard load) keeps heartbeating
  // from a side thread for up to this long; a command that runs longer (a
  // hung device) leaves the worker silent, so the coordinator declares it dead.
  int busy_heartbeat_max_ms = 120000;
};

// control.busy_poll_us as it applies here: the configured value, or for auto
// 200 where HasCoresToSpin() and 0 below. Measured on a 2-core VM (demo
// model, tools/bench-pipeline.sh): spinning 200 us made one-worker decode
// 0.7x and the two-worker split plan 0.4x of not spinning.
int BusyPollUs(const ControlConfig& c);

// One NPU GEMM kernel built from npu_worker/kernels (an mlir-aie design):
// C [m, n] = A [m, k] Bt^T, for the weights of shape [n, k].
struct NpuKernelConfig {
  std::string name;                 // for logs and errors
  std::string xclbin;               // path, absolute after loading
  std::string insts;                // instruction sequence (insts.txt / .bin), absolute
  std::string kernel = "MLIR_AIE";  // kernel name inside the xclbin
  std::string dtype = "bf16";       // bf16 | int8 (weights and activations)
  int m = 0, k = 0, n = 0;          // tile rows, reduction length, output columns
};

// Trace sampling (common/trace.h). A step is traced when its number is a
// multiple of sample_every_n_steps (0 = never by step count) or when it runs
// a sampled request; each request is sampled with probability `requests`.
// Metrics (/metrics) are always on; only span recording is sampled.
struct ProfileConfig {
  int sample_every_n_steps = 0;
  double requests = 0;  // 0..1
};

struct WorkerConfig {
  std::string name;                      // "npu", "gpu": the key used by the plan
  std::string kind;                      // "npu" or "gpu": which daemon serves it
  std::string backend;                   // npu: "cpu" | "xrt"; gpu: "vulkan" | "cpu"
  std::string device;                    // Vulkan device name substring or index; XRT device index
  bool allow_cpu_fallback = true;        // npu: fall back to CPU when no NPU exists
  int threads = 0;                       // CPU backend threads, 0 = all cores
  std::vector<NpuKernelConfig> kernels;  // npu + xrt: GEMM kernels (none = every op on CPU)
  // Failover: the plan worker this one stands in for ("" = none). A standby
  // is not named by the plan; it runs, idle, until that worker has been dead
  // for control.failover_after_ms, then the coordinator loads the worker's
  // parts onto it and replays the running requests. It keeps them when the
  // primary comes back (which then idles as the standby of its standby).
  std::string standby_for;
};

// Where each part of the model runs, by worker name.
struct PlanRange {
  int first_layer = 0;  // inclusive
  int last_layer = -1;  // inclusive, -1 = last layer of the model
  std::string attention;
  std::string ffn;
};

struct PlanConfig {
  std::string embedding;
  std::string lm_head;
  std::string vision;
  std::vector<PlanRange> layers;  // later entries override earlier ones
};

struct Config {
  std::string source_path;  // the file this was loaded from
  std::string model;        // model folder or .gguf, absolute after loading
  std::string mmproj;       // optional vision GGUF
  std::string runtime_dir;  // 0700 folder for sockets; default per user
  CoordinatorConfig coordinator;
  ControlConfig control;
  ProfileConfig profile;
  std::vector<WorkerConfig> workers;
  PlanConfig plan;

  // The worker with this name, or nullptr.
  const WorkerConfig* FindWorker(const std::string& name) const;
  // The ZeroMQ control endpoint: control.endpoint, else
  // ipc://<runtime_dir>/control.sock.
  std::string ControlEndpoint() const;
};

// Loads and validates a config file. Errors name the file and the key:
// "[config] configs/x.yaml: coordinator.http_port: expected an integer".
StatusOr<Config> LoadConfig(const std::string& path);

// Parses config text; `origin` names it in errors and anchors relative paths.
StatusOr<Config> ParseConfig(const std::string& yaml_text, const std::string& origin);

// $XDG_RUNTIME_DIR/unicorn, else /tmp/unicorn-<uid>.
std::string DefaultRuntimeDir();

}  // namespace unicorn
