#include "coordinator/pipeline_executor.h"

#include <sched.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <set>

#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/shm_ref.h"
#include "common/trace.h"
#include "shared_mem/slot.h"
#include "shared_mem/tensor_desc.h"

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
  if (const shm::Region* r = arena_.region("image")) image_region_ = r->id();
  if (const shm::Region* r = arena_.region("pixels")) pixels_region_ = r->id();
  for (const Stage& st : plan_.stages) stage_process_.push_back(trace::ProcessId(st.worker));
  for (const WorkerConfig& w : config_.workers) {
    if (w.standby_for.empty()) continue;
    partner_[w.standby_for] = w.name;
    partner_[w.name] = w.standby_for;
    active_[w.standby_for] = w.standby_for;
  }
}

std::string PipelineExecutor::WorkerFor(const std::string& role) const {
  auto it = active_.find(role);
  return it == active_.end() ? role : it->second;
}

std::vector<std::string> PipelineExecutor::Roles() const {
  std::vector<std::string> roles = plan_.Workers();
  if (!plan_.vision.empty() && std::find(roles.begin(), roles.end(), plan_.vision) == roles.end()) {
    roles.push_back(plan_.vision);
  }
  return roles;
}

std::vector<std::string> PipelineExecutor::ActiveWorkers() const {
  std::vector<std::string> out;
  for (const std::string& role : Roles()) out.push_back(WorkerFor(role));
  return out;
}

std::string PipelineExecutor::RoleOf(const std::string& worker) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const std::string& role : Roles()) {
    if (WorkerFor(role) == worker) return role;
  }
  return "";
}

std::string PipelineExecutor::FailoverSummary() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> moved;
  for (const auto& [role, worker] : active_) {
    if (worker != role) moved.push_back(absl::StrCat(role, "'s parts on ", worker));
  }
  return moved.empty() ? "" : absl::StrCat("failover: ", absl::StrJoin(moved, ", "));
}

void PipelineExecutor::CheckFailover() {
  if (partner_.empty()) return;
  std::vector<WorkerState> workers = registry_.Snapshot();
  auto alive = [&](const std::string& name) {
    for (const WorkerState& w : workers) {
      if (w.name == name) return w.alive;
    }
    return false;
  };
  const int64_t now = wire::MonotonicNs();
  const int64_t after_ns = int64_t(config_.control.failover_after_ms) * 1000000;
  std::vector<std::pair<std::string, std::string>> moves;  // role, new worker
  std::vector<std::string> serving;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [role, worker] : active_) {
      auto dead = dead_since_.find(worker);
      if (dead == dead_since_.end() || now - dead->second < after_ns) continue;
      const std::string& other = partner_.at(worker);
      if (!alive(other)) continue;
      LOG_WARN("[pipeline] worker '{}' has been dead for {} ms: moving {}'s parts to '{}'", worker,
               (now - dead->second) / 1000000, role, other);
      worker = other;
      moves.emplace_back(role, other);
      failovers_.fetch_add(1);
    }
    if (moves.empty()) return;
    serving = ActiveWorkers();
  }
  registry_.SetServingWorkers(std::move(serving));
  for (const auto& [role, to] : moves) SendLoadShard(role, to);
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

void PipelineExecutor::SendLoadShard(const std::string& role, const std::string& to) {
  const std::string& worker = role;
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
  Status s = registry_.Post(to, wire::Command::kLoadShard, req.SerializeAsString());
  if (!s.ok()) LOG_WARN("[pipeline] LoadShard to '{}': {}", to, s.message());
}

