// unicorn-coordinator: serves clients over gRPC and drives the device workers
// over ZeroMQ. Usage: unicorn-coordinator --config configs/default.yaml
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <thread>

#include "CLI/CLI.hpp"
#include "common/config.h"
#include "common/daemon.h"
#include "common/log.h"
#include "coordinator/grpc_service.h"
#include "coordinator/worker_registry.h"

namespace unicorn {
namespace {

int Main(const std::string& config_path) {
  InitLogging("coordinator");
  std::atomic<bool>& stop = InstallStopHandlers();
  auto config = LoadConfig(config_path);
  if (!config.ok()) {
    LOG_ERROR("{}", config.status().message());
    return 2;
  }
  if (Status s = EnsurePrivateDir(config->runtime_dir); !s.ok()) {
    LOG_ERROR("{}", s.message());
    return 2;
  }

  WorkerRegistry registry(*config);
  if (Status s = registry.Start(); !s.ok()) {
    LOG_ERROR("{}", s.message());
    return 1;
  }

  UnicornService service(*config, registry);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(config->coordinator.grpc_address, grpc::InsecureServerCredentials(),
                           &bound_port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    LOG_ERROR("[coordinator] cannot listen on {} (in use, or not a valid address)",
              config->coordinator.grpc_address);
    registry.Stop(false);
    return 1;
  }
  LOG_INFO("[coordinator] gRPC on {}; model {}", config->coordinator.grpc_address, config->model);
  auto* health = server->GetHealthCheckService();
  NotifyReady("serving gRPC; waiting for workers");

  bool was_serving = false;
  while (!stop.load()) {
    bool serving = registry.Serving();
    if (serving != was_serving) {
      health->SetServingStatus(serving);
      health->SetServingStatus("unicorn.v1.Unicorn", serving);
      LOG_INFO("[coordinator] {}", serving ? "SERVING: every stage has a live worker"
                                           : "NOT_SERVING: a stage has no live worker");
      NotifyStatus(serving ? "serving" : "waiting for workers");
      was_serving = serving;
    }
    NotifyWatchdog();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  NotifyStopping();
  LOG_INFO("[coordinator] stopping");
  health->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
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
