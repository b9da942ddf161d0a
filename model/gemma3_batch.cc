#include "model/gemma3_batch.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/trace.h"

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

StatusOr<std::unique_ptr<Gemma3Batch>> Gemma3Batch::Create(const Gemma3Model& model,
                                                           const SessionOptions& options,
                                                           int rings) {
  const Gemma3Config& c = model.config();
  std::unique_ptr<Gemma3Batch> b(new Gemma3Batch(model));
  b->max_context_ = options.max_context;
  if (c.max_position_embeddings > 0) {
    b->max_context_ = std::min(b->max_context_, c.max_position_embeddings);
  }
  if (b->max_context_ <= 0) {
    return absl::InvalidArgumentError("[gemma3] session: max_context must be positive");
  }
  b->max_chunk_ = std::max(1, std::min(options.max_chunk, b->max_context_));
  for (int l = 0; l < c.num_layers; ++l) {
    // A sliding layer keeps a ring of the window plus one chunk: while a chunk
    // [c0, c1] runs, its queries read positions >= c0 - window + 1, and
    // writing the chunk overwrites only positions older than that.
    int cap = b->max_context_;
    if (c.layer_types[size_t(l)] == LayerType::kSliding) {
      cap = std::min(cap, c.sliding_window + b->max_chunk_);
    }
    if (!model.parts().HasAttention(l)) cap = 0;  // another worker holds this layer's cache
    b->capacity_.push_back(cap);
    b->k_store_.emplace_back();
    b->v_store_.emplace_back();
  }
  b->Grow(std::max(1, rings));

  Ops& ops = model.ops();
  const size_t C = size_t(b->max_chunk_);
  const size_t H = size_t(c.hidden_size), QD = size_t(c.num_heads) * c.head_dim;
  const size_t KD = size_t(c.num_kv_heads) * c.head_dim, I = size_t(c.intermediate_size);
  for (auto* v : {&b->ids_host_, &b->pos_host_, &b->ring_host_}) v->resize(C);
  b->spans_local_host_.resize(2 * C);
  b->spans_global_host_.resize(2 * C);
  b->ids_ = ops.Alloc(C);
  b->pos_ = ops.Alloc(C);
  b->ring_ = ops.Alloc(C);
  b->spans_local_ = ops.Alloc(2 * C);
  b->spans_global_ = ops.Alloc(2 * C);
  b->x_ = ops.Alloc(C * H);
  b->xn_ = ops.Alloc(C * H);
  b->q_ = ops.Alloc(C * QD);
  b->attn_ = ops.Alloc(C * QD);
  b->k_ = ops.Alloc(C * KD);
  b->v_ = ops.Alloc(C * KD);
  b->o_ = ops.Alloc(C * H);
  b->gate_ = ops.Alloc(C * I);
  b->up_ = ops.Alloc(C * I);
  b->rows_ = ops.Alloc(H);
  b->logits_ = ops.Alloc(size_t(c.vocab_size));
  // The operand lists of the fused projections, built once (no allocation per step).
  for (int l = 0; l < c.num_layers; ++l) {
    const Gemma3LayerWeights& w = model.layer(l);
    b->qkv_w_.push_back({w.q.get(), w.k.get(), w.v.get()});
    b->gate_up_w_.push_back({w.gate.get(), w.up.get()});
  }
  b->qkv_out_ = {b->q_.get(), b->k_.get(), b->v_.get()};
  b->gate_up_out_ = {b->gate_.get(), b->up_.get()};
  return b;
}

void Gemma3Batch::Grow(int rings) {
  if (rings <= rings_) return;
  const Gemma3Config& c = model_.config();
  const size_t kv_dim = size_t(c.num_kv_heads) * c.head_dim;
  for (size_t l = 0; l < capacity_.size(); ++l) {
    const size_t ring = size_t(capacity_[l]) * kv_dim;  // floats
    if (ring == 0) continue;
    for (auto* store : {&k_store_[l], &v_store_[l]}) {
      std::unique_ptr<Buffer> grown = ops_.Alloc(size_t(rings) * ring);
      if (*store) ops_.Copy(**store, 0, *grown, 0, size_t(rings_) * ring);
      *store = std::move(grown);
    }
  }
  rings_ = rings;
}

