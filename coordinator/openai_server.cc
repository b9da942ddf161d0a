#include "coordinator/openai_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <mutex>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "coordinator/openai_protocol.h"

namespace unicorn {
namespace {

using nlohmann::json;

// The events of one request, handed from the engine thread (which must not
// block) to the HTTP thread that answers it.
struct Pending {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<EngineEvent> events;
  uint64_t id = 0;
  bool sent_role = false;  // streaming chat: the first chunk carries the role
  std::string text;        // non-streaming: the answer so far

  // The next event, or false after `timeout` without one.
  bool Next(EngineEvent* e, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mu);
    if (!cv.wait_for(lock, timeout, [&] { return !events.empty(); })) return false;
    *e = std::move(events.front());
    events.pop_front();
    return true;
  }
};

std::atomic<uint64_t> next_response = 1;

void SendJson(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void SendError(httplib::Response& res, const Status& s) {
  openai::ApiError e = openai::ToApiError(s);
  SendJson(res, e.http_status, e.body);
}

constexpr auto kPoll = std::chrono::milliseconds(100);

}  // namespace

OpenAiServer::OpenAiServer(OpenAiServerOptions options, Engine& engine, const Tokenizer& tokenizer)
    : options_(std::move(options)),
      engine_(engine),
      tokenizer_(tokenizer),
      server_(std::make_unique<httplib::Server>()),
      created_(int64_t(std::time(nullptr))) {
  if (options_.model_id.empty()) options_.model_id = ModelIdFromPath(options_.model_path);
}

OpenAiServer::~OpenAiServer() { Stop(); }

std::string OpenAiServer::ModelIdFromPath(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing '/'
  std::string id = p.extension() == ".gguf" ? p.stem().string() : p.filename().string();
  return id.empty() ? "unicorn" : id;
}

Status OpenAiServer::Start() {
  int threads = options_.threads;
  server_->new_task_queue = [threads] { return new httplib::ThreadPool(size_t(threads)); };
  // Images arrive base64-encoded in the body (4 bytes per 3).
  const ServiceLimits& l = options_.limits;
  server_->set_payload_max_length(
      std::max(size_t(l.max_prompt_bytes) * 32,
               size_t(l.max_prompt_bytes) * 2 +
                   size_t(l.max_images) * size_t(l.max_image_bytes) * 4 / 3 + (1 << 20)));
  Routes();
  // cpp-httplib listens with a backlog of 5 (fixed when Debian built it): a
  // burst of clients connecting at once (16-32 in a load test) overflows it,
  // and their connections wait for a SYN retry (1 s) or are reset. The
  // listening socket is caught as it is made and given the system's limit.
  server_->set_socket_options([this](socket_t sock) {
    httplib::default_socket_options(sock);
    listen_fd_ = sock;
  });
  if (options_.port == 0) {
    port_ = server_->bind_to_any_port(options_.host);
  } else if (server_->bind_to_port(options_.host, options_.port)) {
    port_ = options_.port;
  }
  if (port_ <= 0) {
    return absl::UnavailableError(absl::StrCat("[openai] cannot listen on ", options_.host, ":",
                                               options_.port, " (in use, or not an address)"));
  }
  if (listen_fd_ >= 0 && ::listen(listen_fd_, SOMAXCONN) != 0) {
    LOG_WARN("[openai] listen backlog stays at cpp-httplib's 5: {}", std::strerror(errno));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  LOG_INFO("[openai] HTTP API on http://{}:{}/v1 (model \"{}\")", options_.host, port_,
           options_.model_id);
  return absl::OkStatus();
}

void OpenAiServer::Stop() {
  stopping_ = true;
  if (thread_.joinable()) {
    server_->stop();
    thread_.join();
  }
}

void OpenAiServer::Routes() {
  server_->Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200,
             {{"object", "list"},
              {"data", json::array({openai::ModelObject(options_.model_id, created_)})}});
  });
  server_->Get(R"(/v1/models/(.+))", [this](const httplib::Request& req, httplib::Response& res) {
    std::string id = req.matches[1];
    if (id != options_.model_id) {
      SendError(res, absl::NotFoundError(absl::StrCat("model \"", id, "\" does not exist")));
      return;
    }
    SendJson(res, 200, openai::ModelObject(options_.model_id, created_));
  });
  server_->Post("/v1/chat/completions", [this](const httplib::Request& req,
                                               httplib::Response& res) { Handle(req, res, true); });
  server_->Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Handle(req, res, false);
  });
  server_->Get("/health", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, {{"status", "ok"}});
  });
  server_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;  // a handler already answered
    int status = res.status;
    SendError(res,
              status == 404
                  ? absl::NotFoundError(absl::StrCat("no route for ", req.method, " ", req.path))
                  : absl::InvalidArgumentError(absl::StrCat("HTTP ", status, " for ", req.path)));
    res.status = status;
  });
  server_->set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SendError(res, absl::InternalError(absl::StrCat("internal error: ", what)));
      });
}

