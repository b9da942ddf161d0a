// A model ready to run: its files, a compute backend, the text model, the
// vision tower (when the model has one) and the tokenizer. Shared by the
// `unicorn run/logits/bench` commands and the workers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/backend_registry.h"
#include "model/gemma3.h"
#include "model/model_files.h"
#include "model/siglip.h"
#include "model/tokenizer.h"

namespace unicorn {

struct EngineOptions {
  std::string model;   // HF folder or .gguf
  std::string mmproj;  // vision GGUF for a GGUF model (optional)
  std::string backend = "cpu";
  BackendOptions backend_options;
  LoadProgress progress;  // optional: told after each text layer is bound
};

class Engine {
 public:
  static StatusOr<std::unique_ptr<Engine>> Open(const EngineOptions& options,
                                                const BackendRegistry& backends);

  const ModelFiles& files() const { return *files_; }
  const Gemma3Config& config() const { return files_->config(); }
  Ops& ops() const { return *ops_; }
  const Gemma3Model& model() const { return *model_; }
  bool has_vision() const { return vision_ != nullptr; }

  // Image embeddings [mm_tokens_per_image, hidden] of an image file
  // (decode, preprocess, SigLIP, projector). Errors without a vision tower.
  StatusOr<std::vector<float>> EmbedImageFile(const std::string& path);
  SiglipTower* vision() const { return vision_.get(); }

  // The tokenizer: tokenizer.json next to the model (HF folder or the GGUF's
  // folder), else the GGUF's own vocabulary.
  StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer() const;

 private:
  Engine() = default;
  std::unique_ptr<ModelFiles> files_;
  std::unique_ptr<Ops> ops_;
  std::unique_ptr<Gemma3Model> model_;
  std::unique_ptr<SiglipTower> vision_;
};

}  // namespace unicorn
