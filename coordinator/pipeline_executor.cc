#include "coordinator/pipeline_executor.h"

#include <sched.h>

#include <cstring>
#include <random>
#include <set>

#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/shm_ref.h"
#include "common/trace.h"
#include "shared_mem/slot.h"

namespace unicorn {
namespace {

// Longer gaps between steps are not a decode loop: nothing to spin for.
constexpr int64_t kMaxThinkNs = 2000000;

}  // namespace

PipelineExecutor::PipelineExecutor(const Config& config, const ResolvedPlan& plan,
                                   const Gemma3Config& model, WorkerRegistry& registry,
                                   const shm::Arena& arena, std::string shm_socket,
                                   PipelineOptions options)
    : config_(config),
      plan_(plan),
      model_(model),
      registry_(registry),
      arena_(arena),
      shm_socket_(std::move(shm_socket)),
      options_(options) {
  std::random_device rd;
  shard_id_ = (uint64_t(rd()) << 32) ^ rd();
  act_region_ = arena_.region("act")->id();
  act_slots_ = arena_.region("act")->slot_count();
  logits_region_ = arena_.region("logits")->id();
  for (const Stage& st : plan_.stages) stage_process_.push_back(trace::ProcessId(st.worker));
}

std::vector<std::string> PipelineExecutor::StageNames() const {
  std::vector<std::string> out;
  for (const Stage& st : plan_.stages) {
    std::vector<std::string> parts;
    if (st.embedding) parts.push_back("embedding");
    auto part = [](int p) { return absl::StrCat("L", p / 2, p % 2 == 0 ? " attention" : " ffn"); };
    if (st.last_part - st.first_part == 1) {
      parts.push_back(part(st.first_part));
    } else if (st.last_part > st.first_part) {
      parts.push_back(absl::StrCat(part(st.first_part), " .. ", part(st.last_part - 1)));
    }
    if (st.lm_head) parts.push_back("lm_head");
    out.push_back(absl::StrJoin(parts, " + "));
  }
  return out;
}

void PipelineExecutor::SendLoadShard(const std::string& worker) {
  wire::LoadShard req;
  req.set_shard_id(shard_id_);
  req.set_model_path(config_.model);
  req.set_mmproj_path(config_.mmproj);
  req.set_embedding(plan_.embedding == worker);
  req.set_lm_head(plan_.lm_head == worker);
  req.set_vision(plan_.vision == worker);
  for (int l = 0; l < plan_.num_layers; ++l) {
    if (plan_.attention[size_t(l)] == worker) req.add_attention_layers(l);
    if (plan_.ffn[size_t(l)] == worker) req.add_ffn_layers(l);
  }
  req.set_max_sequences(options_.max_sequences);
  req.set_max_context(options_.max_context);
  req.set_max_step_tokens(options_.max_step_tokens);
  req.set_shm_socket(shm_socket_);
  Status s = registry_.Post(worker, wire::Command::kLoadShard, req.SerializeAsString());
  if (!s.ok()) LOG_WARN("[pipeline] LoadShard to '{}': {}", worker, s.message());
}

void PipelineExecutor::OnWorker(const WorkerState& w, bool up) {
  if (up) {
    SendLoadShard(w.name);
    return;
  }
  // Whatever that worker held (KV caches of every running sequence) is gone,
  // even if it was not the one in flight: the next step must not run on a
  // restarted worker that lacks them. Run() fails with Unavailable until
  // WaitReady() has seen every stage back.
  lost_.store(true);
  std::lock_guard<std::mutex> lock(mu_);
  if (!inflight_done_ && inflight_worker_ == w.name && inflight_step_ != 0) {
    inflight_done_ = true;
    inflight_error_ = absl::UnavailableError(
        absl::StrCat("[pipeline] worker '", w.name, "' was lost during step ", inflight_step_));
    reply_ready_.store(true);
    cv_.notify_all();
  }
}

void PipelineExecutor::OnMessage(const std::string& worker, const wire::Message& m) {
  if (m.command == wire::Command::kShardReady) {
    wire::ShardReady r;
    if (!wire::ParsePayload(m, &r).ok() || r.shard_id() != shard_id_) return;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (r.error().empty()) {
        shard_errors_.erase(worker);
      } else {
        shard_errors_[worker] = r.error();
      }
    }
    if (r.error().empty()) {
      LOG_INFO("[pipeline] worker '{}' loaded its shard in {:.0f} ms ({:.1f} MiB of weights) on {}",
               worker, r.load_ms(), double(r.weight_bytes()) / (1 << 20), r.backend());
    } else {
      LOG_ERROR("[pipeline] worker '{}' could not load its shard: {}", worker, r.error());
    }
    registry_.MarkReady(worker, r.error().empty());
    cv_.notify_all();
    return;
  }
  if (m.command == wire::Command::kStageDone) {
    wire::StageDone d;
    if (!wire::ParsePayload(m, &d).ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    // A reply to anything but the stage in flight is stale (for example from a
    // worker that hung, was declared dead, and woke up): ignore it.
    if (d.step_id() != inflight_step_ || worker != inflight_worker_ || inflight_done_) {
      ++stale_replies_;
      LOG_WARN(
          "[pipeline] ignored a stale StageDone from '{}' (step {}; step {} on '{}' in flight)",
          worker, d.step_id(), inflight_step_, inflight_worker_);
      return;
    }
    inflight_reply_ = std::move(d);
    inflight_done_ = true;
    reply_ready_.store(true);
    cv_.notify_all();
  }
}

StatusOr<wire::StageDone> PipelineExecutor::Await(std::chrono::steady_clock::time_point posted,
                                                  std::chrono::nanoseconds predicted) {
  using Clock = std::chrono::steady_clock;
  const std::chrono::microseconds spin(config_.control.busy_poll_us);
  // Short or unknown hops: spin from the post (the answer usually comes
  // within microseconds), yielding so the ZeroMQ I/O threads get the core;
  // then block. Long hops (a GPU stage of milliseconds): block until `spin`
  // before the reply is due (the notify still wakes us if it comes earlier),
  // so the spin covers its arrival without burning a core for the whole hop.
  auto spin_until = Clock::now() + spin;
  if (spin.count() > 0 && predicted > 2 * spin) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, posted + predicted - spin, [&] { return inflight_done_; });
    }
    spin_until = std::max(Clock::now(), posted + predicted) + spin;
  }
  while (!reply_ready_.load() && Clock::now() < spin_until) sched_yield();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return inflight_done_; });
  if (!inflight_error_.ok()) return inflight_error_;
  return std::move(inflight_reply_);
}

