#include "model/gemma3.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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
  const Gemma3Config& c = model.config();
  std::unique_ptr<Gemma3Session> s(new Gemma3Session(model));
  s->max_context_ = options.max_context;
  if (c.max_position_embeddings > 0) {
    s->max_context_ = std::min(s->max_context_, c.max_position_embeddings);
  }
  s->max_chunk_ = std::max(1, std::min(options.max_chunk, s->max_context_));
  if (s->max_context_ <= 0) {
    return absl::InvalidArgumentError("[gemma3] session: max_context must be positive");
  }
  Ops& ops = model.ops();
  const size_t C = size_t(s->max_chunk_);
  const size_t kv_dim = size_t(c.num_kv_heads) * c.head_dim;
  for (int l = 0; l < c.num_layers; ++l) {
    // A sliding layer keeps a ring of the window plus one chunk: while a chunk
    // [c0, c1] runs, its queries read positions >= c0 - window + 1, and
    // writing the chunk overwrites only positions older than that.
    int cap = s->max_context_;
    if (c.layer_types[size_t(l)] == LayerType::kSliding) {
      cap = std::min(cap, c.sliding_window + s->max_chunk_);
    }
    if (!model.parts().HasAttention(l)) cap = 1;  // another worker holds this layer's cache
    s->capacity_.push_back(cap);
    s->k_store_.push_back(ops.Alloc(size_t(cap) * kv_dim));
    s->v_store_.push_back(ops.Alloc(size_t(cap) * kv_dim));
  }
  s->ids_host_.resize(C);
  s->pos_host_.resize(C);
  s->spans_local_host_.resize(2 * C);
  s->spans_global_host_.resize(2 * C);
  s->ids_ = ops.Alloc(C);
  s->pos_ = ops.Alloc(C);
  s->spans_local_ = ops.Alloc(2 * C);
  s->spans_global_ = ops.Alloc(2 * C);
  const size_t H = size_t(c.hidden_size), QD = size_t(c.num_heads) * c.head_dim;
  s->x_ = ops.Alloc(C * H);
  s->xn_ = ops.Alloc(C * H);
  s->q_ = ops.Alloc(C * QD);
  s->attn_ = ops.Alloc(C * QD);
  s->k_ = ops.Alloc(C * kv_dim);
  s->v_ = ops.Alloc(C * kv_dim);
  s->o_ = ops.Alloc(C * H);
  s->gate_ = ops.Alloc(C * size_t(c.intermediate_size));
  s->up_ = ops.Alloc(C * size_t(c.intermediate_size));
  s->last_ = ops.Alloc(H);
  // The operand lists of the fused projections, built once (no allocation per step).
  for (int l = 0; l < c.num_layers; ++l) {
    const Gemma3LayerWeights& w = model.layer(l);
    s->qkv_w_.push_back({w.q.get(), w.k.get(), w.v.get()});
    s->gate_up_w_.push_back({w.gate.get(), w.up.get()});
  }
  s->qkv_out_ = {s->q_.get(), s->k_.get(), s->v_.get()};
  s->gate_up_out_ = {s->gate_.get(), s->up_.get()};
  s->logits_ = ops.Alloc(size_t(c.vocab_size));
  return s;
}

// One decoder layer (transformers' Gemma3DecoderLayer.forward), on rows [0, n)
// of x_. Sandwich norms: each sub-block's output is normed before the residual.
// The two halves are also the pipeline's parts 2l and 2l+1 (model/stage.h).
void Gemma3Session::Layer(int l, int n) {
  AttentionHalf(l, n);
  FfnHalf(l, n);
}

