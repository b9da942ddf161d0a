#include "model/gemma3_stage.h"

#include <algorithm>
#include <optional>

#include "common/trace.h"
#include "model/image.h"
#include "model/names.h"

namespace unicorn {
namespace {

// A model part's trace span: a mark for the backend to time on the device,
// or the host's time of this scope. Ops run inside it carry its layer in
// their op spans (trace::LayerScope).
struct PartSpan {
  PartSpan(Ops& ops, bool device, trace::Kind kind, int layer) : in_layer(layer) {
    if (device) {
      ops.MarkSpan(int(kind), layer);
    } else {
      host.emplace(kind, layer);
    }
  }
  trace::LayerScope in_layer;
  std::optional<trace::ScopedSpan> host;
};

}  // namespace

Status Gemma3Session::RunParts(std::span<const int> tokens, int start_pos, int image_rows,
                               std::span<const float> image_embeds, bool embedding, int first_part,
                               int last_part, bool lm_head, const float* hidden_in,
                               float* hidden_out, float* logits) {
  const Gemma3Config& c = model_.config();
  const Gemma3Parts& held = model_.parts();
  const int n = int(tokens.size());
  const size_t H = size_t(c.hidden_size);
  auto error = [&](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("[gemma3] stage: ", what));
  };
  if (n <= 0 || n > max_chunk_) {
    return error(absl::StrCat(n, " rows (1..", max_chunk_, " per stage)"));
  }
  if (start_pos < 0 || start_pos + n > max_context_) {
    return absl::OutOfRangeError(absl::StrCat("[gemma3] stage: positions ", start_pos, "..",
                                              start_pos + n - 1, " outside the context of ",
                                              max_context_));
  }
  if (first_part < 0 || last_part < first_part || last_part > 2 * c.num_layers) {
    return error(absl::StrCat("parts [", first_part, ", ", last_part, ") of a model with ",
                              2 * c.num_layers));
  }
  if ((embedding && !held.embedding) || (lm_head && !held.lm_head)) {
    return error("this shard does not hold the embedding / LM head");
  }
  bool attends = false;
  for (int p = first_part; p < last_part; ++p) {
    bool have = p % 2 == 0 ? held.HasAttention(p / 2) : held.HasFfn(p / 2);
    if (!have) return error(absl::StrCat("this shard does not hold part ", p));
    attends |= p % 2 == 0;
  }
  if (attends && start_pos > n_past_) {
    return error(absl::StrCat("positions start at ", start_pos, " but the cache holds ", n_past_));
  }
  if (image_rows < 0) return error(absl::StrCat(image_rows, " image rows"));
  std::vector<int> run_start, run_end;
  const int n_image = FindImageRuns(tokens, c.image_token_id, image_rows, &run_start, &run_end);
  if (n_image != image_rows) {
    return error(absl::StrCat(image_rows, " image rows but ", n_image, " image tokens (id ",
                              c.image_token_id, ") among the ", n, " rows"));
  }
  if (embedding && image_embeds.size() != size_t(n_image) * H) {
    return error(absl::StrCat(n_image, " image rows but ", image_embeds.size(),
                              " floats of image embeddings (hidden ", H, ")"));
  }
  for (int r = 0; r < n; ++r) {
    const int t = tokens[size_t(r)];
    if (run_start[size_t(r)] < 0 && (t < 0 || t >= c.vocab_size)) {
      return error(absl::StrCat("token id ", t, " outside the vocabulary of ", c.vocab_size));
    }
  }
  for (int r = 0; r < n; ++r) {
    const bool image = run_start[size_t(r)] >= 0;
    // An image row's id may lie beyond the vocabulary: its embedding is replaced.
    SetRow(r, image ? 0 : tokens[size_t(r)], start_pos + r,
           image ? start_pos + run_start[size_t(r)] : -1,
           image ? start_pos + run_end[size_t(r)] : -1);
  }
  ops_.Write(*ids_, 0, ids_host_.data(), size_t(n));
  ops_.Write(*pos_, 0, pos_host_.data(), size_t(n));
  ops_.Write(*spans_local_, 0, spans_local_host_.data(), 2 * size_t(n));
  ops_.Write(*spans_global_, 0, spans_global_host_.data(), 2 * size_t(n));
  // Spans per part (common/trace.h; free when the step is not traced). A
  // backend that queues its work and can time it on the device (Vulkan) gets
  // marks between the parts and records their GPU time itself; otherwise
  // (the CPU backend, which runs each op as it is called) the host is timed.
  const bool device_spans = trace::Enabled() && ops_.DeviceSpans();
  if (embedding) {
    PartSpan span(ops_, device_spans, trace::Kind::kEmbedding, -1);
    ops_.Embed(*ids_, model_.token_embd(), model_.embed_scale(), n, *x_);
    // Gemma3Model.forward's masked_scatter: image features (not scaled)
    // replace the image rows.
    for (int r = 0, k = 0; r < n; ++r) {
      if (run_start[size_t(r)] < 0) continue;
      ops_.Write(*x_, size_t(r) * H, image_embeds.data() + size_t(k++) * H, H);
    }
  } else {
    ops_.Write(*x_, 0, hidden_in, size_t(n) * H);
  }
  for (int p = first_part; p < last_part; ++p) {
    if (p % 2 == 0) {
      PartSpan span(ops_, device_spans, trace::Kind::kAttention, p / 2);
      AttentionHalf(p / 2, n);
    } else {
      PartSpan span(ops_, device_spans, trace::Kind::kFfn, p / 2);
      FfnHalf(p / 2, n);
    }
  }
  if (attends) n_past_ = start_pos + n;
  if (lm_head) {
    PartSpan span(ops_, device_spans, trace::Kind::kLmHead, -1);
    ops_.Copy(*x_, size_t(n - 1) * H, *last_, 0, H);
    LmHead(*last_, 1);
    if (device_spans) ops_.MarkSpan(-1, -1);
    ops_.Read(*logits_, 0, logits, size_t(c.vocab_size));
  } else {
    if (device_spans) ops_.MarkSpan(-1, -1);
    ops_.Read(*x_, 0, hidden_out, size_t(n) * H);
  }
  return absl::OkStatus();
}

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