void Gemma3Batch::SetRow(int r, int ring, int id, int pos, int run_lo, int run_hi) {
  ids_host_[size_t(r)] = id;
  pos_host_[size_t(r)] = pos;
  ring_host_[size_t(r)] = ring;
  int lo_local, lo_global, hi;
  AttentionSpan(pos, model_.config().sliding_window, run_lo, run_hi, &lo_local, &lo_global, &hi);
  spans_local_host_[2 * size_t(r)] = lo_local;
  spans_local_host_[2 * size_t(r) + 1] = hi;
  spans_global_host_[2 * size_t(r)] = lo_global;
  spans_global_host_[2 * size_t(r) + 1] = hi;
}

// Gemma3DecoderLayer.forward, attention block, on rows [0, n) of x_. Sandwich
// norms: the block's output is normed before the residual.
void Gemma3Batch::AttentionHalf(int l, int n) {
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
  Buffer& ks = *k_store_[size_t(l)];
  Buffer& vs = *v_store_[size_t(l)];

  ops_.RmsNorm(*x_, *w.attn_norm, n, H, eps, *xn_);        // input_layernorm
  ops_.MatMulMulti(*xn_, qkv_w_[size_t(l)], n, qkv_out_);  // q/k/v_proj (GQA)
  ops_.RmsNorm(*q_, *w.q_norm, n * NH, D, eps, *q_);       // q_norm, per head over head_dim
  ops_.RmsNorm(*k_, *w.k_norm, n * NKV, D, eps, *k_);      // k_norm
  ops_.Rope(*q_, *pos_, n, NH, D, rope);                   // apply_rotary_pos_emb (rotate_half)
  ops_.Rope(*k_, *pos_, n, NKV, D, rope);
  ops_.StoreKv(*k_, *v_, *pos_, pass_rings_, n, NKV * D, ap.capacity, ks, vs);  // each row's ring
  ops_.Attention(*q_, ks, vs, local ? *spans_local_ : *spans_global_, pass_rings_, n, ap, *attn_);
  ops_.MatMul(*attn_, *w.o, nullptr, n, *o_);            // o_proj
  ops_.RmsNorm(*o_, *w.post_attn_norm, n, H, eps, *o_);  // post_attention_layernorm
  ops_.Add(*x_, *o_, size_t(n) * H, *x_);                // residual
}