void PipelineExecutor::OnWorker(const WorkerState& w, bool up) {
  const std::string role = RoleOf(w.name);
  if (up) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      dead_since_.erase(w.name);
    }
    if (role.empty()) {
      LOG_INFO("[pipeline] worker '{}' is up and idle: standby for '{}'", w.name,
               partner_.count(w.name) ? partner_.at(w.name) : std::string("?"));
      return;
    }
    SendLoadShard(role, w.name);
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  dead_since_.emplace(w.name, wire::MonotonicNs());  // keeps the first time of death
  if (role.empty()) return;                          // an idle standby held nothing
  // Whatever that worker held (KV caches of every running sequence) is gone,
  // even if it was not the one in flight: the next step must not run on a
  // restarted worker that lacks them. Run() fails with Unavailable until
  // WaitReady() has seen every stage back.
  lost_.store(true);
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
  const std::chrono::microseconds spin(BusyPollUs(config_.control));
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

StatusOr<shm::SlotDescriptor> PipelineExecutor::WriteSlot(uint32_t region, uint32_t slot,
                                                          const float* data, int64_t rows,
                                                          int64_t cols) {
  const shm::Region* r = arena_.region(region);
  if (r == nullptr) return absl::InternalError(absl::StrCat("[pipeline] no region ", region));
  UNICORN_ASSIGN_OR_RETURN(shm::SlotWriter w,
                           shm::SlotWriter::Claim(*r, slot, r->NextWriterGeneration()));
  UNICORN_ASSIGN_OR_RETURN(auto tensor, shm::RowMajor(shm::TensorDType::kF32, {rows, cols}));
  UNICORN_ASSIGN_OR_RETURN(std::span<uint8_t> out, w.BeginWrite(tensor));
  std::memcpy(out.data(), data, size_t(rows * cols) * sizeof(float));
  return w.Commit();
}

void PipelineExecutor::FileWorkerSpans(const wire::StageDone& done, uint16_t process) {
  trace::ThreadState& ts = trace::Current();
  for (const wire::Span& w : done.spans()) {
    trace::Span sp;
    if (!trace::KindFromInt(w.kind(), &sp.kind)) continue;
    sp.start_ns = w.start_ns();
    sp.end_ns = w.end_ns();
    sp.layer = w.layer();
    sp.device = w.device();
    sp.step = ts.step;
    sp.process = process;
    ts.sink->Add(sp);
  }
}

StatusOr<wire::StageDone> PipelineExecutor::RoundTrip(const std::string& role, uint64_t step_id,
                                                      const wire::RunStage& req,
                                                      std::string* worker_out,
                                                      std::chrono::nanoseconds* predicted) {
  std::string worker;
  {
    std::lock_guard<std::mutex> lock(mu_);
    worker = WorkerFor(role);
    *worker_out = worker;
    inflight_worker_ = worker;
    inflight_step_ = step_id;
    inflight_done_ = false;
    inflight_error_ = absl::OkStatus();
    reply_ready_.store(false);
  }
  const auto posted_at = std::chrono::steady_clock::now();
  const std::chrono::nanoseconds expect = predicted ? *predicted : std::chrono::nanoseconds(0);
  if (expect.count() > 0) {  // the reply's arrival, within busy_poll_us
    const int64_t due = trace::NowNs() + expect.count(), spin = busy_ns();
    registry_.ExpectTraffic(due - spin, due + spin);
  }
  Status posted = registry_.Post(worker, wire::Command::kRunStage, req.SerializeAsString());
  if (!posted.ok()) return posted;  // Unavailable: the engine replays once it is back
  hops_.fetch_add(1);
  auto done = Await(posted_at, expect);
  if (done.ok() && predicted != nullptr) *predicted = std::chrono::steady_clock::now() - posted_at;
  return done;
}

