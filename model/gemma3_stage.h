// A pipeline worker's share of a Gemma 3 model (model/stage.h) on one ops
// backend: the weights of its parts and one Gemma3Batch whose rings hold the
// sequences' KV caches (of the attention layers it holds). A step's
// sequences run as one forward pass: each weight is read once per step.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "model/gemma3.h"
#include "model/gemma3_batch.h"
#include "model/model_files.h"
#include "model/siglip.h"
#include "model/stage.h"

namespace unicorn {

class Gemma3StageModel final : public StageModel {
 public:
  // Opens spec.model_path, binds only the tensors of the spec's parts on
  // `ops` (which must outlive the result).
  static StatusOr<std::unique_ptr<Gemma3StageModel>> Load(const ShardSpec& spec, Ops& ops);

  Status Run(const StageSpec& spec, std::span<const StageRows> seqs, std::span<const int> ids,
             std::span<const float> images, const float* hidden_in, float* hidden_out,
             float* logits) override;
  // A freed sequence's ring serves the next sequence. Rings are added as
  // sequences arrive (the stores double), up to max_sequences.
  void Free(uint64_t seq_id) override;
  void FreeAll() override;
  ~Gemma3StageModel() override;
  int hidden_size() const override { return model_->config().hidden_size; }
  int vocab_size() const override { return model_->config().vocab_size; }
  int64_t weight_bytes() const override { return weight_bytes_; }
  std::string Describe() const override;

  Status EncodeImage(std::span<const float> pixels, float* out) override;
  int64_t pixel_floats() const override;
  int64_t image_embed_floats() const override;

 private:
  struct SeqState {
    int ring = 0;
    int n_past = 0;  // positions its ring holds
  };
  StatusOr<SeqState*> SeqFor(uint64_t seq_id);

  ShardSpec spec_;
  std::unique_ptr<ModelFiles> files_;
  std::unique_ptr<Gemma3Model> model_;
  std::unique_ptr<Gemma3Batch> batch_;
  std::map<uint64_t, SeqState> seqs_;
  std::vector<int> free_rings_;
  std::vector<Gemma3StageSeq> stage_seqs_;  // per step, kept
  std::unique_ptr<SiglipTower> vision_;     // spec.vision and the model has one
  std::vector<float> embeds_;               // [mm_tokens_per_image, hidden] scratch
  int64_t weight_bytes_ = 0;
};

}  // namespace unicorn
