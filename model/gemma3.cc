#include "model/gemma3.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/gemma3_batch.h"
#include "model/names.h"
#include "model/quant.h"

namespace unicorn {
namespace {

std::string ShapeStr(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

// Loads `name` on ops after checking its shape.
StatusOr<std::unique_ptr<Weight>> Bind(Ops& ops, const TensorLookup& lookup,
                                       const std::string& name, std::vector<int64_t> shape) {
  const TensorInfo* t = lookup(name);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat("[gemma3] missing tensor ", name));
  if (t->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat("[gemma3] tensor ", name, " has shape ",
                                                   ShapeStr(t->shape), ", expected ",
                                                   ShapeStr(shape)));
  }
  return ops.LoadWeight(*t);
}

Status Validate(const Gemma3Config& c) {
  auto bad = [](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat("[gemma3] config: ", msg));
  };
  if (c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
      c.head_dim <= 0 || c.intermediate_size <= 0 || c.vocab_size <= 0) {
    return bad("sizes must be positive");
  }
  if (c.num_heads % c.num_kv_heads != 0) return bad("num_heads not a multiple of num_kv_heads");
  if (c.head_dim % 2 != 0) return bad("head_dim must be even (rotary halves)");
  if (int(c.layer_types.size()) != c.num_layers) {
    return bad(absl::StrCat(c.layer_types.size(), " layer types for ", c.num_layers, " layers"));
  }
  for (LayerType t : c.layer_types) {
    if (t == LayerType::kSliding && c.sliding_window <= 0) return bad("sliding_window not set");
  }
  return absl::OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<Gemma3Model>> Gemma3Model::Load(const Gemma3Config& config,
                                                         const TensorLookup& lookup, Ops& ops,
                                                         const Gemma3Parts& parts,
                                                         const LoadProgress& progress) {
  UNICORN_RETURN_IF_ERROR(Validate(config));
  for (const auto* v : {&parts.attention, &parts.ffn}) {
    if (!v->empty() && v->size() != size_t(config.num_layers)) {
      return absl::InvalidArgumentError(absl::StrCat("[gemma3] parts name ", v->size(),
                                                     " layers; the model has ", config.num_layers));
    }
  }
  std::unique_ptr<Gemma3Model> m(new Gemma3Model(config, ops));
  m->parts_ = parts;
  const int64_t H = config.hidden_size, D = config.head_dim, I = config.intermediate_size;
  const int64_t QD = int64_t(config.num_heads) * D, KD = int64_t(config.num_kv_heads) * D;
  if (parts.embedding || parts.lm_head) {
    UNICORN_ASSIGN_OR_RETURN(m->token_embd_,
                             Bind(ops, lookup, names::kTokenEmbd, {config.vocab_size, H}));
  }
  if (parts.lm_head) {
    UNICORN_ASSIGN_OR_RETURN(m->output_norm_, Bind(ops, lookup, names::kOutputNorm, {H}));
  }
  m->layers_.resize(size_t(config.num_layers));
  for (int i = 0; i < config.num_layers; ++i) {
    Gemma3LayerWeights& l = m->layers_[size_t(i)];
    auto bind = [&](const char* what, std::vector<int64_t> shape) {
      return Bind(ops, lookup, names::Blk(i, what), std::move(shape));
    };
    if (parts.HasAttention(i)) {
      UNICORN_ASSIGN_OR_RETURN(l.attn_norm, bind("attn_norm", {H}));
      UNICORN_ASSIGN_OR_RETURN(l.q, bind("attn_q", {QD, H}));
      UNICORN_ASSIGN_OR_RETURN(l.k, bind("attn_k", {KD, H}));
      UNICORN_ASSIGN_OR_RETURN(l.v, bind("attn_v", {KD, H}));
      UNICORN_ASSIGN_OR_RETURN(l.q_norm, bind("attn_q_norm", {D}));
      UNICORN_ASSIGN_OR_RETURN(l.k_norm, bind("attn_k_norm", {D}));
      UNICORN_ASSIGN_OR_RETURN(l.o, bind("attn_output", {H, QD}));
      UNICORN_ASSIGN_OR_RETURN(l.post_attn_norm, bind("post_attention_norm", {H}));
    }
    if (parts.HasFfn(i)) {
      UNICORN_ASSIGN_OR_RETURN(l.ffn_norm, bind("ffn_norm", {H}));
      UNICORN_ASSIGN_OR_RETURN(l.gate, bind("ffn_gate", {I, H}));
      UNICORN_ASSIGN_OR_RETURN(l.up, bind("ffn_up", {I, H}));
      UNICORN_ASSIGN_OR_RETURN(l.down, bind("ffn_down", {H, I}));
      UNICORN_ASSIGN_OR_RETURN(l.post_ffw_norm, bind("post_ffw_norm", {H}));
    }
    if (progress) progress(i + 1, config.num_layers);
  }
  // Gemma3TextScaledWordEmbedding: embed_scale = hidden_size**0.5 is held as
  // an f32 tensor and cast to the dtype the embedding *runs* in
  // (`self.embed_scale.to(self.weight.dtype)`): run in bf16, sqrt(2560) =
  // 50.596 becomes 50.5; run in f32 (weights widened, as the reference
  // outputs in tests/data/models were made) it stays f32. Every backend
  // computes activations in f32, so the scale is the f32 one for every
  // stored dtype; llama.cpp does the same (sqrtf(n_embd)).
  m->embed_scale_ = float(std::sqrt(double(config.hidden_size)));
  return m;
}

int FindImageRuns(std::span<const int> tokens, int image_token_id, int max_image_rows,
                  std::vector<int>* run_start, std::vector<int>* run_end) {
  const int n = int(tokens.size());
  run_start->assign(size_t(n), -1);
  run_end->assign(size_t(n), -1);
  int n_image = 0;
  for (int i = 0; i < n && n_image < max_image_rows; ++i) {
    if (tokens[size_t(i)] != image_token_id) continue;
    ++n_image;
    (*run_start)[size_t(i)] =
        (i > 0 && (*run_start)[size_t(i - 1)] >= 0) ? (*run_start)[size_t(i - 1)] : i;
  }
  for (int i = n - 1; i >= 0; --i) {
    if ((*run_start)[size_t(i)] < 0) continue;
    (*run_end)[size_t(i)] =
        (i + 1 < n && (*run_end)[size_t(i + 1)] >= 0) ? (*run_end)[size_t(i + 1)] : i;
  }
  return n_image;
}

StatusOr<std::unique_ptr<Gemma3Session>> Gemma3Session::Create(const Gemma3Model& model,
                                                               const SessionOptions& options) {
  std::unique_ptr<Gemma3Session> s(new Gemma3Session());
  UNICORN_ASSIGN_OR_RETURN(s->batch_, Gemma3Batch::Create(model, options, 1));
  return s;
}

Gemma3Session::~Gemma3Session() = default;

int Gemma3Session::max_context() const { return batch_->max_context(); }

Status Gemma3Session::Prefill(std::span<const int> tokens, std::span<const float> image_embeds,
                              LogitsMode mode, std::vector<float>* logits) {
  const Gemma3Config& c = batch_->model().config();
  const int n = int(tokens.size());
  const int max_chunk = batch_->max_chunk(), max_context = batch_->max_context();
  const size_t H = size_t(c.hidden_size), V = size_t(c.vocab_size);
  if (n == 0) return absl::InvalidArgumentError("[gemma3] prefill: no tokens");
  if (n_past_ + n > max_context) {
    return absl::OutOfRangeError(absl::StrCat("[gemma3] prefill: ", n_past_, " + ", n,
                                              " tokens exceed the context of ", max_context));
  }
  for (int t : tokens) {
    if (t < 0 || (t >= c.vocab_size && t != c.image_token_id)) {
      return absl::InvalidArgumentError(absl::StrCat("[gemma3] prefill: token id ", t,
                                                     " outside the vocabulary of ", c.vocab_size));
    }
  }
  std::vector<int> run_start, run_end;
  const int n_image = FindImageRuns(tokens, c.image_token_id, n, &run_start, &run_end);
  for (int i = 0; i < n; ++i) {
    if (run_start[size_t(i)] >= 0 && run_end[size_t(i)] - run_start[size_t(i)] + 1 > max_chunk) {
      return absl::InvalidArgumentError(
          absl::StrCat("[gemma3] prefill: a run of ", run_end[size_t(i)] - run_start[size_t(i)] + 1,
                       " image tokens exceeds the prefill chunk of ", max_chunk));
    }
  }
  if (image_embeds.size() != size_t(n_image) * H) {
    return absl::InvalidArgumentError(
        absl::StrCat("[gemma3] prefill: ", n_image, " image tokens but ", image_embeds.size() / H,
                     " image embedding rows (", image_embeds.size(), " floats, hidden ", H, ")"));
  }

  if (logits != nullptr) logits->clear();
  int image_row = 0;
  for (int c0 = 0; c0 < n;) {
    int c1 = std::min(n, c0 + max_chunk);  // exclusive
    // Never split an image run: attention inside it looks ahead to its end.
    if (c1 < n && run_start[size_t(c1)] >= 0 && run_start[size_t(c1)] > c0) {
      c1 = run_start[size_t(c1)];
    }
    const int rows = c1 - c0;
    image_of_row_.assign(size_t(rows), -1);
    for (int r = 0; r < rows; ++r) {
      const int i = c0 + r;
      const bool image = run_start[size_t(i)] >= 0;
      if (image) image_of_row_[size_t(r)] = image_row++;
      batch_->SetRow(r, 0, tokens[size_t(i)], n_past_ + i,
                     image ? n_past_ + run_start[size_t(i)] : -1,
                     image ? n_past_ + run_end[size_t(i)] : -1);
    }
    // Logits of every row (kAll), or of the prompt's last row (kLast).
    logit_rows_.clear();
    if (logits != nullptr && mode == LogitsMode::kAll) {
      for (int r = 0; r < rows; ++r) logit_rows_.push_back(r);
    } else if (logits != nullptr && mode == LogitsMode::kLast && c1 == n) {
      logit_rows_.push_back(rows - 1);
    }
    const size_t old = logits != nullptr ? logits->size() : 0;
    if (logits != nullptr) logits->resize(old + logit_rows_.size() * V);
    Gemma3Batch::Pass pass;
    pass.n = rows;
    pass.images = image_embeds;
    pass.image_of_row = image_of_row_;
    pass.last_part = 2 * c.num_layers;
    pass.logit_rows = logit_rows_;
    pass.logits = logits != nullptr ? logits->data() + old : nullptr;
    batch_->Run(pass);
    c0 = c1;
  }
  n_past_ += n;
  return absl::OkStatus();
}

Status Gemma3Session::Decode(int token, std::vector<float>* logits) {
  const Gemma3Config& c = batch_->model().config();
  if (n_past_ + 1 > batch_->max_context()) {
    return absl::OutOfRangeError(absl::StrCat("[gemma3] decode: the context of ",
                                              batch_->max_context(), " positions is full"));
  }
  if (token < 0 || token >= c.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("[gemma3] decode: token id ", token, " outside the vocabulary"));
  }
  batch_->SetRow(0, 0, token, n_past_, -1, -1);
  static constexpr int kLastRow[] = {0};
  logits->resize(size_t(c.vocab_size));
  Gemma3Batch::Pass pass;
  pass.n = 1;
  pass.last_part = 2 * c.num_layers;
  pass.logit_rows = kLastRow;
  pass.logits = logits->data();
  batch_->Run(pass);
  ++n_past_;
  return absl::OkStatus();
}

Status Gemma3Session::RunParts(std::span<const int> tokens, int start_pos, int image_rows,
                               std::span<const float> image_embeds, bool embedding, int first_part,
                               int last_part, bool lm_head, const float* hidden_in,
                               float* hidden_out, float* logits) {
  Gemma3StageSeq seq;
  seq.tokens = tokens;
  seq.start_pos = start_pos;
  seq.n_past = &n_past_;
  seq.image_rows = image_rows;
  seq.want_logits = lm_head;
  return batch_->RunStage({&seq, 1}, image_embeds, embedding, first_part, last_part, lm_head, false,
                          hidden_in, hidden_out, logits);
}

}  // namespace unicorn
