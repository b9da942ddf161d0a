#include "coordinator/grpc_service.h"

#include <deque>
#include <filesystem>

#include "absl/strings/numbers.h"
#include "common/wire.h"
#include "coordinator/grpc_status.h"
#include "coordinator/token_sampler.h"

namespace unicorn {
namespace {

// A stream that ends at once with `status` (for requests refused up front).
class FailedStream : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit FailedStream(const Status& s) { Finish(ToGrpc(s)); }
  void OnDone() override { delete this; }
};

v1::FinishReason ToProto(FinishReason r) {
  switch (r) {
    case FinishReason::kLength:
      return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStop:
      return v1::FINISH_REASON_STOP;
    case FinishReason::kCancelled:
      return v1::FINISH_REASON_CANCELLED;
    default:
      return v1::FINISH_REASON_UNSPECIFIED;
  }
}

// Streams engine events to one client. The engine's sink and the reactor
// share this state, so events that arrive after the client has gone (the
// engine still sends a final event for a cancelled request) are dropped
// safely. One write is in flight at a time; the rest wait in `queue`.
struct StreamState {
  std::recursive_mutex mu;
  grpc::ServerWriteReactor<v1::GenerateResponse>* reactor = nullptr;  // null once done
  std::deque<v1::GenerateResponse> queue;
  bool writing = false;
  bool ended = false;     // the final event arrived
  bool finished = false;  // Finish() was called
  grpc::Status status;    // what to finish with
  std::string request_id;

  void Pump() {  // mu held
    if (reactor == nullptr || finished) return;
    if (!writing && !queue.empty()) {
      writing = true;
      reactor->StartWrite(&queue.front());
    } else if (!writing && ended) {
      finished = true;
      reactor->Finish(status);
    }
  }
};

class GenerateStream : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  GenerateStream(Engine& engine, std::shared_ptr<StreamState> state)
      : engine_(engine), state_(std::move(state)) {
    state_->reactor = this;
  }
  void set_id(uint64_t id) { id_ = id; }
  void Kick() {
    std::lock_guard<std::recursive_mutex> lock(state_->mu);
    state_->Pump();
  }
  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(state_->mu);
    state_->writing = false;
    if (!state_->queue.empty()) state_->queue.pop_front();
    if (!ok) {  // the client went away
      engine_.Cancel(id_);
      if (!state_->finished) {
        state_->finished = true;
        Finish(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      }
      return;
    }
    state_->Pump();
  }
  void OnCancel() override { engine_.Cancel(id_); }
  void OnDone() override {
    {
      std::lock_guard<std::recursive_mutex> lock(state_->mu);
      state_->reactor = nullptr;
    }
    delete this;
  }

 private:
  Engine& engine_;
  std::shared_ptr<StreamState> state_;
  uint64_t id_ = 0;
};

class TextAdapter final : public TextStream {
 public:
  explicit TextAdapter(const Tokenizer& t) : decoder_(t, /*skip_special=*/true) {}
  std::string Push(int token) override { return decoder_.Push(token); }

 private:
  StreamDecoder decoder_;
};

}  // namespace

EngineOptions MakeEngineOptions(const Tokenizer& tokenizer) {
  EngineOptions o;
  o.make_sampler = MakeTokenSampler;
  o.make_text_stream = [&tokenizer]() -> std::unique_ptr<TextStream> {
    return std::make_unique<TextAdapter>(tokenizer);
  };
  return o;
}

VisionSupport VisionSupportOf(const Config& config, const Gemma3Config& model) {
  VisionSupport v;
  std::filesystem::path p(config.model);
  while (!p.empty() && p.filename().empty()) p = p.parent_path();  // trailing '/'
  v.model_name = p.filename().string();
  v.has_vision = model.has_vision;
  v.has_worker = !config.plan.vision.empty();
  v.config = model.vision;
  return v;
}

void UnicornService::SetDeadline(grpc::CallbackServerContext* ctx, EngineRequest* r) {
  auto deadline = ctx->deadline();
  if (deadline != std::chrono::system_clock::time_point::max()) {
    r->deadline = std::chrono::steady_clock::now() + (deadline - std::chrono::system_clock::now());
  }
}

void UnicornService::RememberClientId(const std::string& client_id, uint64_t id) {
  std::lock_guard<std::mutex> lock(ids_mu_);
  client_ids_[client_id] = id;
  id_order_.emplace_back(client_id, id);
  while (id_order_.size() > kMaxClientIds) {
    auto& [old, old_id] = id_order_.front();
    // A reused client id maps to its newest request: keep that one.
    if (auto it = client_ids_.find(old); it != client_ids_.end() && it->second == old_id) {
      client_ids_.erase(it);
    }
    id_order_.pop_front();
  }
}

