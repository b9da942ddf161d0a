#include "model/name_map.h"

#include <cstring>

#include "model/names.h"

namespace unicorn {
namespace {

bool ConsumePrefix(std::string_view* s, std::string_view prefix) {
  if (s->substr(0, prefix.size()) != prefix) return false;
  s->remove_prefix(prefix.size());
  return true;
}

// "12.rest" -> layer 12, s = "rest".
bool ConsumeLayer(std::string_view* s, int* layer) {
  size_t n = 0;
  int v = 0;
  while (n < s->size() && (*s)[n] >= '0' && (*s)[n] <= '9' && n < 6) v = v * 10 + ((*s)[n++] - '0');
  if (n == 0 || n >= s->size() || (*s)[n] != '.') return false;
  *layer = v;
  s->remove_prefix(n + 1);
  return true;
}

struct Rule {
  const char* hf;
  const char* internal;
};

// Per decoder layer: "layers.<i>.<hf>" -> "blk.<i>.<internal>.weight".
constexpr Rule kTextLayer[] = {
    {"input_layernorm.weight", "attn_norm"},
    {"self_attn.q_proj.weight", "attn_q"},
    {"self_attn.k_proj.weight", "attn_k"},
    {"self_attn.v_proj.weight", "attn_v"},
    {"self_attn.o_proj.weight", "attn_output"},
    {"self_attn.q_norm.weight", "attn_q_norm"},
    {"self_attn.k_norm.weight", "attn_k_norm"},
    {"post_attention_layernorm.weight", "post_attention_norm"},
    {"pre_feedforward_layernorm.weight", "ffn_norm"},
    {"post_feedforward_layernorm.weight", "post_ffw_norm"},
    {"mlp.gate_proj.weight", "ffn_gate"},
    {"mlp.up_proj.weight", "ffn_up"},
    {"mlp.down_proj.weight", "ffn_down"},
};

// Per SigLIP layer: "encoder.layers.<i>.<hf>.{weight,bias}" -> "v.blk.<i>.<internal>.{..}".
constexpr Rule kVisionLayer[] = {
    {"layer_norm1", "ln1"},
    {"self_attn.q_proj", "attn_q"},
    {"self_attn.k_proj", "attn_k"},
    {"self_attn.v_proj", "attn_v"},
    {"self_attn.out_proj", "attn_out"},
    {"layer_norm2", "ln2"},
    {"mlp.fc1", "ffn_up"},
    {"mlp.fc2", "ffn_down"},
};

constexpr Rule kVisionTop[] = {
    {"embeddings.patch_embedding.weight", "v.patch_embd.weight"},
    {"embeddings.patch_embedding.bias", "v.patch_embd.bias"},
    {"embeddings.position_embedding.weight", "v.position_embd.weight"},
    {"post_layernorm.weight", "v.post_ln.weight"},
    {"post_layernorm.bias", "v.post_ln.bias"},
};

std::optional<HfNameMapping> MapText(std::string_view s) {
  if (s == "embed_tokens.weight") return HfNameMapping{names::kTokenEmbd};
  if (s == "norm.weight") return HfNameMapping{names::kOutputNorm};
  int layer = 0;
  if (!ConsumePrefix(&s, "layers.") || !ConsumeLayer(&s, &layer)) return std::nullopt;
  for (const Rule& r : kTextLayer) {
    if (s == r.hf) return HfNameMapping{names::Blk(layer, r.internal)};
  }
  return std::nullopt;
}

std::optional<HfNameMapping> MapVision(std::string_view s) {
  for (const Rule& r : kVisionTop) {
    if (s == r.hf) return HfNameMapping{r.internal};
  }
  int layer = 0;
  if (!ConsumePrefix(&s, "encoder.layers.") || !ConsumeLayer(&s, &layer)) return std::nullopt;
  for (const Rule& r : kVisionLayer) {
    std::string_view rest = s;
    if (!ConsumePrefix(&rest, r.hf) || !ConsumePrefix(&rest, ".")) continue;
    if (rest == "weight") return HfNameMapping{names::VBlk(layer, r.internal, "weight")};
    if (rest == "bias") return HfNameMapping{names::VBlk(layer, r.internal, "bias")};
  }
  return std::nullopt;
}

std::optional<HfNameMapping> MapProjector(std::string_view s) {
  // Google's checkpoints name the projection matrix "mm_input_projection_weight" (a bare
  // nn.Parameter); accept the ".weight" spelling too.
  if (s == "mm_input_projection_weight" || s == "mm_input_projection.weight") {
    return HfNameMapping{"mm.input_projection.weight", /*transpose=*/true};
  }
  if (s == "mm_soft_emb_norm.weight") return HfNameMapping{"mm.soft_emb_norm.weight"};
  return std::nullopt;
}

}  // namespace

std::optional<HfNameMapping> MapHfName(std::string_view name) {
  if (name == "lm_head.weight" || name == "language_model.lm_head.weight") {
    return HfNameMapping{kOutputWeight};
  }
  std::string_view s = name;
  for (std::string_view p : {"model.multi_modal_projector.", "multi_modal_projector."}) {
    if (ConsumePrefix(&s, p)) return MapProjector(s);
  }
  for (std::string_view p : {"model.vision_tower.vision_model.", "vision_tower.vision_model.",
                             "model.vision_tower.", "vision_tower."}) {
    if (ConsumePrefix(&s, p)) return MapVision(s);
  }
  for (std::string_view p : {"model.language_model.", "language_model.model.", "model."}) {
    if (ConsumePrefix(&s, p)) return MapText(s);
  }
  return std::nullopt;
}

bool IsGemmaRmsNorm(std::string_view n) {
  if (n == names::kOutputNorm || n == "mm.soft_emb_norm.weight") return true;
  constexpr std::string_view kSuffix = "_norm.weight";
  return n.substr(0, 4) == "blk." && n.size() > kSuffix.size() &&
         n.substr(n.size() - kSuffix.size()) == kSuffix;
}

}  // namespace unicorn