Status PipelineExecutor::Run(std::span<const SeqStep> batch, std::vector<float>* logits) {
  const bool traced = trace::Enabled();
  const int64_t run_start = trace::NowNs();
  if (last_run_end_ns_ > 0) think_ns_ = run_start - last_run_end_ns_;
  const int64_t build_start = traced ? trace::NowNs() : 0;
  wire::RunStage req;
  int rows = 0, logit_rows = 0;
  for (const SeqStep& s : batch) {
    wire::SeqRows* r = req.add_seqs();
    r->set_seq_id(s.seq_id);
    r->set_start_pos(s.start_pos);
    r->set_n_tokens(int(s.tokens.size()));
    r->set_want_logits(s.want_logits);
    for (int t : s.tokens) req.add_token_ids(t);
    rows += int(s.tokens.size());
    logit_rows += s.want_logits ? 1 : 0;
  }
  if (rows > options_.max_step_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[pipeline] step of ", rows, " tokens exceeds max_step_tokens ", options_.max_step_tokens));
  }
  req.set_shard_id(shard_id_);
  req.set_profile(traced);
  const uint64_t step_id = ++next_step_;
  req.set_step_id(step_id);
  if (traced) trace::Record(trace::Kind::kSchedule, build_start, trace::NowNs());

  wire::StageDone done;
  for (size_t i = 0; i < plan_.stages.size(); ++i) {
    const int64_t hop_start = trace::NowNs();  // always: the stage latency metric needs it
    const Stage& st = plan_.stages[i];
    if (lost_.load()) {
      return absl::UnavailableError("[pipeline] a worker was lost since the last replay");
    }
    req.set_first_part(st.first_part);
    req.set_last_part(st.last_part);
    req.set_embedding(st.embedding);
    req.set_lm_head(st.lm_head);
    if (i > 0) *req.mutable_hidden() = done.output();
    req.set_output_region(st.lm_head ? logits_region_ : act_region_);
    req.set_output_slot(st.lm_head ? 0 : uint32_t(i % act_slots_));  // never the input slot
    {
      std::lock_guard<std::mutex> lock(mu_);
      inflight_worker_ = st.worker;
      inflight_step_ = step_id;
      inflight_done_ = false;
      inflight_error_ = absl::OkStatus();
      reply_ready_.store(false);
    }
    const auto posted_at = std::chrono::steady_clock::now();
    std::chrono::nanoseconds& predicted = last_hop_[{i, rows}];
    if (predicted.count() > 0) {  // the reply's arrival, within busy_poll_us
      const int64_t due = trace::NowNs() + predicted.count(), spin = busy_ns();
      registry_.ExpectTraffic(due - spin, due + spin);
    }
    Status posted = registry_.Post(st.worker, wire::Command::kRunStage, req.SerializeAsString());
    if (!posted.ok()) return posted;  // Unavailable: the engine replays once it is back
    hops_.fetch_add(1);
    UNICORN_ASSIGN_OR_RETURN(done, Await(posted_at, predicted));
    predicted = std::chrono::steady_clock::now() - posted_at;
    const int64_t hop_end = trace::NowNs();
    if (on_hop_) on_hop_(i, double(hop_end - hop_start) * 1e-9);
    if (traced) {
      trace::Record(trace::Kind::kHop, hop_start, hop_end, 0, int32_t(i));
      // The worker's spans, filed under this step and that worker.
      trace::ThreadState& ts = trace::Current();
      for (const wire::Span& w : done.spans()) {
        trace::Span sp;
        if (!trace::KindFromInt(w.kind(), &sp.kind)) continue;
        sp.start_ns = w.start_ns();
        sp.end_ns = w.end_ns();
        sp.layer = w.layer();
        sp.device = w.device();
        sp.step = ts.step;
        sp.process = stage_process_[i];
        ts.sink->Add(sp);
      }
    }
    if (!done.error().empty()) {
      auto code = static_cast<absl::StatusCode>(done.error_code());
      // A worker that lost its shard (it restarted) cannot continue these
      // sequences: treat it like a loss, so the engine rebuilds them.
      if (code == absl::StatusCode::kFailedPrecondition) code = absl::StatusCode::kUnavailable;
      return Status(code,
                    absl::StrCat("[pipeline] stage ", i, " on '", st.worker, "': ", done.error()));
    }
  }
  // The last stage wrote the logits of the rows that want them.
  trace::ScopedSpan logits_span(trace::Kind::kLogits);
  UNICORN_ASSIGN_OR_RETURN(shm::SlotView view, shm::BeginRead(arena_, FromShmRef(done.output())));
  const size_t want = size_t(logit_rows) * size_t(model_.vocab_size);
  if (view.tensor.byte_size != want * sizeof(float)) {
    return absl::InternalError(absl::StrCat("[pipeline] logits slot holds ", view.tensor.byte_size,
                                            " bytes, expected ", want * sizeof(float)));
  }
  logits->resize(want);
  std::memcpy(logits->data(), view.data, want * sizeof(float));
  UNICORN_RETURN_IF_ERROR(shm::EndRead(view));
  shm::Release(view);
  // In a decode loop the next step's request follows after as long as this
  // one did (sampling, streaming): the socket thread spins until then.
  last_run_end_ns_ = trace::NowNs();
  if (think_ns_ > 0 && think_ns_ < kMaxThinkNs) {
    registry_.ExpectTraffic(last_run_end_ns_, last_run_end_ns_ + think_ns_ + busy_ns());
  }
  return absl::OkStatus();
}

void PipelineExecutor::Free(uint64_t seq_id) {
  wire::FreeSequences req;
  req.add_seq_ids(seq_id);
  std::string payload = req.SerializeAsString();
  // Every stage's worker keeps per-sequence state (KV caches where it runs
  // attention, scratch elsewhere). A dead worker has none left to free.
  for (const std::string& w : plan_.Workers()) {
    (void)registry_.Post(w, wire::Command::kFreeSequences, payload);
  }
}

Status PipelineExecutor::WaitReady(int timeout_ms) {
  // Cleared first: a loss during the wait sets it again and forces another replay.
  lost_.store(false);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!registry_.Serving()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("[pipeline] the workers were not all ready within ", timeout_ms, " ms"));
    }
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(20));
  }
  // Every surviving attention worker may still hold caches of the failed step.
  wire::FreeSequences all;
  all.set_all(true);
  for (const std::string& w : plan_.Workers()) {
    (void)registry_.Post(w, wire::Command::kFreeSequences, all.SerializeAsString());
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> PipelineExecutor::ShardErrors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shard_errors_;
}

}  // namespace unicorn
