// The OpenAI-compatible HTTP API (cpp-httplib): /v1/chat/completions,
// /v1/completions (both with SSE streaming), /v1/models. It only
// translates: bodies are parsed by openai_protocol.h, validated and turned
// into engine requests by request_builder.h (the same code as the gRPC
// service), and submitted to the same Engine.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "common/status.h"
#include "coordinator/engine.h"
#include "coordinator/request_builder.h"
#include "model/tokenizer.h"

namespace httplib {
class Server;
struct Request;
struct Response;
}  // namespace httplib

namespace unicorn {

struct OpenAiServerOptions {
  std::string host = "127.0.0.1";  // loopback by default
  int port = 8080;                 // 0 = any free port (see port())
  std::string model_id;            // what /v1/models lists and responses name
  std::string model_path;          // also accepted as "model" in requests
  VisionSupport vision;            // what the model can do with images
  ServiceLimits limits;
  int threads = 64;  // concurrent connections (a streaming request holds one)
};

class OpenAiServer {
 public:
  OpenAiServer(OpenAiServerOptions options, Engine& engine, const Tokenizer& tokenizer);
  ~OpenAiServer();  // Stop()

  // Binds and serves on a thread of its own. UNAVAILABLE when the port
  // cannot be bound.
  Status Start();
  void Stop();
  int port() const { return port_; }

  // "demo" for ".../models/demo", "gemma-3-4b-it-q4_0" for ".../gemma-3-4b-it-q4_0.gguf".
  static std::string ModelIdFromPath(const std::string& path);

 private:
  void Routes();
  // POST /v1/chat/completions (chat) or /v1/completions.
  void Handle(const httplib::Request& req, httplib::Response& res, bool chat);

  OpenAiServerOptions options_;
  Engine& engine_;
  const Tokenizer& tokenizer_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  int listen_fd_ = -1;  // the listening socket, caught while httplib binds it
  int64_t created_ = 0;
  std::atomic<bool> stopping_ = false;  // open requests give up when set
};

}  // namespace unicorn
