#include "common/config.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/cores.h"
#include "yaml-cpp/yaml.h"

namespace unicorn {
namespace {

namespace fs = std::filesystem;

// Reads typed values out of YAML nodes, turning every mismatch into an error
// that names the key path and the file.
class Reader {
 public:
  explicit Reader(std::string origin) : origin_(std::move(origin)) {}

  Status Error(const std::string& key, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat("[config] ", origin_, ": ", key, ": ", what));
  }

  template <typename T>
  Status Get(const YAML::Node& parent, const std::string& name, const std::string& key, T* out) {
    YAML::Node n = parent[name];
    if (!n || n.IsNull()) return absl::OkStatus();  // keep the default
    try {
      *out = n.as<T>();
    } catch (const YAML::Exception&) {
      return Error(key, absl::StrCat("expected ", TypeName<T>(), ", got '", Dump(n), "'"));
    }
    return absl::OkStatus();
  }

  Status CheckKeys(const YAML::Node& map, const std::string& key,
                   const std::set<std::string>& allowed) const {
    if (!map) return absl::OkStatus();
    if (!map.IsMap()) return Error(key.empty() ? "<root>" : key, "expected a mapping");
    for (const auto& kv : map) {
      std::string k = kv.first.as<std::string>();
      if (!allowed.count(k)) {
        return Error(key.empty() ? k : key + "." + k, "unknown key");
      }
    }
    return absl::OkStatus();
  }

 private:
  template <typename T>
  static const char* TypeName() {
    if constexpr (std::is_same_v<T, int>) return "an integer";
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_same_v<T, double>) return "a number";
    return "a string";
  }
  static std::string Dump(const YAML::Node& n) {
    std::stringstream ss;
    ss << n;
    return ss.str();
  }
  std::string origin_;
};

Status ParseRange(Reader& r, const YAML::Node& n, const std::string& key, PlanRange* out) {
  UNICORN_RETURN_IF_ERROR(r.CheckKeys(n, key, {"layers", "attention", "ffn"}));
  std::string layers = "all";
  UNICORN_RETURN_IF_ERROR(r.Get(n, "layers", key + ".layers", &layers));
  if (layers == "all") {
    out->first_layer = 0;
    out->last_layer = -1;
  } else {
    int a = 0, b = 0;
    char dash = 0;
    std::istringstream ss(layers);
    if (!(ss >> a)) return r.Error(key + ".layers", "expected 'all', 'N' or 'A-B'");
    b = a;
    if (ss >> dash) {
      if (dash != '-' || !(ss >> b)) return r.Error(key + ".layers", "expected 'A-B'");
    }
    if (a < 0 || b < a) return r.Error(key + ".layers", "empty or negative range");
    out->first_layer = a;
    out->last_layer = b;
  }
  UNICORN_RETURN_IF_ERROR(r.Get(n, "attention", key + ".attention", &out->attention));
  UNICORN_RETURN_IF_ERROR(r.Get(n, "ffn", key + ".ffn", &out->ffn));
  return absl::OkStatus();
}

std::string Resolve(const std::string& base_dir, const std::string& p) {
  if (p.empty() || fs::path(p).is_absolute()) return p;
  return fs::weakly_canonical(fs::path(base_dir) / p).string();
}

}  // namespace

