#include "common/worker_main.h"

#include "CLI/CLI.hpp"
#include "common/daemon.h"
#include "common/log.h"
#include "common/stage_server.h"

namespace unicorn {

int RunWorkerMain(const WorkerSpec& spec, int argc, char** argv) {
  CLI::App app{spec.description};
  std::string config_path = "configs/default.yaml";
  std::string name = spec.kind;
  app.add_option("-c,--config", config_path, "config file")->check(CLI::ExistingFile);
  app.add_option("-n,--name", name, "this worker's name in the config's workers section");
  CLI11_PARSE(app, argc, argv);

  InitLogging(absl::StrCat(spec.kind, "-worker"));
  std::atomic<bool>& stop = InstallStopHandlers();
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    LOG_ERROR("{}", config.status().message());
    return 2;
  }
  const WorkerConfig* wc = config->FindWorker(name);
  if (wc == nullptr || wc->kind != spec.kind) {
    LOG_ERROR("[worker] {}: no {} worker named '{}' under workers:", config->source_path, spec.kind,
              name);
    return 2;
  }
  if (Status s = EnsurePrivateDir(config->runtime_dir); !s.ok()) {
    LOG_ERROR("{}", s.message());
    return 2;
  }
  auto backend = spec.open_backend(*wc);
  if (!backend.ok()) {
    LOG_ERROR("{}", backend.status().message());
    return 1;
  }
  LOG_INFO("[worker] '{}' backend {} on {}", name, backend->backend, backend->device);

  wire::Hello hello;
  hello.set_worker_name(name);
  hello.set_kind(spec.kind);
  hello.set_backend(backend->backend);
  hello.set_device(backend->device);
  hello.set_requested_backend(wc->backend);
  hello.set_backend_note(backend->note);
  WorkerLink link(*config, hello);
  if (Status s = link.Start(); !s.ok()) {
    LOG_ERROR("{}", s.message());
    return 1;
  }
  StageServer server(link, spec.load_shard, spec.on_arena);
  NotifyReady(absl::StrCat("backend ", backend->backend, " on ", backend->device));
  while (!stop.load() && link.Poll(50)) {
    server.Tick();
    NotifyWatchdog();
  }
  NotifyStopping();
  LOG_INFO("[worker] '{}' stopping", name);
  return 0;
}

}  // namespace unicorn