void OpenAiServer::Handle(const httplib::Request& req, httplib::Response& res, bool chat) {
  auto parsed =
      chat ? openai::ParseChatRequest(req.body) : openai::ParseCompletionRequest(req.body);
  if (!parsed.ok()) return SendError(res, parsed.status());
  if (parsed->model != options_.model_id && parsed->model != options_.model_path) {
    Status s = absl::NotFoundError(absl::StrCat("model \"", parsed->model,
                                                "\" does not exist; this server serves \"",
                                                options_.model_id, "\""));
    s.SetPayload("unicorn.openai.param", absl::Cord("model"));
    openai::ApiError e = openai::ToApiError(s);
    e.body["error"]["code"] = "model_not_found";  // OpenAI's code for this case
    return SendJson(res, e.http_status, e.body);
  }
  const int mm_tokens = options_.vision.config.mm_tokens_per_image;
  auto ids = chat ? EncodeConversation(parsed->messages, options_.limits, tokenizer_, mm_tokens)
                  : EncodeRawPrompt(parsed->prompt, 0, options_.limits, tokenizer_, mm_tokens);
  if (!ids.ok()) {
    Status s = ids.status();
    s.SetPayload("unicorn.openai.param", absl::Cord(chat ? "messages" : "prompt"));
    return SendError(res, s);
  }
  auto er = ToEngineRequest(parsed->params, options_.limits, tokenizer_);
  if (!er.ok()) return SendError(res, er.status());
  if (Status s = PreprocessImages(parsed->images, options_.vision, options_.limits, &*er);
      !s.ok()) {
    s.SetPayload("unicorn.openai.param", absl::Cord("messages"));
    return SendError(res, s);
  }
  er->prompt = std::move(*ids);

  auto pending = std::make_shared<Pending>();
  auto id = engine_.Submit(std::move(*er), [pending](const EngineEvent& e) {
    std::lock_guard<std::mutex> lock(pending->mu);
    pending->events.push_back(e);
    pending->cv.notify_all();
  });
  if (!id.ok()) return SendError(res, id.status());
  pending->id = *id;
  openai::ResponseMeta meta;
  meta.id = absl::StrFormat("%s-%016x", chat ? "chatcmpl" : "cmpl", next_response.fetch_add(1));
  meta.created = int64_t(std::time(nullptr));
  meta.model = options_.model_id;

  if (!parsed->stream) {
    EngineEvent e;
    while (true) {
      if (stopping_) {
        engine_.Cancel(pending->id);
        return SendError(res, absl::UnavailableError("the server is stopping"));
      }
      if (!pending->Next(&e, kPoll)) continue;
      pending->text += e.text;
      if (e.final) break;
    }
    if (e.reason == FinishReason::kError) return SendError(res, e.error);
    openai::Usage u{e.prompt_tokens, e.completion_tokens};
    return SendJson(res, 200,
                    chat ? openai::ChatCompletion(meta, pending->text, e.reason, u)
                         : openai::Completion(meta, pending->text, e.reason, u));
  }

  bool include_usage = parsed->include_usage;
  res.set_header("Cache-Control", "no-cache");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, pending, meta, chat, include_usage](size_t, httplib::DataSink& sink) {
        auto write = [&](const std::string& s) {
          if (sink.write(s.data(), s.size())) return true;
          engine_.Cancel(pending->id);  // the client went away
          return false;
        };
        if (chat && !pending->sent_role) {
          pending->sent_role = true;
          std::string role = "assistant", empty;
          if (!write(openai::SseEvent(openai::ChatChunk(meta, &role, &empty, nullptr)))) {
            return false;
          }
        }
        EngineEvent e;
        while (!pending->Next(&e, kPoll)) {
          if (stopping_ || !sink.is_writable()) {
            engine_.Cancel(pending->id);
            return false;
          }
        }
        if (!e.final) {
          if (e.text.empty()) return true;
          return write(openai::SseEvent(chat ? openai::ChatChunk(meta, nullptr, &e.text, nullptr)
                                             : openai::CompletionChunk(meta, e.text, nullptr)));
        }
        std::string tail;
        if (e.reason == FinishReason::kError) {
          tail = openai::SseEvent(openai::ToApiError(e.error).body);
        } else {
          if (!e.text.empty()) {
            tail += openai::SseEvent(chat ? openai::ChatChunk(meta, nullptr, &e.text, nullptr)
                                          : openai::CompletionChunk(meta, e.text, nullptr));
          }
          tail += openai::SseEvent(chat ? openai::ChatChunk(meta, nullptr, nullptr, &e.reason)
                                        : openai::CompletionChunk(meta, "", &e.reason));
          if (include_usage) {
            tail += openai::SseEvent(
                openai::UsageChunk(meta, chat, {e.prompt_tokens, e.completion_tokens}));
          }
        }
        tail += "data: [DONE]\n\n";
        if (!write(tail)) return false;
        sink.done();
        return true;
      },
      [this, pending](bool success) {
        if (!success) engine_.Cancel(pending->id);
      });
}

}  // namespace unicorn