// MLP block: down(gelu_tanh(gate(x)) * up(x)) (Gemma3MLP, hidden_activation
// gelu_pytorch_tanh).
void Gemma3Batch::FfnHalf(int l, int n) {
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

// Final norm, tied LM head, then Gemma3ForCausalLM's final_logit_softcapping.
void Gemma3Batch::LmHead(const Buffer& h, int rows) {
  const Gemma3Config& c = model_.config();
  const size_t V = size_t(c.vocab_size);
  ops_.RmsNorm(h, model_.output_norm(), rows, c.hidden_size, float(c.rms_norm_eps), *xn_);
  if (logits_->size() < size_t(rows) * V) logits_ = ops_.Alloc(size_t(rows) * V);
  ops_.MatMul(*xn_, model_.token_embd(), nullptr, rows, *logits_);
  if (c.final_logit_softcapping > 0) {
    ops_.SoftCap(*logits_, size_t(rows) * V, float(c.final_logit_softcapping));
  }
}

void Gemma3Batch::Run(const Pass& pass) {
  const Gemma3Config& c = model_.config();
  const int n = pass.n;
  const size_t H = size_t(c.hidden_size), V = size_t(c.vocab_size);
  const bool batch =
      std::any_of(ring_host_.begin(), ring_host_.begin() + n, [](int32_t r) { return r != 0; });
  ops_.Write(*ids_, 0, ids_host_.data(), size_t(n));
  ops_.Write(*pos_, 0, pos_host_.data(), size_t(n));
  if (batch) ops_.Write(*ring_, 0, ring_host_.data(), size_t(n));
  pass_rings_ = batch ? ring_.get() : nullptr;
  ops_.Write(*spans_local_, 0, spans_local_host_.data(), 2 * size_t(n));
  ops_.Write(*spans_global_, 0, spans_global_host_.data(), 2 * size_t(n));

  // Spans per part (common/trace.h; free when the step is not traced). A
  // backend that queues its work and can time it on the device (Vulkan) gets
  // marks between the parts and records their GPU time itself; otherwise
  // (the CPU backend, which runs each op as it is called) the host is timed.
  const bool device_spans = trace::Enabled() && ops_.DeviceSpans();
  if (pass.embedding) {
    PartSpan span(ops_, device_spans, trace::Kind::kEmbedding, -1);
    // Gemma3TextScaledWordEmbedding, then Gemma3Model.forward's
    // masked_scatter of the image features (not scaled) into the image rows.
    ops_.Embed(*ids_, model_.token_embd(), model_.embed_scale(), n, *x_);
    for (size_t r = 0; r < pass.image_of_row.size() && r < size_t(n); ++r) {
      const int k = pass.image_of_row[r];
      if (k >= 0) ops_.Write(*x_, r * H, pass.images.data() + size_t(k) * H, H);
    }
  } else {
    ops_.Write(*x_, 0, pass.hidden_in, size_t(n) * H);
  }
  for (int p = pass.first_part; p < pass.last_part; ++p) {
    if (p % 2 == 0) {
      PartSpan span(ops_, device_spans, trace::Kind::kAttention, p / 2);
      AttentionHalf(p / 2, n);
    } else {
      PartSpan span(ops_, device_spans, trace::Kind::kFfn, p / 2);
      FfnHalf(p / 2, n);
    }
  }
  const int rows = int(pass.logit_rows.size());
  if (rows > 0) {
    PartSpan span(ops_, device_spans, trace::Kind::kLmHead, -1);
    bool all = rows == n;
    for (int i = 0; i < rows && all; ++i) all = pass.logit_rows[size_t(i)] == i;
    if (all) {
      LmHead(*x_, rows);
    } else {
      if (rows_->size() < size_t(rows) * H) rows_ = ops_.Alloc(size_t(rows) * H);
      for (int i = 0; i < rows; ++i) {
        ops_.Copy(*x_, size_t(pass.logit_rows[size_t(i)]) * H, *rows_, size_t(i) * H, H);
      }
      LmHead(*rows_, rows);
    }
  }
  if (device_spans) ops_.MarkSpan(-1, -1);
  if (rows > 0 && pass.argmax != nullptr) {
    if (!argmax_ || argmax_->size() < size_t(rows)) argmax_ = ops_.Alloc(size_t(rows));
    ops_.Argmax(*logits_, rows, int(V), *argmax_);
    ops_.Read(*argmax_, 0, pass.argmax, size_t(rows));
  } else if (rows > 0) {
    ops_.Read(*logits_, 0, pass.logits, size_t(rows) * V);
  } else if (pass.hidden_out != nullptr) {
    ops_.Read(*x_, 0, pass.hidden_out, size_t(n) * H);
  } else {
    float done;  // waits for the pass (a queueing backend holds it until a read)
    ops_.Read(*x_, 0, &done, 1);
  }
}

void Gemma3Batch::WarmUp() {
  const Gemma3Config& c = model_.config();
  const Gemma3Parts& held = model_.parts();
  std::vector<float> hidden(size_t(max_chunk_) * size_t(c.hidden_size), 0.0f), logits;
  std::vector<int32_t> ids;
  std::vector<int> rows;
  // The decode batch sizes, then the prompt chunk sizes' classes (17..32
  // tokens are a class of the Vulkan tensor-core products).
  for (int n : {1, 4, 8, 16, 32, 64, 128, 256, 512}) {
    if (n > max_chunk_) break;
    rows.clear();
    for (int r = 0; r < n; ++r) {
      SetRow(r, 0, 0, r, -1, -1);
      rows.push_back(r);
    }
    Pass pass;
    pass.n = n;
    pass.embedding = false;
    pass.hidden_in = hidden.data();
    pass.hidden_out = hidden.data();
    for (int p = 0; p < 2 * c.num_layers; ++p) {
      if (!(p % 2 == 0 ? held.HasAttention(p / 2) : held.HasFfn(p / 2))) continue;
      pass.first_part = p;
      pass.last_part = p + 1;
      Run(pass);
    }
    pass.first_part = pass.last_part = 0;
    if (held.embedding) {
      pass.embedding = true;
      Run(pass);
      pass.embedding = false;
    }
    if (held.lm_head) {
      logits.resize(size_t(n) * size_t(c.vocab_size));
      pass.logit_rows = rows;
      pass.logits = logits.data();
      Run(pass);
      // And as greedy steps take it: one row per sequence, so only at the
      // decode batch sizes.
      if (n <= 16) {
        ids.resize(size_t(n));
        pass.logits = nullptr;
        pass.argmax = ids.data();
        Run(pass);
      }
    }
  }
}

Status Gemma3Batch::RunStage(std::span<const Gemma3StageSeq> seqs, std::span<const float> images,
                             bool embedding, int first_part, int last_part, bool lm_head,
                             bool argmax, const float* hidden_in, float* hidden_out,
                             float* logits) {
  const Gemma3Config& c = model_.config();
  const Gemma3Parts& held = model_.parts();
  const size_t H = size_t(c.hidden_size);
  auto error = [](const std::string& what) {
    return absl::InvalidArgumentError(absl::StrCat("[gemma3] stage: ", what));
  };
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
  size_t n = 0, image_rows = 0;
  for (const Gemma3StageSeq& s : seqs) {
    n += s.tokens.size();
    image_rows += size_t(std::max(0, s.image_rows));
  }
  if (n == 0 || n > size_t(max_chunk_)) {
    return error(absl::StrCat(n, " rows (1..", max_chunk_, " per stage)"));
  }
  if (embedding && images.size() != image_rows * H) {
    return error(absl::StrCat(image_rows, " image rows but ", images.size(),
                              " floats of image embeddings (hidden ", H, ")"));
  }
  // Check every sequence, then set the rows (an error changes nothing).
  run_start_.resize(n);
  run_end_.resize(n);
  image_of_row_.assign(n, -1);
  logit_rows_.clear();
  std::vector<int>& start = seq_start_;
  std::vector<int>& end = seq_end_;
  size_t row = 0;
  int image_row = 0;
  for (const Gemma3StageSeq& s : seqs) {
    const int len = int(s.tokens.size());
    auto seq_error = [&](const std::string& what) {
      return error(absl::StrCat("sequence ", s.id, ": ", what));
    };
    if (len == 0) return seq_error("no rows");
    if (s.ring < 0 || s.ring >= rings_) {
      return seq_error(absl::StrCat("ring ", s.ring, " of ", rings_));
    }
    if (s.start_pos < 0 || s.start_pos + len > max_context_) {
      return absl::OutOfRangeError(absl::StrCat("[gemma3] stage: sequence ", s.id, ": positions ",
                                                s.start_pos, "..", s.start_pos + len - 1,
                                                " outside the context of ", max_context_));
    }
    if (attends && s.start_pos > *s.n_past) {
      return seq_error(
          absl::StrCat("positions start at ", s.start_pos, " but the cache holds ", *s.n_past));
    }
    if (s.image_rows < 0) return seq_error(absl::StrCat(s.image_rows, " image rows"));
    const int n_image = FindImageRuns(s.tokens, c.image_token_id, s.image_rows, &start, &end);
    if (n_image != s.image_rows) {
      return seq_error(absl::StrCat(s.image_rows, " image rows but ", n_image, " image tokens (id ",
                                    c.image_token_id, ") among the ", len, " rows"));
    }
    for (int r = 0; r < len; ++r) {
      const int t = s.tokens[size_t(r)];
      if (start[size_t(r)] < 0 && (t < 0 || t >= c.vocab_size)) {
        return seq_error(absl::StrCat("token id ", t, " outside the vocabulary of ", c.vocab_size));
      }
      // Positions of the run, as the rows are set below.
      run_start_[row + size_t(r)] = start[size_t(r)] < 0 ? -1 : s.start_pos + start[size_t(r)];
      run_end_[row + size_t(r)] = end[size_t(r)] < 0 ? -1 : s.start_pos + end[size_t(r)];
      if (start[size_t(r)] >= 0) image_of_row_[row + size_t(r)] = image_row++;
    }
    row += size_t(len);
    if (lm_head && s.want_logits) logit_rows_.push_back(int(row) - 1);
  }
  row = 0;
  for (const Gemma3StageSeq& s : seqs) {
    for (size_t r = 0; r < s.tokens.size(); ++r, ++row) {
      // An image row's id may lie beyond the vocabulary: its embedding is replaced.
      const bool image = run_start_[row] >= 0;
      SetRow(int(row), s.ring, image ? 0 : s.tokens[r], s.start_pos + int(r), run_start_[row],
             run_end_[row]);
    }
    if (attends) *s.n_past = s.start_pos + int(s.tokens.size());
  }
  Pass pass;
  pass.n = int(n);
  pass.embedding = embedding;
  pass.images = images;
  pass.image_of_row = image_of_row_;
  pass.hidden_in = hidden_in;
  pass.first_part = first_part;
  pass.last_part = last_part;
  pass.logit_rows = logit_rows_;
  pass.hidden_out = lm_head ? nullptr : hidden_out;
  pass.logits = logits;
  if (argmax) pass.argmax = reinterpret_cast<int32_t*>(logits);  // model/stage.h's contract
  Run(pass);
  return absl::OkStatus();
}

}  // namespace unicorn
