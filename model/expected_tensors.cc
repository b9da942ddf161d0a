#include "model/expected_tensors.h"

#include "model/name_map.h"
#include "model/names.h"

namespace unicorn {

std::vector<ExpectedTensor> ExpectedTextTensors(const Gemma3Config& c) {
  const int64_t h = c.hidden_size, q = int64_t(c.num_heads) * c.head_dim,
                kv = int64_t(c.num_kv_heads) * c.head_dim, ff = c.intermediate_size;
  std::vector<ExpectedTensor> out;
  out.push_back({names::kTokenEmbd, {c.vocab_size, h}, TensorRole::kEmbedding});
  for (int i = 0; i < c.num_layers; ++i) {
    auto add = [&](const char* what, std::vector<int64_t> shape, TensorRole role) {
      out.push_back({names::Blk(i, what), std::move(shape), role});
    };
    add("attn_norm", {h}, TensorRole::kNorm);
    add("attn_q", {q, h}, TensorRole::kMatrix);
    add("attn_k", {kv, h}, TensorRole::kMatrix);
    add("attn_v", {kv, h}, TensorRole::kMatrix);
    add("attn_q_norm", {c.head_dim}, TensorRole::kNorm);
    add("attn_k_norm", {c.head_dim}, TensorRole::kNorm);
    add("attn_output", {h, q}, TensorRole::kMatrix);
    add("post_attention_norm", {h}, TensorRole::kNorm);
    add("ffn_norm", {h}, TensorRole::kNorm);
    add("ffn_gate", {ff, h}, TensorRole::kMatrix);
    add("ffn_up", {ff, h}, TensorRole::kMatrix);
    add("ffn_down", {h, ff}, TensorRole::kMatrix);
    add("post_ffw_norm", {h}, TensorRole::kNorm);
  }
  out.push_back({names::kOutputNorm, {h}, TensorRole::kNorm});
  if (!c.tie_word_embeddings)
    out.push_back({kOutputWeight, {c.vocab_size, h}, TensorRole::kMatrix});
  return out;
}

std::vector<ExpectedTensor> ExpectedVisionTensors(const Gemma3Config& c) {
  std::vector<ExpectedTensor> out;
  if (!c.has_vision) return out;
  const VisionConfig& v = c.vision;
  const int64_t vh = v.hidden_size, vff = v.intermediate_size, p = v.patch_size;
  const int64_t side = v.image_size / v.patch_size;
  out.push_back({"v.patch_embd.weight", {vh, v.num_channels, p, p}, TensorRole::kOther});
  out.push_back({"v.patch_embd.bias", {vh}, TensorRole::kVector});
  out.push_back({"v.position_embd.weight", {side * side, vh}, TensorRole::kOther});
  for (int i = 0; i < v.num_layers; ++i) {
    auto add = [&](const char* what, const char* kind, std::vector<int64_t> shape,
                   TensorRole role) {
      out.push_back({names::VBlk(i, what, kind), std::move(shape), role});
    };
    add("ln1", "weight", {vh}, TensorRole::kVector);
    add("ln1", "bias", {vh}, TensorRole::kVector);
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_out"}) {
      add(m, "weight", {vh, vh}, TensorRole::kMatrix);
      add(m, "bias", {vh}, TensorRole::kVector);
    }
    add("ln2", "weight", {vh}, TensorRole::kVector);
    add("ln2", "bias", {vh}, TensorRole::kVector);
    add("ffn_up", "weight", {vff, vh}, TensorRole::kMatrix);
    add("ffn_up", "bias", {vff}, TensorRole::kVector);
    add("ffn_down", "weight", {vh, vff}, TensorRole::kMatrix);
    add("ffn_down", "bias", {vh}, TensorRole::kVector);
  }
  out.push_back({"v.post_ln.weight", {vh}, TensorRole::kVector});
  out.push_back({"v.post_ln.bias", {vh}, TensorRole::kVector});
  out.push_back({"mm.soft_emb_norm.weight", {vh}, TensorRole::kNorm});
  out.push_back({"mm.input_projection.weight", {c.hidden_size, vh}, TensorRole::kMatrix});
  return out;
}

}  // namespace unicorn
