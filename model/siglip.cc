#include "model/siglip.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "model/names.h"

namespace unicorn {
namespace {

StatusOr<std::unique_ptr<Weight>> Bind(Ops& ops, const TensorLookup& lookup,
                                       const std::string& name, std::vector<int64_t> shape) {
  const TensorInfo* t = lookup(name);
  if (t == nullptr) return absl::NotFoundError(absl::StrCat("[siglip] missing tensor ", name));
  if (t->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat("[siglip] tensor ", name, " has shape [",
                                                   absl::StrJoin(t->shape, ", "), "], expected [",
                                                   absl::StrJoin(shape, ", "), "]"));
  }
  return ops.LoadWeight(*t);
}

}  // namespace

StatusOr<std::unique_ptr<SiglipTower>> SiglipTower::Load(const Gemma3Config& config,
                                                         const TensorLookup& lookup, Ops& ops) {
  const VisionConfig& v = config.vision;
  if (!config.has_vision) return absl::FailedPreconditionError("[siglip] model has no vision");
  const int side = v.image_size / v.patch_size;
  const int pool = int(std::lround(std::sqrt(double(v.mm_tokens_per_image))));
  if (v.image_size % v.patch_size != 0 || pool * pool != v.mm_tokens_per_image || pool <= 0 ||
      side % pool != 0 || v.num_heads <= 0 || v.hidden_size % v.num_heads != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("[siglip] config: image_size ", v.image_size, ", patch_size ", v.patch_size,
                     ", mm_tokens_per_image ", v.mm_tokens_per_image, ", heads ", v.num_heads,
                     " do not tile (patches per side must be a multiple of sqrt(mm_tokens))"));
  }
  std::unique_ptr<SiglipTower> t(new SiglipTower(config, ops));
  const int64_t C = v.hidden_size, I = v.intermediate_size, P = v.patch_size;
  UNICORN_ASSIGN_OR_RETURN(t->patch_w_, Bind(ops, lookup, "v.patch_embd.weight", {C, 3, P, P}));
  UNICORN_ASSIGN_OR_RETURN(t->patch_b_, Bind(ops, lookup, "v.patch_embd.bias", {C}));
  UNICORN_ASSIGN_OR_RETURN(t->pos_,
                           Bind(ops, lookup, "v.position_embd.weight", {int64_t(side) * side, C}));
  UNICORN_ASSIGN_OR_RETURN(t->post_ln_w_, Bind(ops, lookup, "v.post_ln.weight", {C}));
  UNICORN_ASSIGN_OR_RETURN(t->post_ln_b_, Bind(ops, lookup, "v.post_ln.bias", {C}));
  UNICORN_ASSIGN_OR_RETURN(t->mm_norm_, Bind(ops, lookup, "mm.soft_emb_norm.weight", {C}));
  UNICORN_ASSIGN_OR_RETURN(t->mm_proj_, Bind(ops, lookup, "mm.input_projection.weight",
                                             {int64_t(config.hidden_size), C}));
  t->layers_.resize(size_t(v.num_layers));
  for (int i = 0; i < v.num_layers; ++i) {
    SiglipLayerWeights& l = t->layers_[size_t(i)];
    auto w = [&](const char* what, std::vector<int64_t> shape) {
      return Bind(ops, lookup, names::VBlk(i, what, "weight"), std::move(shape));
    };
    auto b = [&](const char* what, int64_t n) {
      return Bind(ops, lookup, names::VBlk(i, what, "bias"), {n});
    };
    UNICORN_ASSIGN_OR_RETURN(l.ln1_w, w("ln1", {C}));
    UNICORN_ASSIGN_OR_RETURN(l.ln1_b, b("ln1", C));
    UNICORN_ASSIGN_OR_RETURN(l.q_w, w("attn_q", {C, C}));
    UNICORN_ASSIGN_OR_RETURN(l.q_b, b("attn_q", C));
    UNICORN_ASSIGN_OR_RETURN(l.k_w, w("attn_k", {C, C}));
    UNICORN_ASSIGN_OR_RETURN(l.k_b, b("attn_k", C));
    UNICORN_ASSIGN_OR_RETURN(l.v_w, w("attn_v", {C, C}));
    UNICORN_ASSIGN_OR_RETURN(l.v_b, b("attn_v", C));
    UNICORN_ASSIGN_OR_RETURN(l.o_w, w("attn_out", {C, C}));
    UNICORN_ASSIGN_OR_RETURN(l.o_b, b("attn_out", C));
    UNICORN_ASSIGN_OR_RETURN(l.ln2_w, w("ln2", {C}));
    UNICORN_ASSIGN_OR_RETURN(l.ln2_b, b("ln2", C));
    UNICORN_ASSIGN_OR_RETURN(l.up_w, w("ffn_up", {I, C}));
    UNICORN_ASSIGN_OR_RETURN(l.up_b, b("ffn_up", I));
    UNICORN_ASSIGN_OR_RETURN(l.down_w, w("ffn_down", {C, I}));
    UNICORN_ASSIGN_OR_RETURN(l.down_b, b("ffn_down", C));
  }
  return t;
}

