// `unicorn quantize --in HF_FOLDER_OR_GGUF [--mmproj MMPROJ.gguf] --out FILE.gguf
//                   --type T [--recipe FILE.yaml] [--mmproj-out FILE.gguf] [--threads N]`
//
// Writes a GGUF that llama.cpp loads (NF4 excepted: a Unicorn extension type,
// model/kquant.h). Types per tensor: model/quant_plan.h (scheme, fallback);
// a --recipe's first matching glob overrides the scheme for text matrices
// and token_embd. Vision tensors go to a separate mmproj GGUF (F16
// matrices, as convert_hf_to_gguf.py), by default mmproj-<out name>.
//
// Memory: tensors stream through a few MB chunk at a time: each chunk of
// output rows is dequantized from the mapped source to f32 and quantized,
// split over all threads; a finished tensor's source pages are dropped from
// the resident set, so peak RSS stays at a few tens of MB plus the vocab,
// whatever the model size.
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/quant_recipe.h"
#include "model/gguf_model_writer.h"
#include "model/model_files.h"
#include "model/name_map.h"
#include "model/quant.h"
#include "model/quant_plan.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

struct QuantizeArgs {
  std::string in, mmproj, out, type = "q4_k_m", recipe, mmproj_out;
  int threads = 0;
};

// Rows [b, e) of fn over `threads` threads (inline when small).
template <typename F>
void ParallelRows(int64_t b, int64_t e, int threads, F fn) {
  const int64_t n = e - b;
  const int t = int(std::min<int64_t>(threads, std::max<int64_t>(1, n / 4)));
  if (t <= 1) {
    fn(b, e);
    return;
  }
  std::vector<std::thread> pool;
  for (int i = 0; i < t; ++i) {
    const int64_t lo = b + n * i / t, hi = b + n * (i + 1) / t;
    pool.emplace_back([&fn, lo, hi] { fn(lo, hi); });
  }
  for (std::thread& th : pool) th.join();
}

