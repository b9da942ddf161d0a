// `unicorn inspect PATH [--mmproj FILE] [--json]`: the config and tensor list
// of a model (Hugging Face folder or GGUF), as Unicorn reads it: internal
// names, dtypes, shapes (PyTorch order), sizes and totals.
#include <iostream>

#include "absl/strings/str_format.h"
#include "model/config_json.h"
#include "model/model_files.h"
#include "model/shape.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? absl::StrFormat("%.0f B", b) : absl::StrFormat("%.1f %s", b, units[u]);
}

std::string LayerSummary(const Gemma3Config& c) {
  std::string global;
  int n_global = 0;
  for (size_t i = 0; i < c.layer_types.size(); ++i) {
    if (c.layer_types[i] == LayerType::kGlobal) {
      absl::StrAppend(&global, n_global++ ? " " : "", i);
    }
  }
  return absl::StrFormat("%d sliding (window %d), %d global: %s", c.num_layers - n_global,
                         c.sliding_window, n_global, n_global ? global : "none");
}

void PrintText(const ModelFiles& m) {
  const Gemma3Config& c = m.config();
  std::cout << "model: " << m.path()
            << (m.format() == ModelFiles::Format::kGguf ? " (gguf)" : " (safetensors)") << "\n";
  if (!m.mmproj_path().empty()) std::cout << "mmproj: " << m.mmproj_path() << "\n";
  auto row = [](const std::string& k, const std::string& v) {
    std::cout << absl::StrFormat("  %-24s %s\n", k, v);
  };
  std::cout << "config:\n";
  row("architecture", c.architecture);
  row("hidden_size", absl::StrCat(c.hidden_size));
  row("layers", absl::StrCat(c.num_layers, " (", LayerSummary(c), ")"));
  row("heads / kv heads", absl::StrCat(c.num_heads, " / ", c.num_kv_heads));
  row("head_dim", absl::StrCat(c.head_dim));
  row("intermediate_size", absl::StrCat(c.intermediate_size));
  row("vocab_size", absl::StrCat(c.vocab_size));
  row("query_pre_attn_scalar", absl::StrCat(c.query_pre_attn_scalar));
  row("rms_norm_eps", absl::StrCat(c.rms_norm_eps));
  row("rope (sliding)",
      absl::StrCat("theta ", c.rope_local.theta, ", linear x", c.rope_local.linear_factor));
  row("rope (global)",
      absl::StrCat("theta ", c.rope_global.theta, ", linear x", c.rope_global.linear_factor));
  row("final_logit_softcapping", absl::StrCat(c.final_logit_softcapping));
  row("max_position_embeddings", absl::StrCat(c.max_position_embeddings));
  row("tie_word_embeddings", c.tie_word_embeddings ? "true" : "false");
  std::string eos;
  for (int id : c.eos_token_ids) absl::StrAppend(&eos, eos.empty() ? "" : " ", id);
  row("bos / eos / pad", absl::StrCat(c.bos_token_id, " / ", eos, " / ", c.pad_token_id));
  if (c.has_vision) {
    const VisionConfig& v = c.vision;
    row("vision", absl::StrFormat("%dx%d images, patch %d, width %d, %d layers, %d heads, ffn %d",
                                  v.image_size, v.image_size, v.patch_size, v.hidden_size,
                                  v.num_layers, v.num_heads, v.intermediate_size));
    row("image tokens",
        absl::StrFormat("%d per image (image %d, boi %d, eoi %d)", v.mm_tokens_per_image,
                        c.image_token_id, c.boi_token_id, c.eoi_token_id));
  }
  if (const GgufVocab* voc = m.vocab()) {
    row("tokenizer", absl::StrCat(voc->model, ", ", voc->tokens.size(), " tokens"));
  }
  std::cout << "tensors:\n";
  std::cout << absl::StrFormat("  %-36s %-5s %-22s %12s\n", "name", "dtype", "shape", "size");
  double bytes = 0, params = 0;
  for (const TensorInfo& t : m.tensors()) {
    std::cout << absl::StrFormat("  %-36s %-5s %-22s %12s\n", t.name, Traits(t.dtype).name,
                                 ShapeString(t.shape), HumanBytes(double(t.nbytes)));
    bytes += double(t.nbytes);
    params += double(t.numel());
  }
  std::cout << absl::StrFormat("total: %d tensors, %s, %.3f B parameters\n", m.tensors().size(),
                               HumanBytes(bytes), params / 1e9);
}

void PrintJson(const ModelFiles& m) {
  nlohmann::json tensors = nlohmann::json::array();
  uint64_t bytes = 0, params = 0;
  for (const TensorInfo& t : m.tensors()) {
    tensors.push_back({{"name", t.name},
                       {"dtype", std::string(Traits(t.dtype).name)},
                       {"shape", t.shape},
                       {"bytes", t.nbytes},
                       {"file", t.file}});
    bytes += t.nbytes;
    params += uint64_t(t.numel());
  }
  nlohmann::json j = {
      {"path", m.path()},
      {"mmproj", m.mmproj_path()},
      {"format", m.format() == ModelFiles::Format::kGguf ? "gguf" : "safetensors"},
      {"config", ConfigToJson(m.config())},
      {"tensors", tensors},
      {"total_tensors", m.tensors().size()},
      {"total_bytes", bytes},
      {"total_params", params},
  };
  if (const GgufVocab* v = m.vocab()) {
    j["tokenizer"] = {{"model", v->model}, {"tokens", v->tokens.size()}};
  }
  std::cout << j.dump(1) << "\n";
}

int Inspect(const std::string& path, const std::string& mmproj, bool json) {
  auto m = ModelFiles::Open(path, mmproj);
  if (!m.ok()) {
    std::cerr << "unicorn inspect: " << m.status().message() << "\n";
    return 1;
  }
  if (json) {
    PrintJson(**m);
  } else {
    PrintText(**m);
  }
  return 0;
}

}  // namespace

void AddInspectCommands(CLI::App& app) {
  static std::string path, mmproj;
  static bool json = false;
  auto* cmd = app.add_subcommand("inspect", "show a model's config and tensors (folder or GGUF)");
  cmd->add_option("path", path, "Hugging Face model folder or .gguf file")->required();
  cmd->add_option("--mmproj", mmproj, "vision projector GGUF for a GGUF model");
  cmd->add_flag("--json", json, "machine-readable output");
  cmd->callback([] { ExitCode() = Inspect(path, mmproj, json); });
}

}  // namespace unicorn::cli