Status PipelineExecutor::EncodeImage(std::span<const float> pixels, std::vector<float>* embeds) {
  if (plan_.vision.empty()) {
    return absl::InvalidArgumentError("[pipeline] the plan names no vision worker (plan.vision)");
  }
  if (image_region_ == 0 || pixels_region_ == 0 || !model_.has_vision) {
    return absl::InvalidArgumentError("[pipeline] the model has no vision tower");
  }
  if (lost_.load()) {
    return absl::UnavailableError("[pipeline] a worker was lost since the last replay");
  }
  const bool traced = trace::Enabled();
  const int64_t start = trace::NowNs();
  UNICORN_ASSIGN_OR_RETURN(shm::SlotDescriptor px,
                           WriteSlot(pixels_region_, 0, pixels.data(), 1, int64_t(pixels.size())));
  wire::RunStage req;
  req.set_shard_id(shard_id_);
  req.set_vision(true);
  req.set_profile(traced);
  const uint64_t step_id = ++next_step_;
  req.set_step_id(step_id);
  *req.mutable_pixels() = ToShmRef(px);
  req.set_output_region(image_region_);
  req.set_output_slot(0);
  std::string worker;  // the vision worker, or its standby after a failover
  UNICORN_ASSIGN_OR_RETURN(wire::StageDone done,
                           RoundTrip(plan_.vision, step_id, req, &worker, nullptr));
  if (traced) FileWorkerSpans(done, trace::ProcessId(plan_.vision));
  if (!done.error().empty()) {
    auto code = static_cast<absl::StatusCode>(done.error_code());
    if (code == absl::StatusCode::kFailedPrecondition) code = absl::StatusCode::kUnavailable;
    return Status(code, absl::StrCat("[pipeline] vision on '", worker, "': ", done.error()));
  }
  UNICORN_ASSIGN_OR_RETURN(shm::SlotView view, shm::BeginRead(arena_, FromShmRef(done.output())));
  const size_t want = size_t(model_.vision.mm_tokens_per_image) * size_t(model_.hidden_size);
  if (view.tensor.byte_size != want * sizeof(float)) {
    shm::Release(view);
    return absl::InternalError(absl::StrCat("[pipeline] image slot holds ", view.tensor.byte_size,
                                            " bytes, expected ", want * sizeof(float)));
  }
  const size_t old = embeds->size();
  embeds->resize(old + want);
  std::memcpy(embeds->data() + old, view.data, want * sizeof(float));
  Status read = shm::EndRead(view);
  shm::Release(view);
  UNICORN_RETURN_IF_ERROR(read);
  if (traced) trace::Record(trace::Kind::kVisionHop, start, trace::NowNs());
  return absl::OkStatus();
}