void Gemma3StageModel::Free(uint64_t seq_id) {
  auto it = sessions_.find(seq_id);
  if (it == sessions_.end()) return;
  // Positions are rewritten before they are read (the cache may hold the
  // last sequence's keys beyond n_past, never inside a span): a reset is a
  // clean session.
  it->second->Reset();
  spare_.push_back(std::move(it->second));
  sessions_.erase(it);
}

StatusOr<Gemma3Session*> Gemma3StageModel::SessionFor(uint64_t seq_id) {
  auto it = sessions_.find(seq_id);
  if (it != sessions_.end()) return it->second.get();
  if (!spare_.empty()) {
    std::unique_ptr<Gemma3Session> s = std::move(spare_.back());
    spare_.pop_back();
    return sessions_.emplace(seq_id, std::move(s)).first->second.get();
  }
  if (int(sessions_.size()) >= std::max(1, spec_.max_sequences)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("[gemma3] stage: ", sessions_.size(), " sequences already hold KV caches"));
  }
  SessionOptions opt;
  opt.max_context = spec_.max_context;
  opt.max_chunk = spec_.max_step_tokens;
  UNICORN_ASSIGN_OR_RETURN(auto s, Gemma3Session::Create(*model_, opt));
  return sessions_.emplace(seq_id, std::move(s)).first->second.get();
}

Status Gemma3StageModel::Run(const StageSpec& spec, std::span<const StageRows> seqs,
                             std::span<const int> ids, std::span<const float> images,
                             const float* hidden_in, float* hidden_out, float* logits) {
  const size_t H = size_t(hidden_size()), V = size_t(vocab_size());
  size_t total_image_rows = 0;
  for (const StageRows& s : seqs) total_image_rows += size_t(std::max(0, s.image_rows));
  if (spec.embedding && images.size() != total_image_rows * H) {
    return absl::InvalidArgumentError(absl::StrCat("[gemma3] stage: ", total_image_rows,
                                                   " image rows but ", images.size(),
                                                   " floats of image embeddings"));
  }
  size_t row = 0, logit_row = 0, image_row = 0;
  for (const StageRows& s : seqs) {
    if (row + size_t(s.n_tokens) > ids.size()) {
      return absl::InvalidArgumentError("[gemma3] stage: more rows than token ids");
    }
    UNICORN_ASSIGN_OR_RETURN(Gemma3Session * session, SessionFor(s.seq_id));
    std::span<const float> seq_images;
    if (spec.embedding) seq_images = images.subspan(image_row * H, size_t(s.image_rows) * H);
    Status st = session->RunParts(ids.subspan(row, size_t(s.n_tokens)), s.start_pos, s.image_rows,
                                  seq_images, spec.embedding, spec.first_part, spec.last_part,
                                  spec.lm_head && s.want_logits,
                                  hidden_in != nullptr ? hidden_in + row * H : nullptr,
                                  hidden_out != nullptr ? hidden_out + row * H : nullptr,
                                  logits != nullptr ? logits + logit_row * V : nullptr);
    if (!st.ok()) return Annotate(st, absl::StrCat("sequence ", s.seq_id));
    row += size_t(s.n_tokens);
    image_row += size_t(std::max(0, s.image_rows));
    if (spec.lm_head && s.want_logits) ++logit_row;
  }
  return absl::OkStatus();
}

}  // namespace unicorn