const WorkerConfig* Config::FindWorker(const std::string& name) const {
  for (const auto& w : workers) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

std::string Config::ControlEndpoint() const {
  if (!control.endpoint.empty()) return control.endpoint;
  return absl::StrCat("ipc://", runtime_dir, "/control.sock");
}

std::string DefaultRuntimeDir() {
  if (const char* xdg = std::getenv("XDG_RUNTIME_DIR"); xdg && *xdg) {
    return absl::StrCat(xdg, "/unicorn");
  }
  return absl::StrCat("/tmp/unicorn-", ::getuid());
}

int BusyPollUs(const ControlConfig& c) {
  if (c.busy_poll_us >= 0) return c.busy_poll_us;
  return HasCoresToSpin() ? 200 : 0;
}

StatusOr<Config> ParseConfig(const std::string& yaml_text, const std::string& origin) {
  Reader r(origin);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("[config] ", origin, ": invalid YAML: ", e.what()));
  }
  if (!root.IsMap()) return r.Error("<root>", "expected a mapping");
  UNICORN_RETURN_IF_ERROR(r.CheckKeys(
      root, "",
      {"model", "mmproj", "runtime_dir", "coordinator", "control", "profile", "workers", "plan"}));

  Config c;
  c.source_path = origin;
  std::string base = fs::path(origin).parent_path().string();
  UNICORN_RETURN_IF_ERROR(r.Get(root, "model", "model", &c.model));
  if (c.model.empty()) return r.Error("model", "missing (a model folder or .gguf file)");
  c.model = Resolve(base, c.model);
  UNICORN_RETURN_IF_ERROR(r.Get(root, "mmproj", "mmproj", &c.mmproj));
  c.mmproj = Resolve(base, c.mmproj);
  UNICORN_RETURN_IF_ERROR(r.Get(root, "runtime_dir", "runtime_dir", &c.runtime_dir));
  if (c.runtime_dir.empty()) c.runtime_dir = DefaultRuntimeDir();

  if (YAML::Node n = root["coordinator"]) {
    UNICORN_RETURN_IF_ERROR(
        r.CheckKeys(n, "coordinator",
                    {"grpc_address", "http_port", "metrics_port", "max_sequences", "max_queue",
                     "max_step_tokens", "max_context", "tls"}));
    auto& k = c.coordinator;
    UNICORN_RETURN_IF_ERROR(r.Get(n, "grpc_address", "coordinator.grpc_address", &k.grpc_address));
    UNICORN_RETURN_IF_ERROR(r.Get(n, "http_port", "coordinator.http_port", &k.http_port));
    UNICORN_RETURN_IF_ERROR(r.Get(n, "metrics_port", "coordinator.metrics_port", &k.metrics_port));
    UNICORN_RETURN_IF_ERROR(
        r.Get(n, "max_sequences", "coordinator.max_sequences", &k.max_sequences));
    UNICORN_RETURN_IF_ERROR(r.Get(n, "max_queue", "coordinator.max_queue", &k.max_queue));
    UNICORN_RETURN_IF_ERROR(
        r.Get(n, "max_step_tokens", "coordinator.max_step_tokens", &k.max_step_tokens));
    UNICORN_RETURN_IF_ERROR(r.Get(n, "max_context", "coordinator.max_context", &k.max_context));
    if (YAML::Node t = n["tls"]) {
      UNICORN_RETURN_IF_ERROR(r.CheckKeys(t, "coordinator.tls", {"cert", "key", "ca"}));
      UNICORN_RETURN_IF_ERROR(r.Get(t, "cert", "coordinator.tls.cert", &k.tls_cert));
      UNICORN_RETURN_IF_ERROR(r.Get(t, "key", "coordinator.tls.key", &k.tls_key));
      UNICORN_RETURN_IF_ERROR(r.Get(t, "ca", "coordinator.tls.ca", &k.tls_ca));
      if (k.tls_cert.empty() || k.tls_key.empty()) {
        return r.Error("coordinator.tls", "needs both cert and key (PEM files)");
      }
      k.tls_cert = Resolve(base, k.tls_cert);
      k.tls_key = Resolve(base, k.tls_key);
      if (!k.tls_ca.empty()) k.tls_ca = Resolve(base, k.tls_ca);
    }
    if (k.max_step_tokens < 1) return r.Error("coordinator.max_step_tokens", "must be >= 1");
    if (k.max_context < 2) return r.Error("coordinator.max_context", "must be >= 2");
    if (k.max_sequences < 1) return r.Error("coordinator.max_sequences", "must be >= 1");
    if (k.max_queue < 0) return r.Error("coordinator.max_queue", "must be >= 0");
  }

  if (YAML::Node n = root["control"]) {
    UNICORN_RETURN_IF_ERROR(r.CheckKeys(
        n, "control",
        {"endpoint", "heartbeat_interval_ms", "heartbeat_liveness", "reconnect_initial_ms",
         "reconnect_max_ms", "busy_poll_us", "failover_after_ms", "busy_heartbeat_max_ms"}));
    auto& k = c.control;
    UNICORN_RETURN_IF_ERROR(r.Get(n, "endpoint", "control.endpoint", &k.endpoint));
    if (!k.endpoint.empty() && k.endpoint.rfind("ipc://", 0) != 0 &&
        k.endpoint.rfind("tcp://", 0) != 0) {
      return r.Error("control.endpoint", "expected ipc://PATH or tcp://HOST:PORT");
    }
    UNICORN_RETURN_IF_ERROR(r.Get(n, "heartbeat_interval_ms", "control.heartbeat_interval_ms",
                                  &k.heartbeat_interval_ms));
    UNICORN_RETURN_IF_ERROR(
        r.Get(n, "heartbeat_liveness", "control.heartbeat_liveness", &k.heartbeat_liveness));
    UNICORN_RETURN_IF_ERROR(
        r.Get(n, "reconnect_initial_ms", "control.reconnect_initial_ms", &k.reconnect_initial_ms));
    UNICORN_RETURN_IF_ERROR(
        r.Get(n, "reconnect_max_ms", "control.reconnect_max_ms", &k.reconnect_max_ms));
    UNICORN_RETURN_IF_ERROR(r.Get(n, "busy_poll_us", "control.busy_poll_us", &k.busy_poll_us));
    if (k.busy_poll_us < -1 || k.busy_poll_us > 100000) {
      return r.Error("control.busy_poll_us", "must be in [0, 100000] us, or -1 for auto");
    }
    if (k.heartbeat_interval_ms < 10) return r.Error("control.heartbeat_interval_ms", ">= 10");
    if (k.heartbeat_liveness < 1) return r.Error("control.heartbeat_liveness", "must be >= 1");
    UNICORN_RETURN_IF_ERROR(
        r.Get(n, "failover_after_ms", "control.failover_after_ms", &k.failover_after_ms));
    if (k.failover_after_ms < 0 || k.failover_after_ms >= 60000) {
      return r.Error("control.failover_after_ms",
                     "must be in [0, 60000) (below the 60 s a replay waits for a worker)");
    }
    UNICORN_RETURN_IF_ERROR(r.Get(n, "busy_heartbeat_max_ms", "control.busy_heartbeat_max_ms",
                                  &k.busy_heartbeat_max_ms));
    if (k.busy_heartbeat_max_ms < 0)
      return r.Error("control.busy_heartbeat_max_ms", "must be >= 0");
  }

  if (YAML::Node n = root["profile"]) {
    UNICORN_RETURN_IF_ERROR(r.CheckKeys(n, "profile", {"sample_every_n_steps", "requests"}));
    auto& k = c.profile;
    UNICORN_RETURN_IF_ERROR(
        r.Get(n, "sample_every_n_steps", "profile.sample_every_n_steps", &k.sample_every_n_steps));
    UNICORN_RETURN_IF_ERROR(r.Get(n, "requests", "profile.requests", &k.requests));
    if (k.sample_every_n_steps < 0) return r.Error("profile.sample_every_n_steps", "must be >= 0");
    if (!(k.requests >= 0 && k.requests <= 1)) {
      return r.Error("profile.requests", "must be in [0, 1]");
    }
  }

  YAML::Node workers = root["workers"];
  if (!workers || !workers.IsMap() || workers.size() == 0) {
    return r.Error("workers", "missing (a mapping of worker name to its settings)");
  }
  for (const auto& kv : workers) {
    WorkerConfig w;
    w.name = kv.first.as<std::string>();
    std::string key = "workers." + w.name;
    UNICORN_RETURN_IF_ERROR(r.CheckKeys(
        kv.second, key,
        {"kind", "backend", "device", "allow_cpu_fallback", "threads", "kernels", "standby_for"}));
    UNICORN_RETURN_IF_ERROR(r.Get(kv.second, "standby_for", key + ".standby_for", &w.standby_for));
    UNICORN_RETURN_IF_ERROR(r.Get(kv.second, "kind", key + ".kind", &w.kind));
    UNICORN_RETURN_IF_ERROR(r.Get(kv.second, "backend", key + ".backend", &w.backend));
    UNICORN_RETURN_IF_ERROR(r.Get(kv.second, "device", key + ".device", &w.device));
    UNICORN_RETURN_IF_ERROR(
        r.Get(kv.second, "allow_cpu_fallback", key + ".allow_cpu_fallback", &w.allow_cpu_fallback));
    UNICORN_RETURN_IF_ERROR(r.Get(kv.second, "threads", key + ".threads", &w.threads));
    if (w.kind == "npu") {
      if (w.backend.empty()) w.backend = "cpu";
      if (w.backend != "cpu" && w.backend != "xrt") {
        return r.Error(key + ".backend", absl::StrCat("'", w.backend, "': expected cpu or xrt"));
      }
    } else if (w.kind == "gpu") {
      if (w.backend.empty()) w.backend = "vulkan";
      if (w.backend != "vulkan" && w.backend != "cpu") {
        return r.Error(key + ".backend", absl::StrCat("'", w.backend, "': expected vulkan or cpu"));
      }
    } else {
      return r.Error(key + ".kind", absl::StrCat("'", w.kind, "': expected npu or gpu"));
    }
    if (w.threads < 0) return r.Error(key + ".threads", "must be >= 0");
    if (YAML::Node ks = kv.second["kernels"]) {
      if (w.kind != "npu") return r.Error(key + ".kernels", "only npu workers take kernels");
      if (!ks.IsSequence()) return r.Error(key + ".kernels", "expected a list of kernels");
      for (size_t i = 0; i < ks.size(); ++i) {
        std::string kk = absl::StrCat(key, ".kernels[", i, "]");
        NpuKernelConfig k;
        UNICORN_RETURN_IF_ERROR(
            r.CheckKeys(ks[i], kk, {"name", "xclbin", "insts", "kernel", "dtype", "m", "k", "n"}));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "name", kk + ".name", &k.name));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "xclbin", kk + ".xclbin", &k.xclbin));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "insts", kk + ".insts", &k.insts));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "kernel", kk + ".kernel", &k.kernel));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "dtype", kk + ".dtype", &k.dtype));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "m", kk + ".m", &k.m));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "k", kk + ".k", &k.k));
        UNICORN_RETURN_IF_ERROR(r.Get(ks[i], "n", kk + ".n", &k.n));
        if (k.xclbin.empty() || k.insts.empty()) {
          return r.Error(kk, "needs xclbin and insts paths");
        }
        if (k.dtype != "bf16" && k.dtype != "int8") {
          return r.Error(kk + ".dtype", absl::StrCat("'", k.dtype, "': expected bf16 or int8"));
        }
        if (k.m <= 0 || k.k <= 0 || k.n <= 0) return r.Error(kk, "m, k and n must be positive");
        if (k.name.empty()) k.name = absl::StrCat("gemm_", k.m, "x", k.k, "x", k.n, "_", k.dtype);
        k.xclbin = Resolve(base, k.xclbin);
        k.insts = Resolve(base, k.insts);
        w.kernels.push_back(std::move(k));
      }
    }
    c.workers.push_back(std::move(w));
  }

  YAML::Node plan = root["plan"];
  if (!plan) return r.Error("plan", "missing (where embedding, layers and lm_head run)");
  UNICORN_RETURN_IF_ERROR(r.CheckKeys(plan, "plan", {"embedding", "lm_head", "vision", "layers"}));
  UNICORN_RETURN_IF_ERROR(r.Get(plan, "embedding", "plan.embedding", &c.plan.embedding));
  UNICORN_RETURN_IF_ERROR(r.Get(plan, "lm_head", "plan.lm_head", &c.plan.lm_head));
  UNICORN_RETURN_IF_ERROR(r.Get(plan, "vision", "plan.vision", &c.plan.vision));
  YAML::Node layers = plan["layers"];
  if (!layers || !layers.IsSequence() || layers.size() == 0) {
    return r.Error("plan.layers", "missing (a list of {layers, attention, ffn})");
  }
  for (size_t i = 0; i < layers.size(); ++i) {
    PlanRange pr;
    UNICORN_RETURN_IF_ERROR(ParseRange(r, layers[i], absl::StrCat("plan.layers[", i, "]"), &pr));
    c.plan.layers.push_back(pr);
  }
  // Every worker the plan names must exist.
  auto check_worker = [&](const std::string& key, const std::string& name) -> Status {
    if (name.empty()) return r.Error(key, "missing worker name");
    if (!c.FindWorker(name)) return r.Error(key, absl::StrCat("unknown worker '", name, "'"));
    return absl::OkStatus();
  };
  UNICORN_RETURN_IF_ERROR(check_worker("plan.embedding", c.plan.embedding));
  UNICORN_RETURN_IF_ERROR(check_worker("plan.lm_head", c.plan.lm_head));
  if (!c.plan.vision.empty()) UNICORN_RETURN_IF_ERROR(check_worker("plan.vision", c.plan.vision));
  for (size_t i = 0; i < c.plan.layers.size(); ++i) {
    std::string key = absl::StrCat("plan.layers[", i, "]");
    UNICORN_RETURN_IF_ERROR(check_worker(key + ".attention", c.plan.layers[i].attention));
    UNICORN_RETURN_IF_ERROR(check_worker(key + ".ffn", c.plan.layers[i].ffn));
  }
  // Standbys: each names a plan worker, is not in the plan itself, and no
  // worker has two (the coordinator moves parts between exactly two).
  std::set<std::string> in_plan = {c.plan.embedding, c.plan.lm_head, c.plan.vision};
  for (const auto& l : c.plan.layers) {
    in_plan.insert(l.attention);
    in_plan.insert(l.ffn);
  }
  std::set<std::string> covered;
  for (const auto& w : c.workers) {
    if (w.standby_for.empty()) continue;
    std::string key = "workers." + w.name + ".standby_for";
    if (!c.FindWorker(w.standby_for)) {
      return r.Error(key, absl::StrCat("unknown worker '", w.standby_for, "'"));
    }
    if (in_plan.count(w.name)) {
      return r.Error(key,
                     "a standby must not be named by the plan (it runs parts only after a "
                     "failover)");
    }
    if (!in_plan.count(w.standby_for)) {
      return r.Error(key, absl::StrCat("'", w.standby_for, "' runs nothing in the plan"));
    }
    if (!covered.insert(w.standby_for).second) {
      return r.Error(key, absl::StrCat("'", w.standby_for, "' already has a standby"));
    }
  }
  return c;
}

StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return ErrnoError(absl::StrCat("[config] open(", path, ")"), errno);
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseConfig(ss.str(), fs::absolute(path).string());
}

}  // namespace unicorn
