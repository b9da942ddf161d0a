// A pipeline worker's share of a Gemma 3 model (model/stage.h) on one ops
// backend: the weights of its parts and one Gemma3Session (KV caches of the
// attention layers it holds) per sequence.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "model/gemma3.h"
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
  // A freed sequence's session is kept (reset) for the next sequence: its
  // buffers, and the command buffers a queueing backend (Vulkan) recorded
  // over them, serve again, so a new request records nothing for its decode
  // steps. At most max_sequences sessions exist, live or spare.
  void Free(uint64_t seq_id) override;
  void FreeAll() override {
    sessions_.clear();
    spare_.clear();
  }
  int hidden_size() const override { return model_->config().hidden_size; }
  int vocab_size() const override { return model_->config().vocab_size; }
  int64_t weight_bytes() const override { return weight_bytes_; }
  std::string Describe() const override;

  Status EncodeImage(std::span<const float> pixels, float* out) override;
  int64_t pixel_floats() const override;
  int64_t image_embed_floats() const override;

 private:
  StatusOr<Gemma3Session*> SessionFor(uint64_t seq_id);

  ShardSpec spec_;
  std::unique_ptr<ModelFiles> files_;
  std::unique_ptr<Gemma3Model> model_;
  std::map<uint64_t, std::unique_ptr<Gemma3Session>> sessions_;
  std::unique_ptr<SiglipTower> vision_;                // spec.vision and the model has one
  std::vector<float> embeds_;                          // [mm_tokens_per_image, hidden] scratch
  std::vector<std::unique_ptr<Gemma3Session>> spare_;  // freed, Reset()
  int64_t weight_bytes_ = 0;
};

}  // namespace unicorn