class Progress {
 public:
  explicit Progress(int64_t total) : total_(total), tty_(::isatty(2) != 0) {}
  void Add(int64_t n, const std::string& what) {
    done_ += n;
    if (!tty_) return;
    const int pct = total_ > 0 ? int(100 * done_ / total_) : 100;
    const int bar = pct * 30 / 100;
    std::fprintf(stderr, "\r[%s%s] %3d%% %-40.40s", std::string(size_t(bar), '#').c_str(),
                 std::string(size_t(30 - bar), '.').c_str(), pct, what.c_str());
    if (done_ >= total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  int64_t total_, done_ = 0;
  bool tty_;
};

int64_t PlanElems(const std::vector<GgufTensorPlan>& plan) {
  int64_t n = 0;
  for (const GgufTensorPlan& t : plan) n += t.rows() * t.row_elems();
  return n;
}

// Reads from the opened source model, converts to GGUF conventions and
// encodes each chunk of rows in its planned type.
GgufTensorFiller SourceFiller(const ModelFiles& files, int threads, Progress* progress) {
  return [&files, threads, progress](const GgufTensorPlan& t, int64_t row_begin, int64_t n_rows,
                                     uint8_t* out) -> Status {
    UNICORN_ASSIGN_OR_RETURN(const TensorInfo* src, files.Get(t.name));
    const int64_t n = t.row_elems();
    const size_t out_row = RowBytes(t.type, n);
    if (t.name == "mm.input_projection.weight") {
      // Held [hidden, v_hidden]; the file wants the transpose. Small: whole.
      const int64_t cols = src->shape.back(), rows = src->numel() / cols;
      std::vector<float> all(static_cast<size_t>(rows * cols)), row(static_cast<size_t>(n));
      DequantizeRow(src->dtype, src->data, all.data(), rows * cols);
      for (int64_t r = row_begin; r < row_begin + n_rows; ++r) {
        for (int64_t k = 0; k < n; ++k) row[size_t(k)] = all[size_t(k * cols + r)];
        QuantizeRow(t.type, row.data(), out + size_t(r - row_begin) * out_row, n);
      }
    } else {
      if (src->numel() != t.rows() * n || src->shape.back() != n) {
        return absl::InvalidArgumentError(
            absl::StrCat("[quantize] ", t.name, ": source shape does not match the plan"));
      }
      const size_t in_row = RowBytes(src->dtype, n);
      const bool norm = IsGemmaRmsNorm(t.name);
      ParallelRows(row_begin, row_begin + n_rows, threads, [&](int64_t b, int64_t e) {
        std::vector<float> row(static_cast<size_t>(n));  // [n]
        for (int64_t r = b; r < e; ++r) {
          DequantizeRow(src->dtype, src->data + size_t(r) * in_row, row.data(), n);
          if (norm) {
            for (float& x : row) x += 1.0f;  // GGUF stores 1 + w
          }
          QuantizeRow(t.type, row.data(), out + size_t(r - row_begin) * out_row, n);
        }
      });
    }
    if (row_begin + n_rows == t.rows()) files.DontNeed(*src);
    progress->Add(n_rows * n, t.name);
    return absl::OkStatus();
  };
}

Status Quantize(const QuantizeArgs& a) {
  if (!IsQuantScheme(a.type)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown --type ", a.type, " (q8_0 q4_0 q4_k_m q2_k nf4 q3_k q4_k q5_k q6_k)"));
  }
  QuantRecipe recipe;
  if (!a.recipe.empty()) {
    UNICORN_ASSIGN_OR_RETURN(recipe, LoadQuantRecipe(a.recipe));
    for (const QuantRecipe::Rule& r : recipe.rules) {
      UNICORN_RETURN_IF_ERROR(Annotate(ParseQuantType(r.type).status(),
                                       absl::StrCat("[recipe] ", a.recipe, ": ", r.match)));
    }
    if (!recipe.default_type.empty()) {
      UNICORN_RETURN_IF_ERROR(ParseQuantType(recipe.default_type).status());
    }
  }
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<ModelFiles> files, ModelFiles::Open(a.in, a.mmproj));
  const Gemma3Config& c = files->config();
  GgufVocab vocab;
  if (files->vocab() != nullptr) {
    vocab = *files->vocab();
  } else {
    UNICORN_ASSIGN_OR_RETURN(vocab, VocabFromHfTokenizer(files->dir(), c.vocab_size));
  }
  GgufModelOptions o;
  o.name = std::filesystem::path(a.out).stem().string();
  // A config llama.cpp cannot express (the demo model's
  // query_pre_attn_scalar) is kept in an extension key; llama.cpp then
  // computes with its own value.
  o.unicorn_extensions = true;
  const std::string main = a.type == "q4_k_m" ? "q4_k" : a.type;
  o.matrix_type = *ParseQuantType(main);
  o.text_type = [&](const GgufTensorPlan& p) {
    DType want = SchemeType(a.type, p.name, p.role, LayerOf(p.name), c.num_layers);
    if (!recipe.default_type.empty() && p.role == TensorRole::kMatrix) {
      want = *ParseQuantType(recipe.default_type);
    }
    if (const std::string* r = recipe.Find(p.name)) want = *ParseQuantType(*r);
    return WithFallback(want, p.row_elems());
  };
  const int threads =
      a.threads > 0 ? a.threads : int(std::max(1u, std::thread::hardware_concurrency()));

  const std::vector<GgufTensorPlan> plan = PlanTextGguf(c, o);
  int64_t elems = 0, bytes = 0;
  for (const GgufTensorPlan& t : plan) {
    elems += t.rows() * t.row_elems();
    bytes += int64_t(RowBytes(t.type, t.row_elems())) * t.rows();
  }
  Progress progress(PlanElems(plan));
  UNICORN_RETURN_IF_ERROR(
      WriteTextGguf(a.out, c, &vocab, o, SourceFiller(*files, threads, &progress)));
  std::printf("wrote %s: %lld tensors, %.1f MB of weights, %.3f bits per weight (%s)\n",
              a.out.c_str(), (long long)plan.size(), double(bytes) / 1e6,
              8.0 * double(bytes) / double(elems), a.type.c_str());
  if (c.has_vision && files->Find("v.patch_embd.weight") != nullptr) {
    std::string mm = a.mmproj_out;
    if (mm.empty()) {
      const std::filesystem::path p(a.out);
      mm = (p.parent_path() / ("mmproj-" + p.filename().string())).string();
    }
    Progress vp(PlanElems(PlanMmprojGguf(c, o)));
    UNICORN_RETURN_IF_ERROR(WriteMmprojGguf(mm, c, o, SourceFiller(*files, threads, &vp)));
    std::printf("wrote %s (vision)\n", mm.c_str());
  }
  return absl::OkStatus();
}

}  // namespace

void AddQuantizeCommands(CLI::App& app) {
  static QuantizeArgs a;
  auto* cmd = app.add_subcommand("quantize", "write a quantized GGUF of a model");
  cmd->add_option("--in", a.in, "Hugging Face model folder or GGUF")->required();
  cmd->add_option("--mmproj", a.mmproj, "vision GGUF of a GGUF --in (quantized to --mmproj-out)");
  cmd->add_option("--out", a.out, "output .gguf (text model)")->required();
  cmd->add_option("--type", a.type, "q8_0, q4_0, q4_k_m, q2_k, nf4, q3_k, q4_k, q5_k, q6_k")
      ->capture_default_str();
  cmd->add_option("--recipe", a.recipe, "YAML: tensor-name globs -> types (first match wins)");
  cmd->add_option("--mmproj-out", a.mmproj_out, "vision GGUF (default mmproj-<out>)");
  cmd->add_option("--threads", a.threads, "threads (default: all cores)");
  cmd->callback([] {
    Status s = Quantize(a);
    if (!s.ok()) {
      std::cerr << "unicorn quantize: " << s.message() << "\n";
      ExitCode() = 1;
    }
  });
}

}  // namespace unicorn::cli