Status PipelineExecutor::Run(std::span<const SeqStep> batch, LogitsFn use_logits) {
  const bool traced = trace::Enabled();
  const int64_t run_start = trace::NowNs();
  if (last_run_end_ns_ > 0) think_ns_ = run_start - last_run_end_ns_;
  const int64_t build_start = traced ? trace::NowNs() : 0;
  wire::RunStage req;
  int rows = 0, logit_rows = 0, image_rows = 0;
  bool greedy = true;  // every row that wants logits: only its argmax is needed
  const size_t H = size_t(model_.hidden_size);
  step_images_.clear();
  for (const SeqStep& s : batch) {
    wire::SeqRows* r = req.add_seqs();
    r->set_seq_id(s.seq_id);
    r->set_start_pos(s.start_pos);
    r->set_n_tokens(int(s.tokens.size()));
    r->set_want_logits(s.want_logits);
    r->set_image_rows(s.image_rows);
    for (int t : s.tokens) req.add_token_ids(t);
    rows += int(s.tokens.size());
    logit_rows += s.want_logits ? 1 : 0;
    greedy = greedy && (!s.want_logits || s.greedy);
    if (s.image_rows > 0) {
      if (s.image_embeds.size() != size_t(s.image_rows) * H) {
        return absl::InvalidArgumentError(absl::StrCat("[pipeline] ", s.image_rows,
                                                       " image rows but ", s.image_embeds.size(),
                                                       " floats of image embeddings"));
      }
      step_images_.insert(step_images_.end(), s.image_embeds.begin(), s.image_embeds.end());
      image_rows += s.image_rows;
    }
  }
  if (rows > options_.max_step_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[pipeline] step of ", rows, " tokens exceeds max_step_tokens ", options_.max_step_tokens));
  }
  if (image_rows > 0) {
    // The step's image rows, for the embedding stage: slot 1 of the image
    // region (slot 0 is the vision worker's output).
    if (image_region_ == 0) {
      return absl::InvalidArgumentError("[pipeline] image rows, but the arena has no image region");
    }
    UNICORN_ASSIGN_OR_RETURN(shm::SlotDescriptor d, WriteSlot(image_region_, 1, step_images_.data(),
                                                              image_rows, int64_t(H)));
    *req.mutable_image_embeds() = ToShmRef(d);
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
    std::string worker;  // st.worker's, or its standby's after a failover
    req.set_first_part(st.first_part);
    req.set_last_part(st.last_part);
    req.set_embedding(st.embedding);
    req.set_lm_head(st.lm_head);
    req.set_argmax(st.lm_head && greedy);
    if (i > 0) *req.mutable_hidden() = done.output();
    req.set_output_region(st.lm_head ? logits_region_ : act_region_);
    req.set_output_slot(st.lm_head ? 0 : uint32_t(i % act_slots_));  // never the input slot
    UNICORN_ASSIGN_OR_RETURN(done,
                             RoundTrip(st.worker, step_id, req, &worker, &last_hop_[{i, rows}]));
    const int64_t hop_end = trace::NowNs();
    if (on_hop_) on_hop_(i, double(hop_end - hop_start) * 1e-9);
    if (traced) {
      trace::Record(trace::Kind::kHop, hop_start, hop_end, 0, int32_t(i));
      FileWorkerSpans(done, stage_process_[i]);
    }
    if (!done.error().empty()) {
      auto code = static_cast<absl::StatusCode>(done.error_code());
      // A worker that lost its shard (it restarted) cannot continue these
      // sequences: treat it like a loss, so the engine rebuilds them.
      if (code == absl::StatusCode::kFailedPrecondition) code = absl::StatusCode::kUnavailable;
      return Status(code,
                    absl::StrCat("[pipeline] stage ", i, " on '", worker, "': ", done.error()));
    }
  }
  // The last stage wrote the logits of the rows that want them (a step of
  // prefill chunks that all continue later wants none).
  if (logit_rows == 0) return absl::OkStatus();
  // Used in place (16 rows of a 262k vocabulary are 16 MiB: a copy cost
  // milliseconds per step); EndRead then says whether a writer touched them.
  trace::ScopedSpan logits_span(trace::Kind::kLogits);
  UNICORN_ASSIGN_OR_RETURN(shm::SlotView view, shm::BeginRead(arena_, FromShmRef(done.output())));
  // Greedy steps get each row's argmax id (RunStage.argmax), others logits.
  const size_t want = greedy ? size_t(logit_rows) : size_t(logit_rows) * size_t(model_.vocab_size);
  const auto dtype = greedy ? shm::TensorDType::kI32 : shm::TensorDType::kF32;
  if (view.tensor.byte_size != want * 4 || view.tensor.dtype != dtype) {
    shm::Release(view);
    return absl::InternalError(absl::StrCat("[pipeline] logits slot holds ",
                                            shm::TensorString(view.tensor), ", expected ",
                                            greedy ? "i32[" : "f32[", want, "]"));
  }
  StepLogits out;
  if (greedy) {
    out.argmax = std::span<const int32_t>(reinterpret_cast<const int32_t*>(view.data), want);
  } else {
    out.logits = std::span<const float>(reinterpret_cast<const float*>(view.data), want);
  }
  Status used = use_logits(out);
  Status intact = shm::EndRead(view);
  shm::Release(view);
  UNICORN_RETURN_IF_ERROR(intact);
  UNICORN_RETURN_IF_ERROR(used);
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
  std::vector<std::string> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers = ActiveWorkers();
  }
  for (const std::string& w : workers) {
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
  std::vector<std::string> workers;
  {
    std::lock_guard<std::mutex> lock(mu_);
    workers = ActiveWorkers();
  }
  for (const std::string& w : workers) {
    (void)registry_.Post(w, wire::Command::kFreeSequences, all.SerializeAsString());
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> PipelineExecutor::ShardErrors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return shard_errors_;
}

}  // namespace unicorn
