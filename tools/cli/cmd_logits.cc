// `unicorn logits`: float32 logits [n_tokens, vocab] of a token sequence,
// written as .npy, for checks against other implementations. The ids are
// taken verbatim (no BOS added); positions holding the config's image token
// id are filled, in order, with the embeddings of the --image files.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "model/npy.h"
#include "tools/cli/commands.h"
#include "tools/cli/model_cli.h"

namespace unicorn::cli {
namespace {

struct LogitsArgs {
  ModelOptions model;
  std::string tokens;
  std::vector<std::string> images;
  std::string out;
};

Status Logits(const LogitsArgs& a) {
  UNICORN_ASSIGN_OR_RETURN(std::vector<int> ids, ParseTokenList(a.tokens));
  UNICORN_ASSIGN_OR_RETURN(auto engine, OpenEngine(a.model));
  const Gemma3Config& c = engine->config();
  int n_image_tokens = 0;
  for (int id : ids) n_image_tokens += id == c.image_token_id;
  const int per_image = c.vision.mm_tokens_per_image;
  if (n_image_tokens != int(a.images.size()) * (c.has_vision ? per_image : 0) ||
      (n_image_tokens > 0 && !c.has_vision)) {
    return absl::InvalidArgumentError(
        absl::StrCat("[logits] ", n_image_tokens, " image tokens (id ", c.image_token_id, ") but ",
                     a.images.size(), " images",
                     c.has_vision ? absl::StrCat(" of ", per_image, " tokens each")
                                  : std::string(" and a model without vision")));
  }
  std::vector<float> embeds;
  for (const std::string& img : a.images) {
    UNICORN_ASSIGN_OR_RETURN(std::vector<float> e, engine->EmbedImageFile(img));
    embeds.insert(embeds.end(), e.begin(), e.end());
  }
  SessionOptions so;
  so.max_context = int(ids.size());
  so.max_chunk = std::min<int>(int(ids.size()), std::max(256, per_image + 1));
  UNICORN_ASSIGN_OR_RETURN(auto session, Gemma3Session::Create(engine->model(), so));
  std::vector<float> logits;
  UNICORN_RETURN_IF_ERROR(session->Prefill(ids, embeds, LogitsMode::kAll, &logits));
  return WriteNpyF32(a.out, logits.data(), {int64_t(ids.size()), int64_t(c.vocab_size)});
}

}  // namespace

void AddLogitsCommands(CLI::App& app) {
  static LogitsArgs a;
  auto* cmd = app.add_subcommand("logits", "write the logits of a token sequence as .npy");
  AddModelOptions(cmd, &a.model);
  cmd->add_option("--tokens", a.tokens, "token ids, e.g. 2,105,2364 (taken verbatim)")->required();
  cmd->add_option("--image", a.images, "image files for the image-token positions, in order");
  cmd->add_option("-o,--out", a.out, "output .npy: float32 [n_tokens, vocab]")->required();
  cmd->callback([] {
    Status s = Logits(a);
    if (!s.ok()) {
      std::cerr << "unicorn logits: " << s.message() << "\n";
      ExitCode() = 1;
    }
  });
}

}  // namespace unicorn::cli