void Gemma3Session::AttentionHalf(int l, int n) {
  const Gemma3Config& c = model_.config();
  const Gemma3LayerWeights& w = model_.layer(l);
  const bool local = c.layer_types[size_t(l)] == LayerType::kSliding;
  const int H = c.hidden_size, D = c.head_dim, NH = c.num_heads, NKV = c.num_kv_heads;
  const float eps = float(c.rms_norm_eps);
  // Gemma3Attention: per-type RoPE (Gemma3RotaryEmbedding with layer_type).
  const RopeConfig& rc = local ? c.rope_local : c.rope_global;
  const RopeParams rope{float(rc.theta), float(rc.linear_factor)};
  AttentionParams ap;
  ap.n_heads = NH;
  ap.n_kv_heads = NKV;
  ap.head_dim = D;
  ap.capacity = capacity_[size_t(l)];
  ap.scale = float(1.0 / std::sqrt(c.query_pre_attn_scalar));  // query_pre_attn_scalar**-0.5
  ap.softcap = float(c.attn_logit_softcapping);

  // Attention block.
  ops_.RmsNorm(*x_, *w.attn_norm, n, H, eps, *xn_);        // input_layernorm
  ops_.MatMulMulti(*xn_, qkv_w_[size_t(l)], n, qkv_out_);  // q/k/v_proj (GQA)
  ops_.RmsNorm(*q_, *w.q_norm, n * NH, D, eps, *q_);       // q_norm, per head over head_dim
  ops_.RmsNorm(*k_, *w.k_norm, n * NKV, D, eps, *k_);      // k_norm
  ops_.Rope(*q_, *pos_, n, NH, D, rope);                   // apply_rotary_pos_emb (rotate_half)
  ops_.Rope(*k_, *pos_, n, NKV, D, rope);
  ops_.StoreKv(*k_, *v_, *pos_, n, NKV * D, ap.capacity, *k_store_[size_t(l)],
               *v_store_[size_t(l)]);
  ops_.Attention(*q_, *k_store_[size_t(l)], *v_store_[size_t(l)],
                 local ? *spans_local_ : *spans_global_, n, ap, *attn_);
  ops_.MatMul(*attn_, *w.o, nullptr, n, *o_);            // o_proj
  ops_.RmsNorm(*o_, *w.post_attn_norm, n, H, eps, *o_);  // post_attention_layernorm
  ops_.Add(*x_, *o_, size_t(n) * H, *x_);                // residual
}

// MLP block: down(gelu_tanh(gate(x)) * up(x)) (Gemma3MLP, hidden_activation
// gelu_pytorch_tanh).
void Gemma3Session::FfnHalf(int l, int n) {
  const Gemma3Config& c = model_.config();
  const Gemma3LayerWeights& w = model_.layer(l);
  const int H = c.hidden_size;
  const float eps = float(c.rms_norm_eps);
  ops_.RmsNorm(*x_, *w.ffn_norm, n, H, eps, *xn_);  // pre_feedforward_layernorm
  ops_.MatMulMulti(*xn_, gate_up_w_[size_t(l)], n, gate_up_out_);
  ops_.GeluMul(*gate_, *up_, size_t(n) * c.intermediate_size, *gate_);
  ops_.MatMul(*gate_, *w.down, nullptr, n, *o_);
  ops_.RmsNorm(*o_, *w.post_ffw_norm, n, H, eps, *o_);  // post_feedforward_layernorm
  ops_.Add(*x_, *o_, size_t(n) * H, *x_);
}

// Final norm, tied LM head, then Gemma3ForCausalLM's final_logit_softcapping:
// logits_ [rows, vocab] from h [rows, hidden].
void Gemma3Session::LmHead(const Buffer& h, int rows) {
  const Gemma3Config& c = model_.config();
  const size_t V = size_t(c.vocab_size);
  ops_.RmsNorm(h, model_.output_norm(), rows, c.hidden_size, float(c.rms_norm_eps), *xn_);
  if (logits_->size() < size_t(rows) * V) logits_ = ops_.Alloc(size_t(rows) * V);
  ops_.MatMul(*xn_, model_.token_embd(), nullptr, rows, *logits_);
  if (c.final_logit_softcapping > 0) {
    ops_.SoftCap(*logits_, size_t(rows) * V, float(c.final_logit_softcapping));
  }
}

void Gemma3Session::Forward(int n, std::span<const float> image_rows,
                            const std::vector<int>& image_row_at, LogitsMode mode,
                            std::vector<float>* logits) {
  const Gemma3Config& c = model_.config();
  const size_t H = size_t(c.hidden_size), V = size_t(c.vocab_size);
  ops_.Write(*ids_, 0, ids_host_.data(), size_t(n));
  ops_.Write(*pos_, 0, pos_host_.data(), size_t(n));
  ops_.Write(*spans_local_, 0, spans_local_host_.data(), 2 * size_t(n));
  ops_.Write(*spans_global_, 0, spans_global_host_.data(), 2 * size_t(n));

  // Gemma3TextScaledWordEmbedding, then Gemma3Model.forward's masked_scatter of
  // the image features (which are not scaled) into the image token rows.
  ops_.Embed(*ids_, model_.token_embd(), model_.embed_scale(), n, *x_);
  for (size_t i = 0; i < image_row_at.size() && i < size_t(n); ++i) {
    if (image_row_at[i] >= 0) {
      ops_.Write(*x_, i * H, image_rows.data() + size_t(image_row_at[i]) * H, H);
    }
  }
  for (int l = 0; l < c.num_layers; ++l) Layer(l, n);
  if (mode == LogitsMode::kNone) return;

  const int rows = mode == LogitsMode::kAll ? n : 1;
  const Buffer* h = x_.get();
  if (mode == LogitsMode::kLast) {
    ops_.Copy(*x_, size_t(n - 1) * H, *last_, 0, H);
    h = last_.get();
  }
  LmHead(*h, rows);
  const size_t old = mode == LogitsMode::kAll ? logits->size() : 0;
  logits->resize(old + size_t(rows) * V);
  ops_.Read(*logits_, 0, logits->data() + old, size_t(rows) * V);
}

