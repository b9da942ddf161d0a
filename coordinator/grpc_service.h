// The gRPC client service. It only translates: requests become calls on the
// coordinator's components, their results and statuses become responses
// (statuses through ToGrpc(), in one place).
#pragma once

#include <memory>

#include "common/config.h"
#include "coordinator/worker_registry.h"
#include "proto/unicorn/service.grpc.pb.h"

namespace unicorn {

class UnicornService final : public unicorn::v1::Unicorn::CallbackService {
 public:
  UnicornService(const Config& config, const WorkerRegistry& registry)
      : config_(config), registry_(registry) {}

  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* ctx,
                                      const v1::ModelInfoRequest* req,
                                      v1::ModelInfoResponse* resp) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx, const v1::StatsRequest* req,
                                  v1::StatsResponse* resp) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* ctx,
                                                           const v1::GenerateRequest* req) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Chat(grpc::CallbackServerContext* ctx,
                                                       const v1::ChatRequest* req) override;

 private:
  const Config& config_;
  const WorkerRegistry& registry_;
};

}  // namespace unicorn
