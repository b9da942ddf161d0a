#include "model/gemma3_stage.h"

#include <algorithm>

#include "common/trace.h"
#include "model/gemma3_batch.h"
#include "model/image.h"
#include "model/names.h"

namespace unicorn {
StatusOr<std::unique_ptr<Gemma3StageModel>> Gemma3StageModel::Load(const ShardSpec& spec,
                                                                   Ops& ops) {
  auto m = std::unique_ptr<Gemma3StageModel>(new Gemma3StageModel());
  m->spec_ = spec;
  UNICORN_ASSIGN_OR_RETURN(m->files_, ModelFiles::Open(spec.model_path, spec.mmproj_path));
  const Gemma3Config& c = m->files_->config();
  Gemma3Parts parts;
  parts.embedding = spec.embedding;
  parts.lm_head = spec.lm_head;
  parts.attention.assign(size_t(c.num_layers), false);
  parts.ffn.assign(size_t(c.num_layers), false);
  for (int l : spec.attention_layers) {
    if (l < 0 || l >= c.num_layers) {
      return absl::InvalidArgumentError(absl::StrCat("[gemma3] shard names attention layer ", l,
                                                     " of a ", c.num_layers, "-layer model"));
    }
    parts.attention[size_t(l)] = true;
  }
  for (int l : spec.ffn_layers) {
    if (l < 0 || l >= c.num_layers) {
      return absl::InvalidArgumentError(absl::StrCat("[gemma3] shard names ffn layer ", l, " of a ",
                                                     c.num_layers, "-layer model"));
    }
    parts.ffn[size_t(l)] = true;
  }
  const ModelFiles* files = m->files_.get();
  int64_t bytes = 0;
  TensorLookup lookup = [files, &bytes](const std::string& name) {
    const TensorInfo* t = files->Find(name);
    if (t != nullptr) bytes += int64_t(t->nbytes);
    return t;
  };
  UNICORN_ASSIGN_OR_RETURN(m->model_, Gemma3Model::Load(c, lookup, ops, parts));
  // The vision tower runs on the shard's backend: every backend implements
  // the ops SigLIP needs (layer norm, biased products, GELU, pooling).
  if (spec.vision && c.has_vision) {
    UNICORN_ASSIGN_OR_RETURN(m->vision_, SiglipTower::Load(c, lookup, ops));
  }
  m->weight_bytes_ = bytes;
  SessionOptions opt;
  opt.max_context = spec.max_context;
  opt.max_chunk = spec.max_step_tokens;
  UNICORN_ASSIGN_OR_RETURN(m->batch_, Gemma3Batch::Create(*m->model_, opt, 1));
  if (ops.TunesOnFirstUse()) m->batch_->WarmUp();
  m->free_rings_ = {0};
  return m;
}

std::string Gemma3StageModel::Describe() const {
  std::string d = model_->ops().Describe();
  if (vision_) absl::StrAppend(&d, "; vision tower (SigLIP + projector) on the same backend");
  if (spec_.vision && !vision_) absl::StrAppend(&d, "; no vision tower in the model");
  return d;
}

int64_t Gemma3StageModel::pixel_floats() const {
  if (!vision_) return 0;
  const VisionConfig& v = model_->config().vision;
  return int64_t(3) * v.image_size * v.image_size;
}

int64_t Gemma3StageModel::image_embed_floats() const {
  if (!vision_) return 0;
  const Gemma3Config& c = model_->config();
  return int64_t(c.vision.mm_tokens_per_image) * c.hidden_size;
}

Status Gemma3StageModel::EncodeImage(std::span<const float> pixels, float* out) {
  if (!vision_) {
    if (!model_->config().has_vision) {
      return absl::InvalidArgumentError(absl::StrCat(
          "[gemma3] model ", files_->path(), " has no vision tower",
          files_->path().size() > 5 && files_->path().substr(files_->path().size() - 5) == ".gguf"
              ? " (a GGUF model needs its mmproj file: config key mmproj)"
              : ""));
    }
    return absl::InternalError(
        "[gemma3] this worker was not asked to hold the vision tower (plan.vision names another)");
  }
  if (int64_t(pixels.size()) != pixel_floats()) {
    return absl::InvalidArgumentError(absl::StrCat("[gemma3] vision: ", pixels.size(),
                                                   " pixel floats, expected ", pixel_floats()));
  }
  const VisionConfig& v = model_->config().vision;
  const std::vector<float> px(pixels.begin(), pixels.end());
  const std::vector<float> patches = Patchify(px, v.image_size, v.patch_size);
  {
    trace::ScopedSpan span(trace::Kind::kVision);
    UNICORN_RETURN_IF_ERROR(vision_->Encode(patches, &embeds_));
  }
  if (int64_t(embeds_.size()) != image_embed_floats()) {
    return absl::InternalError(absl::StrCat("[gemma3] vision: ", embeds_.size(),
                                            " floats of embeddings, expected ",
                                            image_embed_floats()));
  }
  std::copy(embeds_.begin(), embeds_.end(), out);
  return absl::OkStatus();
}

Gemma3StageModel::~Gemma3StageModel() = default;

void Gemma3StageModel::Free(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  // Positions are rewritten before they are read (a ring may hold the last
  // sequence's keys beyond its n_past, never inside a span): a freed ring
  // is clean for the next sequence, and the command buffers a queueing
  // backend (Vulkan) recorded over the batch's buffers serve again.
  free_rings_.push_back(it->second.ring);
  seqs_.erase(it);
}

void Gemma3StageModel::FreeAll() {
  seqs_.clear();
  free_rings_.clear();
  for (int r = batch_->rings() - 1; r >= 0; --r) free_rings_.push_back(r);
}

StatusOr<Gemma3StageModel::SeqState*> Gemma3StageModel::SeqFor(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it != seqs_.end()) return &it->second;
  if (free_rings_.empty()) {
    const int rings = batch_->rings(), most = std::max(1, spec_.max_sequences);
    if (rings >= most) {
      return absl::ResourceExhaustedError(
          absl::StrCat("[gemma3] stage: ", seqs_.size(), " sequences already hold KV caches"));
    }
    // Doubling: a store's copy on growth stays rare.
    const int grown = std::min(most, 2 * rings);
    batch_->Grow(grown);
    for (int r = grown - 1; r >= rings; --r) free_rings_.push_back(r);
  }
  SeqState st;
  st.ring = free_rings_.back();
  free_rings_.pop_back();
  return &seqs_.emplace(seq_id, st).first->second;
}

