// A small synchronous client of the coordinator's gRPC API, shared by the
// client subcommands. Errors come back as Status with the server's message.
#pragma once

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
  Status Chat(const v1::ChatRequest& req,
              const std::function<void(const v1::GenerateResponse&)>& on_token);

  // The trace of a request or a time window (Chrome JSON + text summary).
  StatusOr<v1::ProfileResponse> Profile(const v1::ProfileRequest& req);

  const std::string& address() const { return address_; }

 private:
  std::string address_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Unicorn::Stub> stub_;
};

}  // namespace unicorn::cli
