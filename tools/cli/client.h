// A small synchronous client of the coordinator's gRPC API, shared by the
// client subcommands. Errors come back as Status with the server's message.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "proto/unicorn/service.grpc.pb.h"

namespace unicorn::cli {

class Client {
 public:
  explicit Client(const std::string& address);

  // grpc.health.v1: true when the server answers SERVING within `timeout`.
  bool Serving(std::chrono::milliseconds timeout);
  StatusOr<v1::ModelInfoResponse> ModelInfo();
  // Streams a generation; `on_token` gets every response in order.
  Status Generate(const v1::GenerateRequest& req,
                  const std::function<void(const v1::GenerateResponse&)>& on_token);

  // Streams the answer to a conversation (the chat template is applied).
  // When `cancel` becomes true the call is cancelled (CANCELLED comes back).
  Status Chat(const v1::ChatRequest& req,
              const std::function<void(const v1::GenerateResponse&)>& on_token,
              const std::atomic<bool>* cancel = nullptr);
  StatusOr<v1::StatsResponse> Stats();

  // The trace of a request or a time window (Chrome JSON + text summary).
  StatusOr<v1::ProfileResponse> Profile(const v1::ProfileRequest& req);

  const std::string& address() const { return address_; }

 private:
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Unicorn::Stub> stub_;
};

// --server if given, else the gRPC address of configs/default.yaml, else the
// built-in default (127.0.0.1:50051).
std::string ServerAddress(const std::string& flag);
// The OpenAI-compatible API's base URL of the default config
// ("http://127.0.0.1:8080").
std::string DefaultHttpUrl();

}  // namespace unicorn::cli
