#include "model/engine.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "model/image.h"

namespace unicorn {

StatusOr<std::unique_ptr<Engine>> Engine::Open(const EngineOptions& options,
                                               const BackendRegistry& backends) {
  std::unique_ptr<Engine> e(new Engine());
  UNICORN_ASSIGN_OR_RETURN(e->ops_, backends.Create(options.backend, options.backend_options));
  UNICORN_ASSIGN_OR_RETURN(e->files_, ModelFiles::Open(options.model, options.mmproj));
  const ModelFiles* files = e->files_.get();
  TensorLookup lookup = [files](const std::string& name) { return files->Find(name); };
  UNICORN_ASSIGN_OR_RETURN(e->model_, Gemma3Model::Load(files->config(), lookup, *e->ops_, {}, options.progress));
  if (files->config().has_vision) {
    UNICORN_ASSIGN_OR_RETURN(e->vision_, SiglipTower::Load(files->config(), lookup, *e->ops_));
  }
  return e;
}

StatusOr<std::vector<float>> Engine::EmbedImageFile(const std::string& path) {
  if (!vision_) {
    return absl::FailedPreconditionError(
        absl::StrCat("[engine] ", files_->path(), " has no vision tower (a GGUF needs --mmproj)"));
  }
  UNICORN_ASSIGN_OR_RETURN(Image img, DecodeImageFile(path));
  const VisionConfig& v = config().vision;
  const std::vector<float> patches = Patchify(PixelValues(img, v), v.image_size, v.patch_size);
  std::vector<float> embeds;
  UNICORN_RETURN_IF_ERROR(vision_->Encode(patches, &embeds));
  return embeds;
}

StatusOr<std::unique_ptr<Tokenizer>> Engine::LoadTokenizer() const {
  const std::string dir = files_->dir();
  if (std::filesystem::exists(std::filesystem::path(dir) / "tokenizer.json")) {
    return Tokenizer::FromFolder(dir);
  }
  const GgufVocab* g = files_->vocab();
  if (g == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("[engine] no tokenizer.json in ", dir, " and no vocabulary in the model"));
  }
  TokenizerVocab v;
  v.pieces = g->tokens;
  for (int32_t t : g->token_types) v.types.push_back(TokenType(t));
  for (const std::string& m : g->merges) {
    const size_t sp = m.find(' ');
    if (sp != std::string::npos) v.merges.emplace_back(m.substr(0, sp), m.substr(sp + 1));
  }
  v.scores = g->scores;
  v.bos_id = g->bos_id;
  v.eos_id = g->eot_id >= 0 ? g->eot_id : g->eos_id;
  v.unk_id = g->unk_id;
  v.pad_id = g->pad_id;
  v.add_bos = g->add_bos.value_or(true);
  v.add_eos = g->add_eos.value_or(false);
  return Tokenizer::FromVocab(std::move(v));
}

}  // namespace unicorn