// SiglipEncoderLayer.forward: pre-LN attention and MLP blocks with residuals.
void SiglipTower::Layer(int l, int n) {
  const VisionConfig& v = config_.vision;
  const SiglipLayerWeights& w = layers_[size_t(l)];
  const int C = v.hidden_size, D = C / v.num_heads;
  const float eps = float(v.layer_norm_eps);
  ops_.LayerNorm(*x_, *w.ln1_w, *w.ln1_b, n, C, eps, *h_);  // layer_norm1
  // SiglipAttention: q/k/v with biases, softmax(q k^T * head_dim^-0.5) v, no mask.
  ops_.MatMul(*h_, *w.q_w, w.q_b.get(), n, *q_);
  ops_.MatMul(*h_, *w.k_w, w.k_b.get(), n, *k_);
  ops_.MatMul(*h_, *w.v_w, w.v_b.get(), n, *v_);
  AttentionParams ap;
  ap.n_heads = ap.n_kv_heads = v.num_heads;
  ap.head_dim = D;
  ap.capacity = n;  // k_ and v_ are the store: position p in slot p
  ap.scale = float(1.0 / std::sqrt(double(D)));
  ops_.Attention(*q_, *k_, *v_, *spans_, nullptr, n, ap, *attn_);
  ops_.MatMul(*attn_, *w.o_w, w.o_b.get(), n, *o_);  // out_proj
  ops_.Add(*x_, *o_, size_t(n) * C, *x_);
  // SiglipMLP: fc2(gelu_pytorch_tanh(fc1(x))).
  ops_.LayerNorm(*x_, *w.ln2_w, *w.ln2_b, n, C, eps, *h_);  // layer_norm2
  ops_.MatMul(*h_, *w.up_w, w.up_b.get(), n, *mlp_);
  ops_.Gelu(*mlp_, size_t(n) * v.intermediate_size);
  ops_.MatMul(*mlp_, *w.down_w, w.down_b.get(), n, *o_);
  ops_.Add(*x_, *o_, size_t(n) * C, *x_);
}

Status SiglipTower::Encode(std::span<const float> patches, std::vector<float>* embeds) {
  const VisionConfig& v = config_.vision;
  const int side = v.image_size / v.patch_size;
  const int n = side * side;
  const int C = v.hidden_size;
  const size_t cols = size_t(3) * v.patch_size * v.patch_size;
  if (patches.size() != size_t(n) * cols) {
    return absl::InvalidArgumentError(
        absl::StrCat("[siglip] expected ", n, " x ", cols, " patch values, got ", patches.size()));
  }
  if (!x_) {
    const size_t N = size_t(n);
    patches_ = ops_.Alloc(N * cols);
    x_ = ops_.Alloc(N * C);
    h_ = ops_.Alloc(N * C);
    q_ = ops_.Alloc(N * C);
    k_ = ops_.Alloc(N * C);
    v_ = ops_.Alloc(N * C);
    attn_ = ops_.Alloc(N * C);
    o_ = ops_.Alloc(N * C);
    mlp_ = ops_.Alloc(N * size_t(v.intermediate_size));
    pos_ids_ = ops_.Alloc(N);
    spans_ = ops_.Alloc(2 * N);
    std::vector<int32_t> ids(N), spans(2 * N);
    for (int i = 0; i < n; ++i) {
      ids[size_t(i)] = i;
      spans[2 * size_t(i)] = 0;  // every patch sees every patch
      spans[2 * size_t(i) + 1] = n - 1;
    }
    ops_.Write(*pos_ids_, 0, ids.data(), N);
    ops_.Write(*spans_, 0, spans.data(), 2 * N);
    pooled_ = ops_.Alloc(size_t(v.mm_tokens_per_image) * C);
    out_ = ops_.Alloc(size_t(v.mm_tokens_per_image) * config_.hidden_size);
  }
  // SiglipVisionEmbeddings: patch conv (as x W^T + b) + position embedding.
  ops_.Write(*patches_, 0, patches.data(), patches.size());
  ops_.MatMul(*patches_, *patch_w_, patch_b_.get(), n, *x_);
  ops_.Embed(*pos_ids_, *pos_, 1.0f, n, *h_);
  ops_.Add(*x_, *h_, size_t(n) * C, *x_);
  for (int l = 0; l < v.num_layers; ++l) Layer(l, n);
  ops_.LayerNorm(*x_, *post_ln_w_, *post_ln_b_, n, C, float(v.layer_norm_eps), *x_);

  // Gemma3MultiModalProjector: AvgPool2d over the patch grid, mm_soft_emb_norm
  // (a Gemma RMSNorm with the vision layer_norm_eps), then x @ W.
  const int pool = int(std::lround(std::sqrt(double(v.mm_tokens_per_image))));
  ops_.AvgPool(*x_, side, C, side / pool, *pooled_);
  ops_.RmsNorm(*pooled_, *mm_norm_, v.mm_tokens_per_image, C, float(v.layer_norm_eps), *pooled_);
  ops_.MatMul(*pooled_, *mm_proj_, nullptr, v.mm_tokens_per_image, *out_);
  embeds->resize(size_t(v.mm_tokens_per_image) * config_.hidden_size);
  ops_.Read(*out_, 0, embeds->data(), embeds->size());
  return absl::OkStatus();
}

std::vector<float> SiglipTower::LastHiddenState() {
  const VisionConfig& v = config_.vision;
  const int side = v.image_size / v.patch_size;
  std::vector<float> out(size_t(side) * side * v.hidden_size);
  if (x_) ops_.Read(*x_, 0, out.data(), out.size());
  return out;
}

}  // namespace unicorn