void Gemma3Session::SetRow(int r, int id, int pos, int run_lo, int run_hi) {
  ids_host_[size_t(r)] = id;
  pos_host_[size_t(r)] = pos;
  int lo_local, lo_global, hi;
  AttentionSpan(pos, model_.config().sliding_window, run_lo, run_hi, &lo_local, &lo_global, &hi);
  spans_local_host_[2 * size_t(r)] = lo_local;
  spans_local_host_[2 * size_t(r) + 1] = hi;
  spans_global_host_[2 * size_t(r)] = lo_global;
  spans_global_host_[2 * size_t(r) + 1] = hi;
}

Status Gemma3Session::Prefill(std::span<const int> tokens, std::span<const float> image_embeds,
                              LogitsMode mode, std::vector<float>* logits) {
  const Gemma3Config& c = model_.config();
  const int n = int(tokens.size());
  const size_t H = size_t(c.hidden_size);
  if (n == 0) return absl::InvalidArgumentError("[gemma3] prefill: no tokens");
  if (n_past_ + n > max_context_) {
    return absl::OutOfRangeError(absl::StrCat("[gemma3] prefill: ", n_past_, " + ", n,
                                              " tokens exceed the context of ", max_context_));
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
    if (run_start[size_t(i)] >= 0 && run_end[size_t(i)] - run_start[size_t(i)] + 1 > max_chunk_) {
      return absl::InvalidArgumentError(
          absl::StrCat("[gemma3] prefill: a run of ", run_end[size_t(i)] - run_start[size_t(i)] + 1,
                       " image tokens exceeds the prefill chunk of ", max_chunk_));
    }
  }
  if (image_embeds.size() != size_t(n_image) * H) {
    return absl::InvalidArgumentError(
        absl::StrCat("[gemma3] prefill: ", n_image, " image tokens but ", image_embeds.size() / H,
                     " image embedding rows (", image_embeds.size(), " floats, hidden ", H, ")"));
  }

  if (logits != nullptr) logits->clear();
  std::vector<int> image_row_at;
  int image_row = 0;
  for (int c0 = 0; c0 < n;) {
    int c1 = std::min(n, c0 + max_chunk_);  // exclusive
    // Never split an image run: attention inside it looks ahead to its end.
    if (c1 < n && run_start[size_t(c1)] >= 0 && run_start[size_t(c1)] > c0) {
      c1 = run_start[size_t(c1)];
    }
    const int rows = c1 - c0;
    image_row_at.assign(size_t(rows), -1);
    for (int r = 0; r < rows; ++r) {
      const int i = c0 + r;
      const int p = n_past_ + i;
      const bool image = run_start[size_t(i)] >= 0;
      if (image) image_row_at[size_t(r)] = image_row++;
      SetRow(r, tokens[size_t(i)], p, image ? n_past_ + run_start[size_t(i)] : -1,
             image ? n_past_ + run_end[size_t(i)] : -1);
    }
    const bool last_chunk = c1 == n;
    LogitsMode m = mode == LogitsMode::kAll ? LogitsMode::kAll
                   : last_chunk             ? mode
                                            : LogitsMode::kNone;
    Forward(rows, image_embeds, image_row_at, m, logits);
    c0 = c1;
  }
  n_past_ += n;
  return absl::OkStatus();
}

Status Gemma3Session::Decode(int token, std::vector<float>* logits) {
  const Gemma3Config& c = model_.config();
  if (n_past_ + 1 > max_context_) {
    return absl::OutOfRangeError(
        absl::StrCat("[gemma3] decode: the context of ", max_context_, " positions is full"));
  }
  if (token < 0 || token >= c.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("[gemma3] decode: token id ", token, " outside the vocabulary"));
  }
  const int p = n_past_;
  ids_host_[0] = token;
  pos_host_[0] = p;
  spans_local_host_[0] = std::max(0, p - c.sliding_window + 1);
  spans_local_host_[1] = p;
  spans_global_host_[0] = 0;
  spans_global_host_[1] = p;
  static const std::vector<int> kNoImages;
  Forward(1, {}, kNoImages, LogitsMode::kLast, logits);
  ++n_past_;
  return absl::OkStatus();
}

}  // namespace unicorn