Status Gemma3StageModel::Run(const StageSpec& spec, std::span<const StageRows> seqs,
                             std::span<const int> ids, std::span<const float> images,
                             const float* hidden_in, float* hidden_out, float* logits) {
  stage_seqs_.clear();
  size_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    const StageRows& s = seqs[i];
    if (s.n_tokens <= 0 || row + size_t(s.n_tokens) > ids.size()) {
      return absl::InvalidArgumentError(absl::StrCat("[gemma3] stage: sequence ", s.seq_id, ": ",
                                                     s.n_tokens, " rows from row ", row, " of ",
                                                     ids.size(), " token ids"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (seqs[j].seq_id == s.seq_id) {
        return absl::InvalidArgumentError(
            absl::StrCat("[gemma3] stage: sequence ", s.seq_id, " appears twice in one step"));
      }
    }
    UNICORN_ASSIGN_OR_RETURN(SeqState * st, SeqFor(s.seq_id));
    Gemma3StageSeq q;
    q.id = s.seq_id;
    q.ring = st->ring;
    q.tokens = ids.subspan(row, size_t(s.n_tokens));
    q.start_pos = s.start_pos;
    q.n_past = &st->n_past;
    q.image_rows = s.image_rows;
    q.want_logits = s.want_logits;
    stage_seqs_.push_back(q);
    row += size_t(s.n_tokens);
  }
  return batch_->RunStage(stage_seqs_, images, spec.embedding, spec.first_part, spec.last_part,
                          spec.lm_head, spec.argmax, hidden_in, hidden_out, logits);
}

}  // namespace unicorn
