// Hugging Face tensor names -> internal names (model/names.h).
//
// Accepted prefixes (every dialect seen in published Gemma 3 checkpoints):
//   text:      model.                   (Gemma3ForCausalLM)
//              language_model.model.    (Google's multimodal checkpoints)
//              model.language_model.    (transformers >= 4.52 multimodal)
//   vision:    vision_tower.vision_model.  model.vision_tower.vision_model.
//              vision_tower.  model.vision_tower.   (transformers 5)
//   projector: multi_modal_projector.  model.multi_modal_projector.
//   LM head:   lm_head.weight  language_model.lm_head.weight  (-> output.weight;
//              dropped when the embeddings are tied)
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace unicorn {

inline constexpr char kOutputWeight[] = "output.weight";  // untied LM head [vocab, hidden]

struct HfNameMapping {
  std::string internal;
  // HF stores mm_input_projection_weight as [v_hidden, hidden] (used as
  // x @ W); internally it is [hidden, v_hidden] like every other projection.
  bool transpose = false;
};

// The internal name of a Hugging Face tensor, or nullopt for a tensor
// Unicorn does not use (e.g. a SigLIP head).
std::optional<HfNameMapping> MapHfName(std::string_view hf_name);

// True for the Gemma RMSNorm weights (applied as x * (1 + w)), which GGUF
// stores as 1 + w: every text norm, q/k norms and mm.soft_emb_norm. SigLIP
// LayerNorms (v.*.ln1/ln2, v.post_ln) are not.
bool IsGemmaRmsNorm(std::string_view internal_name);

}  // namespace unicorn
