// A small synchronous client of the coordinator's gRPC API, shared by the
// client subcommands. Errors come back as Status with the server's message.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "CLI/CLI.hpp"
#include "common/config.h"
#include "common/status.h"
#include "proto/unicorn/service.grpc.pb.h"

namespace unicorn::cli {

// Where and how to reach the coordinator.
struct Endpoint {
  std::string address;
  bool tls = false;
  std::string ca_pem;       // trusted roots (PEM); empty with tls = the system's roots
  std::string server_name;  // checked against the server's certificate; "" = the address's host
};

// The flags of every gRPC client command (health, models, stats, generate,
// chat, profile), added by AddServerFlags.
struct ServerFlags {
  std::string server;           // -s/--server ADDR
  std::string config;           // --config FILE (default: configs/default.yaml)
  bool tls = false;             // --tls: TLS with the system's roots
  std::string tls_ca;           // --tls-ca FILE
  std::string tls_server_name;  // --tls-server-name NAME
};
void AddServerFlags(CLI::App* cmd, ServerFlags* flags);

// The address is --server, else the config's coordinator.grpc_address, else
// 127.0.0.1:50051. TLS is used when --tls or --tls-ca is given,
// or when the config's coordinator.tls is set and --server is not given or
// names the config's address; then the roots are --tls-ca, else the config's
// tls.ca, else its tls.cert (a self-signed certificate is its own CA).
// Errors: a named file that cannot be read, an explicitly named --config that
// does not load.
StatusOr<Endpoint> ResolveEndpoint(const ServerFlags& flags);

class Client {
 public:
  explicit Client(const std::string& address);  // plaintext
  explicit Client(const Endpoint& endpoint);

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
  bool tls_ = false;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Unicorn::Stub> stub_;
};

// --server if given, else the gRPC address of configs/default.yaml, else the
// built-in default (127.0.0.1:50051).
std::string ServerAddress(const std::string& flag);
// How a client of the coordinator that `config` describes reaches it (what
// `unicorn up` uses to wait for it): its address, and TLS as ResolveEndpoint
// derives it from the config's tls section.
StatusOr<Endpoint> EndpointOf(const Config& config);
// The OpenAI-compatible API's base URL of the default config
// ("http://127.0.0.1:8080").
std::string DefaultHttpUrl();

}  // namespace unicorn::cli
