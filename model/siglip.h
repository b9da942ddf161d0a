// Gemma 3's vision tower (SigLIP, transformers' models/siglip/modeling_siglip.py)
// and multimodal projector (Gemma3MultiModalProjector), written against the
// ops interface like the text model:
//   patches [n_patches, 3*p*p] -> patch embedding (the conv as a product) +
//   position embedding -> num_layers pre-LN encoder layers (LayerNorm, attention
//   with biases, GELU-tanh MLP) -> post LayerNorm -> average pool to
//   mm_tokens_per_image -> RMSNorm (1 + w) -> projection to the text hidden size.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "common/status.h"
#include "model/gemma3.h"
#include "model/gemma3_config.h"
#include "model/ops.h"

namespace unicorn {

struct SiglipLayerWeights {
  std::unique_ptr<Weight> ln1_w, ln1_b;        // [v_hidden]
  std::unique_ptr<Weight> q_w, k_w, v_w, o_w;  // [v_hidden, v_hidden]
  std::unique_ptr<Weight> q_b, k_b, v_b, o_b;  // [v_hidden]
  std::unique_ptr<Weight> ln2_w, ln2_b;        // [v_hidden]
  std::unique_ptr<Weight> up_w, up_b;          // fc1 [v_inter, v_hidden], [v_inter]
  std::unique_ptr<Weight> down_w, down_b;      // fc2 [v_hidden, v_inter], [v_hidden]
};

class SiglipTower {
 public:
  // Binds the vision and projector tensors (model/names.h). Errors name the
  // missing or misshapen tensor.
  static StatusOr<std::unique_ptr<SiglipTower>> Load(const Gemma3Config& config,
                                                     const TensorLookup& lookup, Ops& ops);

  // Image embeddings [mm_tokens_per_image, hidden] from the patches of one
  // image ([n_patches, 3*p*p], model/image.h Patchify). Scratch buffers are
  // allocated on the first call and reused.
  Status Encode(std::span<const float> patches, std::vector<float>* embeds);

  // The vision tower's output before the projector, [n_patches, v_hidden]
  // (for tests): filled by the last Encode().
  std::vector<float> LastHiddenState();

 private:
  SiglipTower(const Gemma3Config& config, Ops& ops) : config_(config), ops_(ops) {}
  void Layer(int l, int n);

  Gemma3Config config_;
  Ops& ops_;
  std::unique_ptr<Weight> patch_w_, patch_b_;  // [v_hidden, 3*p*p], [v_hidden]
  std::unique_ptr<Weight> pos_;                // [n_patches, v_hidden]
  std::unique_ptr<Weight> post_ln_w_, post_ln_b_;
  std::unique_ptr<Weight> mm_norm_;  // [v_hidden], applied as (1 + w)
  std::unique_ptr<Weight> mm_proj_;  // [hidden, v_hidden]
  std::vector<SiglipLayerWeights> layers_;

  // Scratch, [n_patches, ...].
  std::unique_ptr<Buffer> patches_, x_, h_, q_, k_, v_, attn_, o_, mlp_, pos_ids_, spans_;
  std::unique_ptr<Buffer> pooled_, out_;
};

}  // namespace unicorn