uint64_t UnicornService::FindClientId(const std::string& client_id) {
  std::lock_guard<std::mutex> lock(ids_mu_);
  auto it = client_ids_.find(client_id);
  return it == client_ids_.end() ? 0 : it->second;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* UnicornService::Start(
    EngineRequest req, const std::string& client_id) {
  auto state = std::make_shared<StreamState>();
  state->request_id = client_id;
  auto* stream = new GenerateStream(engine_, state);
  auto sink = [state](const EngineEvent& e) {
    std::lock_guard<std::recursive_mutex> lock(state->mu);
    if (state->reactor == nullptr || state->ended) return;
    if (e.final && e.reason == FinishReason::kError) {
      state->status = ToGrpc(e.error);
    } else {
      v1::GenerateResponse r;
      r.set_token_id(e.final ? -1 : e.token);
      r.set_text(e.text);
      r.set_logprob(e.logprob);
      r.set_request_id(state->request_id);
      if (e.final) {
        r.set_finish_reason(ToProto(e.reason));
        r.mutable_usage()->set_prompt_tokens(e.prompt_tokens);
        r.mutable_usage()->set_completion_tokens(e.completion_tokens);
      }
      state->queue.push_back(std::move(r));
    }
    if (e.final) state->ended = true;
    state->Pump();
  };
  // Hold the lock over Submit so no event is built before request_id is set:
  // without a client id, responses carry the engine's (what Profile takes).
  std::unique_lock<std::recursive_mutex> id_lock(state->mu);
  auto id = engine_.Submit(std::move(req), sink);
  if (id.ok() && client_id.empty()) state->request_id = std::to_string(*id);
  id_lock.unlock();
  if (!id.ok()) {
    std::lock_guard<std::recursive_mutex> lock(state->mu);
    state->ended = true;
    state->status = ToGrpc(id.status());
    state->Pump();
    return stream;
  }
  stream->set_id(*id);
  if (!client_id.empty()) RememberClientId(client_id, *id);
  stream->Kick();
  return stream;
}

grpc::ServerWriteReactor<v1::GenerateResponse>* UnicornService::Generate(
    grpc::CallbackServerContext* ctx, const v1::GenerateRequest* req) {
  const int64_t start_ns = trace::NowNs();
  auto er = TranslateGenerate(*req, tokenizer_, vision_, limits_);
  if (!er.ok()) return new FailedStream(er.status());
  SetDeadline(ctx, &*er);
  er->trace = req->trace();
  er->tokenize_start_ns = start_ns;  // checks and tokenization
  er->tokenize_end_ns = trace::NowNs();
  return Start(std::move(*er), req->request_id());
}

grpc::ServerWriteReactor<v1::GenerateResponse>* UnicornService::Chat(
    grpc::CallbackServerContext* ctx, const v1::ChatRequest* req) {
  const int64_t start_ns = trace::NowNs();
  auto er = TranslateChat(*req, tokenizer_, vision_, limits_);
  if (!er.ok()) return new FailedStream(er.status());
  SetDeadline(ctx, &*er);
  er->trace = req->trace();
  er->tokenize_start_ns = start_ns;  // checks and the chat template
  er->tokenize_end_ns = trace::NowNs();
  return Start(std::move(*er), req->request_id());
}

grpc::ServerUnaryReactor* UnicornService::Tokenize(grpc::CallbackServerContext* ctx,
                                                   const v1::TokenizeRequest* req,
                                                   v1::TokenizeResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (int(req->text().size()) > limits_.max_prompt_bytes) {
    reactor->Finish(ToGrpc(absl::InvalidArgumentError("text exceeds the prompt limit")));
    return reactor;
  }
  for (int32_t id : tokenizer_.Encode(req->text(), req->add_bos())) resp->add_ids(id);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* UnicornService::Cancel(grpc::CallbackServerContext* ctx,
                                                 const v1::CancelRequest* req,
                                                 v1::CancelResponse* resp) {
  uint64_t id = FindClientId(req->request_id());
  resp->set_found(id != 0 && engine_.Cancel(id));
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* UnicornService::ModelInfo(grpc::CallbackServerContext* ctx,
                                                    const v1::ModelInfoRequest*,
                                                    v1::ModelInfoResponse* resp) {
  resp->set_model_path(config_.model);
  resp->set_architecture(model_.architecture);
  resp->set_num_layers(model_.num_layers);
  resp->set_vocab_size(model_.vocab_size);
  std::string failover = pipeline_ != nullptr ? pipeline_->FailoverSummary() : "";
  resp->set_plan_summary(failover.empty() ? plan_summary_
                                          : absl::StrCat(plan_summary_, " (", failover, ")"));
  resp->set_serving(registry_.Serving());
  std::map<std::string, std::string> errors;
  if (pipeline_ != nullptr) errors = pipeline_->ShardErrors();
  int64_t now = wire::MonotonicNs();
  for (const WorkerState& w : registry_.Snapshot()) {
    v1::WorkerInfo* wi = resp->add_workers();
    wi->set_name(w.name);
    wi->set_kind(w.kind);
    wi->set_backend(w.backend);
    wi->set_device(w.device);
    wi->set_requested_backend(w.requested_backend);
    wi->set_backend_note(w.backend_note);
    wi->set_alive(w.alive);
    wi->set_ready(w.ready);
    wi->set_pid(w.pid);
    wi->set_incarnation(w.incarnation);
    wi->set_heartbeat_rtt_us(w.rtt_us);
    wi->set_last_seen_ms_ago(w.last_seen_ns ? (now - w.last_seen_ns) / 1000000 : -1);
    wi->set_restarts(w.restarts);
    if (const WorkerConfig* wc = config_.FindWorker(w.name)) wi->set_standby_for(wc->standby_for);
    if (pipeline_ != nullptr) wi->set_runs_parts_of(pipeline_->RoleOf(w.name));
    if (auto it = errors.find(w.name); it != errors.end()) wi->set_error(it->second);
  }
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* UnicornService::Profile(grpc::CallbackServerContext* ctx,
                                                  const v1::ProfileRequest* req,
                                                  v1::ProfileResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  if (ring_ == nullptr) {
    reactor->Finish(ToGrpc(absl::FailedPreconditionError("tracing is not set up")));
    return reactor;
  }
  std::vector<trace::Span> spans;
  std::string what;
  if (req->what_case() == v1::ProfileRequest::kSeconds) {
    if (!(req->seconds() > 0 && req->seconds() <= 86400)) {
      reactor->Finish(ToGrpc(absl::InvalidArgumentError("seconds must be in (0, 86400]")));
      return reactor;
    }
    spans = ring_->Since(trace::NowNs() - int64_t(req->seconds() * 1e9));
    what = absl::StrCat("the last ", req->seconds(), " s");
  } else if (req->what_case() == v1::ProfileRequest::kRequestId) {
    uint64_t id = FindClientId(req->request_id());
    if (id == 0 && !absl::SimpleAtoi(req->request_id(), &id)) id = 0;
    if (id == 0) {
      reactor->Finish(ToGrpc(
          absl::NotFoundError(absl::StrCat("request '", req->request_id(), "' is unknown"))));
      return reactor;
    }
    spans = ring_->ForRequest(id);
    what = absl::StrCat("request ", req->request_id());
  } else {
    reactor->Finish(ToGrpc(absl::InvalidArgumentError("name a request_id or seconds")));
    return reactor;
  }
  if (spans.empty()) {
    reactor->Finish(ToGrpc(absl::NotFoundError(
        absl::StrCat("no spans for ", what,
                     ": only sampled steps are traced (config profile.sample_every_n_steps / "
                     "profile.requests), and the ring keeps the most recent ",
                     ring_->capacity(), " spans"))));
    return reactor;
  }
  resp->set_trace_json(ChromeTraceJson(spans, stages_));
  resp->set_summary(TraceSummary(spans, stages_));
  for (const TraceRow& r : Breakdown(spans, stages_).rows) {
    v1::ProfileRow* row = resp->add_rows();
    row->set_name(r.name);
    row->set_level(v1::ProfileRow::Level(int(r.level)));
    row->set_count(r.count);
    row->set_p50_us(r.p50_us);
    row->set_p95_us(r.p95_us);
    row->set_p99_us(r.p99_us);
    row->set_share(r.share);
  }
  resp->set_spans(int(spans.size()));
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* UnicornService::Stats(grpc::CallbackServerContext* ctx,
                                                const v1::StatsRequest*, v1::StatsResponse* resp) {
  EngineStats s = engine_.GetStats();
  resp->set_requests_total(s.requests_total);
  resp->set_requests_running(s.running);
  resp->set_requests_waiting(s.waiting);
  resp->set_prompt_tokens_total(s.prompt_tokens);
  resp->set_generated_tokens_total(s.generated_tokens);
  resp->set_replays_total(s.replays);
  if (pipeline_ != nullptr) {
    resp->set_hops_total(pipeline_->hops());
    resp->set_failovers_total(pipeline_->failovers());
  }
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace unicorn
