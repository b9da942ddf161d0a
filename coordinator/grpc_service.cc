#include "coordinator/grpc_service.h"

#include "common/wire.h"
#include "coordinator/grpc_status.h"

namespace unicorn {
namespace {

// A stream that ends at once with `status` (for requests refused up front).
class FailedStream : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit FailedStream(const Status& s) { Finish(ToGrpc(s)); }
  void OnDone() override { delete this; }
};

}  // namespace

grpc::ServerUnaryReactor* UnicornService::ModelInfo(grpc::CallbackServerContext* ctx,
                                                    const v1::ModelInfoRequest*,
                                                    v1::ModelInfoResponse* resp) {
  resp->set_model_path(config_.model);
  resp->set_serving(registry_.Serving());
  int64_t now = wire::MonotonicNs();
  for (const WorkerState& w : registry_.Snapshot()) {
    v1::WorkerInfo* wi = resp->add_workers();
    wi->set_name(w.name);
    wi->set_kind(w.kind);
    wi->set_backend(w.backend);
    wi->set_device(w.device);
    wi->set_alive(w.alive);
    wi->set_pid(w.pid);
    wi->set_incarnation(w.incarnation);
    wi->set_heartbeat_rtt_us(w.rtt_us);
    wi->set_last_seen_ms_ago(w.last_seen_ns ? (now - w.last_seen_ns) / 1000000 : -1);
    wi->set_restarts(w.restarts);
  }
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* UnicornService::Stats(grpc::CallbackServerContext* ctx,
                                                const v1::StatsRequest*, v1::StatsResponse*) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* UnicornService::Generate(
    grpc::CallbackServerContext*, const v1::GenerateRequest*) {
  return new FailedStream(absl::UnimplementedError(
      "[coordinator] Generate: this build has no forward pass in the pipeline yet"));
}

grpc::ServerWriteReactor<v1::GenerateResponse>* UnicornService::Chat(grpc::CallbackServerContext*,
                                                                     const v1::ChatRequest*) {
  return new FailedStream(absl::UnimplementedError(
      "[coordinator] Chat: this build has no forward pass in the pipeline yet"));
}

}  // namespace unicorn
