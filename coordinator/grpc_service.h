// The gRPC client service. It only translates: requests become engine and
// tokenizer calls (checks in coordinator/request_translate.h), events become responses, statuses
// map through ToGrpc() in one place (coordinator/grpc_status.h).
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <utility>

#include "common/config.h"
#include "coordinator/engine.h"
#include "coordinator/pipeline_executor.h"
#include "coordinator/request_translate.h"
#include "coordinator/trace_export.h"
#include "coordinator/worker_registry.h"
#include "model/gemma3_config.h"
#include "model/tokenizer.h"
#include "proto/unicorn/service.grpc.pb.h"

namespace unicorn {

// Engine hooks backed by model/sampler.h and the tokenizer's stream decoder.
EngineOptions MakeEngineOptions(const Tokenizer& tokenizer);

// What the served model and the config's plan can do with images.
VisionSupport VisionSupportOf(const Config& config, const Gemma3Config& model);

class UnicornService final : public unicorn::v1::Unicorn::CallbackService {
 public:
  UnicornService(const Config& config, const Gemma3Config& model, const Tokenizer& tokenizer,
                 Engine& engine, const WorkerRegistry& registry, const PipelineExecutor* pipeline,
                 std::string plan_summary, ServiceLimits limits = {})
      : config_(config),
        model_(model),
        tokenizer_(tokenizer),
        engine_(engine),
        registry_(registry),
        pipeline_(pipeline),
        plan_summary_(std::move(plan_summary)),
        limits_(limits),
        vision_(VisionSupportOf(config, model)) {}

  grpc::ServerUnaryReactor* ModelInfo(grpc::CallbackServerContext* ctx,
                                      const v1::ModelInfoRequest* req,
                                      v1::ModelInfoResponse* resp) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx, const v1::StatsRequest* req,
                                  v1::StatsResponse* resp) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* ctx,
                                     const v1::TokenizeRequest* req,
                                     v1::TokenizeResponse* resp) override;
  grpc::ServerUnaryReactor* Cancel(grpc::CallbackServerContext* ctx, const v1::CancelRequest* req,
                                   v1::CancelResponse* resp) override;
  grpc::ServerUnaryReactor* Profile(grpc::CallbackServerContext* ctx, const v1::ProfileRequest* req,
                                    v1::ProfileResponse* resp) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* ctx,
                                                           const v1::GenerateRequest* req) override;
  grpc::ServerWriteReactor<v1::GenerateResponse>* Chat(grpc::CallbackServerContext* ctx,
                                                       const v1::ChatRequest* req) override;

  // Where Profile finds spans, and how it names the pipeline's stages. Without
  // it, Profile answers FAILED_PRECONDITION.
  void SetProfiler(const trace::Ring* ring, std::vector<StageLabel> stages) {
    ring_ = ring;
    stages_ = std::move(stages);
  }

 private:
  // The client's deadline (if any) becomes the engine request's.
  static void SetDeadline(grpc::CallbackServerContext* ctx, EngineRequest* r);
  grpc::ServerWriteReactor<v1::GenerateResponse>* Start(EngineRequest req,
                                                        const std::string& client_id);

  const Config& config_;
  const Gemma3Config& model_;
  const Tokenizer& tokenizer_;
  Engine& engine_;
  const WorkerRegistry& registry_;
  const PipelineExecutor* pipeline_;
  std::string plan_summary_;
  ServiceLimits limits_;
  VisionSupport vision_;

  // Client request ids of the most recent requests, for Cancel and Profile.
  // Bounded: a long-running coordinator sees an unbounded number of ids, and
  // a Profile by id only finds spans of recent requests anyway (the ring).
  static constexpr size_t kMaxClientIds = 4096;
  void RememberClientId(const std::string& client_id, uint64_t id);
  uint64_t FindClientId(const std::string& client_id);  // 0 = unknown
  std::mutex ids_mu_;
  std::map<std::string, uint64_t> client_ids_;             // guarded: request_id -> engine id
  std::deque<std::pair<std::string, uint64_t>> id_order_;  // guarded: oldest first
  const trace::Ring* ring_ = nullptr;
  std::vector<StageLabel> stages_;
};

}  // namespace unicorn
