#include "common/stage_server.h"

#include <cstring>
#include <optional>

#include "common/log.h"
#include "common/shm_ref.h"
#include "common/trace.h"
#include "shared_mem/fd_passing.h"
#include "shared_mem/tensor_desc.h"

namespace unicorn {
namespace {

void ReplyShard(WorkerLink& link, uint64_t shard_id, const Status& s, const StageModel* model,
                double load_ms) {
  wire::ShardReady r;
  r.set_shard_id(shard_id);
  r.set_load_ms(load_ms);
  if (s.ok()) {
    r.set_backend(model->Describe());
    r.set_weight_bytes(model->weight_bytes());
  } else {
    r.set_error(std::string(s.message()));
  }
  (void)link.Send(wire::Command::kShardReady, r);
}

}  // namespace

StageServer::StageServer(WorkerLink& link, ShardLoader loader, ArenaHook on_arena)
    : link_(link), loader_(std::move(loader)), on_arena_(std::move(on_arena)) {
  link_.SetHandler(wire::Command::kLoadShard, [this](const wire::Message& m) { OnLoadShard(m); });
  link_.SetHandler(wire::Command::kRunStage, [this](const wire::Message& m) { OnRunStage(m); });
  link_.SetHandler(wire::Command::kFreeSequences, [this](const wire::Message& m) { OnFree(m); });
}

StageServer::~StageServer() {
  if (pending_) pending_->result.wait();
  if (arena_ && on_arena_) on_arena_(nullptr);
}

void StageServer::OnLoadShard(const wire::Message& m) {
  wire::LoadShard req;
  if (Status s = wire::ParsePayload(m, &req); !s.ok()) {
    ReplyShard(link_, 0, s, nullptr, 0);
    return;
  }
  if (pending_) {
    ReplyShard(link_, req.shard_id(),
               absl::UnavailableError("[worker] still loading the previous shard"), nullptr, 0);
    return;
  }
  if (req.shard_id() == shard_id_ && model_) {  // already loaded (a re-sent request)
    ReplyShard(link_, shard_id_, absl::OkStatus(), model_.get(), 0);
    return;
  }
  // The arena belongs to the coordinator: (re)attach when it names a new socket
  // or restarted (its regions then carry a new generation).
  auto arena = shm::AttachArena(req.shm_socket(), 5000);
  if (!arena.ok()) {
    ReplyShard(link_, req.shard_id(), arena.status(), nullptr, 0);
    return;
  }
  if (arena_ && on_arena_) on_arena_(nullptr);
  arena_ = std::move(*arena);
  if (on_arena_) on_arena_(arena_.get());
  writers_.clear();
  ShardSpec spec;
  spec.model_path = req.model_path();
  spec.mmproj_path = req.mmproj_path();
  spec.embedding = req.embedding();
  spec.lm_head = req.lm_head();
  spec.vision = req.vision();
  spec.attention_layers.assign(req.attention_layers().begin(), req.attention_layers().end());
  spec.ffn_layers.assign(req.ffn_layers().begin(), req.ffn_layers().end());
  spec.max_sequences = req.max_sequences();
  spec.max_context = req.max_context();
  spec.max_step_tokens = req.max_step_tokens();
  model_.reset();
  shard_id_ = 0;
  LOG_INFO("[worker] loading shard {}: {} attention + {} ffn layers{}{}{} of {}", req.shard_id(),
           spec.attention_layers.size(), spec.ffn_layers.size(),
           spec.embedding ? ", embedding" : "", spec.lm_head ? ", lm_head" : "",
           spec.vision ? ", vision tower" : "", spec.model_path);
  pending_ = std::make_unique<Pending>();
  pending_->shard_id = req.shard_id();
  pending_->started_ns = wire::MonotonicNs();
  pending_->result =
      std::async(std::launch::async, [loader = loader_, spec] { return loader(spec); });
}

void StageServer::Tick() {
  if (!pending_ ||
      pending_->result.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
    return;
  }
  auto result = pending_->result.get();
  double ms = double(wire::MonotonicNs() - pending_->started_ns) / 1e6;
  uint64_t id = pending_->shard_id;
  pending_.reset();
  if (!result.ok()) {
    LOG_ERROR("[worker] shard {} failed to load: {}", id, result.status().message());
    ReplyShard(link_, id, result.status(), nullptr, ms);
    return;
  }
  model_ = std::move(*result);
  shard_id_ = id;
  LOG_INFO("[worker] shard {} ready in {:.0f} ms: {}", id, ms, model_->Describe());
  ReplyShard(link_, id, absl::OkStatus(), model_.get(), ms);
}

StatusOr<shm::SlotWriter*> StageServer::Writer(uint32_t region, uint32_t slot) {
  auto key = std::make_pair(region, slot);
  auto it = writers_.find(key);
  // Another worker may have written this slot since: claim it again each time
  // (cheap), which also closes a write a dead writer left open.
  shm::Region* r = arena_->region(region);
  if (r == nullptr) {
    return absl::NotFoundError(absl::StrCat("[worker] output region ", region, " unknown"));
  }
  if (slot >= r->slot_count()) {
    return absl::OutOfRangeError(
        absl::StrCat("[worker] output slot ", slot, " of region ", region, " does not exist"));
  }
  UNICORN_ASSIGN_OR_RETURN(shm::SlotWriter w,
                           shm::SlotWriter::Claim(*r, slot, link_.incarnation()));
  if (it != writers_.end()) writers_.erase(it);
  return &writers_.emplace(key, std::move(w)).first->second;
}

Status StageServer::RunVision(const wire::RunStage& req, wire::StageDone* done) {
  const int64_t in_floats = model_->pixel_floats(), out_floats = model_->image_embed_floats();
  if (in_floats == 0) {
    // The model's own error: no vision tower, or not on this shard.
    return model_->EncodeImage({}, nullptr);
  }
  UNICORN_ASSIGN_OR_RETURN(auto tensor, shm::RowMajor(shm::TensorDType::kF32, {out_floats}));
  UNICORN_ASSIGN_OR_RETURN(shm::SlotWriter * writer,
                           Writer(req.output_region(), req.output_slot()));
  UNICORN_ASSIGN_OR_RETURN(std::span<uint8_t> out, writer->BeginWrite(tensor));
  shm::SlotView in;
  {
    trace::ScopedSpan span(trace::Kind::kShmRead);
    UNICORN_ASSIGN_OR_RETURN(in, shm::BeginRead(*arena_, FromShmRef(req.pixels())));
  }
  if (in.tensor.byte_size != uint64_t(in_floats) * 4) {
    shm::Release(in);
    return absl::InvalidArgumentError(absl::StrCat("[worker] vision: pixels slot holds ",
                                                   shm::TensorString(in.tensor), ", expected f32[",
                                                   in_floats, "]"));
  }
  Status s;
  {
    trace::ScopedSpan span(trace::Kind::kCompute);
    s = model_->EncodeImage(
        std::span<const float>(reinterpret_cast<const float*>(in.data), size_t(in_floats)),
        reinterpret_cast<float*>(out.data()));
  }
  Status read = shm::EndRead(in);
  shm::Release(in);
  UNICORN_RETURN_IF_ERROR(read);
  UNICORN_RETURN_IF_ERROR(s);
  trace::ScopedSpan span(trace::Kind::kShmWrite);
  UNICORN_ASSIGN_OR_RETURN(shm::SlotDescriptor d, writer->Commit());
  *done->mutable_output() = ToShmRef(d);
  return absl::OkStatus();
}

Status StageServer::RunStage(const wire::RunStage& req, wire::StageDone* done) {
  if (!model_ || req.shard_id() != shard_id_) {
    return absl::FailedPreconditionError(
        absl::StrCat("[worker] RunStage for shard ", req.shard_id(), " but shard ", shard_id_,
                     " is loaded", pending_ ? " (still loading)" : ""));
  }
  if (req.vision()) return RunVision(req, done);
  const int H = model_->hidden_size();
  StageSpec spec{req.embedding(), req.first_part(), req.last_part(), req.lm_head(),
                 req.lm_head() && req.argmax()};
  std::vector<StageRows> seqs;
  int rows = 0, logit_rows = 0, image_rows = 0;
  for (const auto& s : req.seqs()) {
    if (s.n_tokens() <= 0 || s.start_pos() < 0) {
      return absl::InvalidArgumentError("[worker] RunStage: a sequence with no rows");
    }
    if (s.image_rows() < 0 || s.image_rows() > s.n_tokens()) {
      return absl::InvalidArgumentError(
          absl::StrCat("[worker] RunStage: ", s.image_rows(), " image rows of ", s.n_tokens()));
    }
    seqs.push_back({s.seq_id(), s.start_pos(), s.n_tokens(), s.want_logits(), s.image_rows()});
    rows += s.n_tokens();
    logit_rows += s.want_logits() ? 1 : 0;
    image_rows += s.image_rows();
  }
  if (req.token_ids_size() != rows) {
    return absl::InvalidArgumentError(absl::StrCat("[worker] RunStage: ", req.token_ids_size(),
                                                   " token ids for ", rows, " rows"));
  }
  ids_.assign(req.token_ids().begin(), req.token_ids().end());

  int64_t out_elems = spec.lm_head ? int64_t(logit_rows) * model_->vocab_size() : int64_t(rows) * H;
  // A step of prefill chunks that all continue later wants no logits: the
  // lm_head stage then still runs its parts (for the KV caches) and commits
  // a one-row placeholder.
  auto tensor = spec.argmax    ? shm::RowMajor(shm::TensorDType::kI32, {std::max(1, logit_rows)})
                : spec.lm_head ? shm::RowMajor(shm::TensorDType::kF32,
                                               {std::max(1, logit_rows), model_->vocab_size()})
                               : shm::RowMajor(shm::TensorDType::kF32, {rows, H});
  if (!tensor.ok()) return tensor.status();
  UNICORN_ASSIGN_OR_RETURN(shm::SlotWriter * writer,
                           Writer(req.output_region(), req.output_slot()));
  UNICORN_ASSIGN_OR_RETURN(std::span<uint8_t> out, writer->BeginWrite(*tensor));
  (void)out_elems;

  // Hidden states go from the input slot to the output slot with no copy
  // here: the model reads and writes the slots' payloads in place (a backend
  // that imported the arena moves them on the device). The input slot is
  // checked again after Run returns, i.e. after the device is done with it
  // (the seqlock of slot.h): a slot rewritten meanwhile fails the stage.
  std::optional<shm::SlotView> in;
  if (!spec.embedding) {
    trace::ScopedSpan span(trace::Kind::kShmRead);
    UNICORN_ASSIGN_OR_RETURN(in, shm::BeginRead(*arena_, FromShmRef(req.hidden())));
    if (in->tensor.byte_size != uint64_t(rows) * H * 4) {
      return absl::InvalidArgumentError(absl::StrCat("[worker] RunStage: input holds ",
                                                     shm::TensorString(in->tensor),
                                                     ", expected f32[", rows, ", ", H, "]"));
    }
  }
  // The image rows' embeddings (embedding stages of prefill steps with images).
  std::optional<shm::SlotView> images;
  if (spec.embedding && image_rows > 0) {
    trace::ScopedSpan span(trace::Kind::kShmRead);
    UNICORN_ASSIGN_OR_RETURN(images, shm::BeginRead(*arena_, FromShmRef(req.image_embeds())));
    if (images->tensor.byte_size != uint64_t(image_rows) * H * 4) {
      shm::Release(*images);
      if (in) shm::Release(*in);
      return absl::InvalidArgumentError(absl::StrCat("[worker] RunStage: image slot holds ",
                                                     shm::TensorString(images->tensor),
                                                     ", expected f32[", image_rows, ", ", H, "]"));
    }
  }
  std::span<const float> image_rows_in;
  if (images) {
    image_rows_in = std::span<const float>(reinterpret_cast<const float*>(images->data),
                                           size_t(image_rows) * H);
  }
  const float* hidden_in = in ? reinterpret_cast<const float*>(in->data) : nullptr;
  float* hidden_out = reinterpret_cast<float*>(out.data());
  float* logits = nullptr;
  if (spec.lm_head) {
    scratch_.resize(size_t(rows) * H);
    hidden_out = scratch_.data();
    logits = reinterpret_cast<float*>(out.data());
  }
  Status s;
  {
    trace::ScopedSpan span(trace::Kind::kCompute);
    s = model_->Run(spec, seqs, ids_, image_rows_in, hidden_in, hidden_out, logits);
  }
  if (images) {
    Status read = shm::EndRead(*images);
    shm::Release(*images);
    if (!read.ok()) {
      if (in) shm::Release(*in);
      return read;
    }
  }
  if (in) {
    Status read = shm::EndRead(*in);
    if (!read.ok()) return read;
    shm::Release(*in);
  }
  if (!s.ok()) return s;
  trace::ScopedSpan span(trace::Kind::kShmWrite);  // the outputs are in place: the commit
  UNICORN_ASSIGN_OR_RETURN(shm::SlotDescriptor d, writer->Commit());
  *done->mutable_output() = ToShmRef(d);
  return absl::OkStatus();
}

void StageServer::OnRunStage(const wire::Message& m) {
  const int64_t received = trace::NowNs();
  wire::RunStage req;
  wire::StageDone done;
  Status s = wire::ParsePayload(m, &req);
  done.set_step_id(req.step_id());
  if (s.ok()) {
    // A profiled stage records its spans into spans_, which travel back in
    // the reply; otherwise recording is off (one thread-local check per span).
    spans_.Clear();
    trace::StepScope scope(req.profile() ? &spans_ : nullptr, req.step_id());
    trace::Record(trace::Kind::kReceive, received, trace::NowNs());
    s = RunStage(req, &done);
    for (const trace::Span& t : spans_.spans()) {
      wire::Span* w = done.add_spans();
      w->set_kind(int(t.kind));
      w->set_layer(t.layer);
      w->set_start_ns(t.start_ns);
      w->set_end_ns(t.end_ns);
      w->set_device(t.device);
    }
  }
  if (!s.ok()) {
    LOG_WARN("{}", s.message());
    done.clear_output();
    done.set_error(std::string(s.message()));
    done.set_error_code(int(s.code()));
  }
  (void)link_.Send(wire::Command::kStageDone, done);
}

void StageServer::OnFree(const wire::Message& m) {
  wire::FreeSequences req;
  if (!wire::ParsePayload(m, &req).ok() || !model_) return;
  if (req.all()) {
    model_->FreeAll();
  } else {
    for (uint64_t id : req.seq_ids()) model_->Free(id);
  }
}

}  // namespace unicorn
