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
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/quant_recipe.h"
#include "model/gemma3.h"
#include "model/gguf_model_writer.h"
#include "model/model_files.h"
#include "model/name_map.h"
#include "model/quant.h"
#include "model/quant_plan.h"
#include "model/tokenizer.h"
#include "tools/cli/commands.h"
#include "tools/cli/model_cli.h"
#include "tools/cli/progress.h"

namespace unicorn::cli {
namespace {

struct QuantizeArgs {
  std::string in, mmproj, out, type = "q4_k_m", recipe, mmproj_out;
  int threads = 0;
  double auto_mix = 0;  // target bits per weight (0: off)
  std::string auto_mix_types = "q2_k,q4_k,q8_0";
  std::string calib;
  int calib_windows = 4, calib_window = 128;
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

int64_t PlanElems(const std::vector<GgufTensorPlan>& plan) {
  int64_t n = 0;
  for (const GgufTensorPlan& t : plan) n += t.rows() * t.row_elems();
  return n;
}

// Reads from the opened source model, converts to GGUF conventions and
// encodes each chunk of rows in its planned type.
GgufTensorFiller SourceFiller(const ModelFiles& files, int threads, ProgressBar* progress) {
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
    // Drop the source rows just read from the resident set (a 262k-row
    // token_embd would otherwise stay mapped in whole until its end).
    TensorInfo done = *src;
    if (t.name != "mm.input_projection.weight") {
      const size_t in_row = RowBytes(src->dtype, n);
      done.data = src->data + size_t(row_begin) * in_row;
      done.nbytes = size_t(n_rows) * in_row;
    }
    files.DontNeed(done);
    progress->Add(n_rows * n, t.name);
    return absl::OkStatus();
  };
}

// --- --auto-mix ---------------------------------------------------------------
// Sensitivity: for every text matrix and every level L of --auto-mix-types
// but the last, a GGUF where only that tensor is in L (all others bf16) runs
// the calibration windows on the CPU engine; its mean KL(ref || probe) over
// all positions is the tensor's cost at L (the last, highest level counts as
// cost 0). Greedy: all tensors start at the lowest level; the upgrade with
// the largest KL saved per added bit that still fits target_bpw * elements
// is applied until none fits.

struct Calib {
  std::vector<std::vector<int>> windows;     // [bos] + ids
  std::vector<std::vector<float>> ref_logp;  // per window [positions, vocab]
  int vocab = 0;
};

void LogSoftmaxRows(std::vector<float>& l, int vocab) {
  for (size_t r = 0; r < l.size() / size_t(vocab); ++r) {
    float* x = l.data() + r * size_t(vocab);
    float mx = -INFINITY;
    for (int k = 0; k < vocab; ++k) mx = std::max(mx, x[k]);
    double sum = 0;
    for (int k = 0; k < vocab; ++k) sum += std::exp(double(x[k] - mx));
    const float lse = mx + float(std::log(sum));
    for (int k = 0; k < vocab; ++k) x[k] -= lse;
  }
}

StatusOr<std::vector<std::vector<float>>> RunCalib(const std::string& model, int threads,
                                                   const Calib& c, int window) {
  ModelOptions mo;
  mo.model = model;
  mo.threads = threads;
  UNICORN_ASSIGN_OR_RETURN(auto e, OpenEngine(mo));
  SessionOptions so;
  so.max_context = window;
  so.max_chunk = window;
  UNICORN_ASSIGN_OR_RETURN(auto s, Gemma3Session::Create(e->model(), so));
  std::vector<std::vector<float>> out;
  for (const std::vector<int>& w : c.windows) {
    std::vector<float> l;
    s->Reset();
    UNICORN_RETURN_IF_ERROR(s->Prefill(w, {}, LogitsMode::kAll, &l));  // [window, vocab]
    LogSoftmaxRows(l, e->config().vocab_size);
    out.push_back(std::move(l));
  }
  return out;
}

double MeanKl(const Calib& c, const std::vector<std::vector<float>>& q) {
  double kl = 0;
  int64_t n = 0;
  for (size_t w = 0; w < c.windows.size(); ++w) {
    const size_t rows = c.ref_logp[w].size() / size_t(c.vocab);
    for (size_t r = 0; r < rows; ++r) {
      const float* p = c.ref_logp[w].data() + r * size_t(c.vocab);
      const float* qq = q[w].data() + r * size_t(c.vocab);
      double k = 0;
      for (int j = 0; j < c.vocab; ++j) k += std::exp(double(p[j])) * double(p[j] - qq[j]);
      kl += k;
      ++n;
    }
  }
  return n ? kl / double(n) : 0;
}

// Chooses a type per text matrix / embedding; returns name -> type.
StatusOr<std::map<std::string, DType>> AutoMix(const QuantizeArgs& a, const ModelFiles& files,
                                               const GgufVocab& vocab, int threads) {
  const Gemma3Config& c = files.config();
  std::vector<DType> levels;
  for (size_t i = 0, j; i <= a.auto_mix_types.size(); i = j + 1) {
    j = a.auto_mix_types.find(',', i);
    if (j == std::string::npos) j = a.auto_mix_types.size();
    UNICORN_ASSIGN_OR_RETURN(DType t, ParseQuantType(a.auto_mix_types.substr(i, j - i)));
    levels.push_back(t);
  }
  if (levels.size() < 2) return absl::InvalidArgumentError("--auto-mix-types: give >= 2 types");
  if (a.calib.empty()) return absl::InvalidArgumentError("--auto-mix needs --calib TEXT_FILE");
  // Calibration windows.
  Calib cal;
  {
    ModelOptions mo;
    mo.model = a.in;
    mo.threads = threads;
    UNICORN_ASSIGN_OR_RETURN(auto e, OpenEngine(mo));
    UNICORN_ASSIGN_OR_RETURN(auto tok, e->LoadTokenizer());
    std::ifstream in(a.calib);
    if (!in) return absl::NotFoundError(absl::StrCat("[quantize] cannot read ", a.calib));
    std::stringstream ss;
    ss << in.rdbuf();
    const std::vector<int32_t> ids = tok->Encode(ss.str(), false);
    const int chunk = a.calib_window - 1;
    for (int w = 0; w < a.calib_windows && int64_t(w + 1) * chunk <= int64_t(ids.size()); ++w) {
      std::vector<int> win = {c.bos_token_id};
      win.insert(win.end(), ids.begin() + int64_t(w) * chunk, ids.begin() + int64_t(w + 1) * chunk);
      cal.windows.push_back(std::move(win));
    }
    cal.vocab = c.vocab_size;
  }
  if (cal.windows.empty())
    return absl::InvalidArgumentError("[quantize] calibration text too short");
  UNICORN_ASSIGN_OR_RETURN(cal.ref_logp, RunCalib(a.in, threads, cal, a.calib_window));

  GgufModelOptions base;
  base.unicorn_extensions = true;
  base.matrix_type = DType::kBF16;
  base.embedding_type = DType::kBF16;
  const std::vector<GgufTensorPlan> plan = PlanTextGguf(c, base);
  struct Cand {
    std::string name;
    std::vector<DType> types;  // per level, after fallback
    std::vector<double> bits;  // per level
    std::vector<double> kl;    // per level (last: 0)
    size_t level = 0;
  };
  std::vector<Cand> cands;
  double fixed_bits = 0, elems = 0;
  for (const GgufTensorPlan& p : plan) {
    elems += double(p.rows()) * double(p.row_elems());
    if (p.role != TensorRole::kMatrix && p.role != TensorRole::kEmbedding) {
      fixed_bits += 8.0 * double(RowBytes(p.type, p.row_elems())) * double(p.rows());
      continue;
    }
    Cand cd;
    cd.name = p.name;
    for (DType l : levels) {
      cd.types.push_back(WithFallback(l, p.row_elems()));
      cd.bits.push_back(8.0 * double(RowBytes(cd.types.back(), p.row_elems())) * double(p.rows()));
    }
    cands.push_back(std::move(cd));
  }
  const std::string probe = a.out + ".probe.gguf";
  ProgressBar sensitivity("auto-mix sensitivity", int64_t(cands.size()));
  for (Cand& cd : cands) {
    for (size_t l = 0; l + 1 < levels.size(); ++l) {
      if (l > 0 && cd.types[l] == cd.types[l - 1]) {
        cd.kl.push_back(cd.kl.back());
        continue;
      }
      GgufModelOptions o = base;
      o.text_type = [&](const GgufTensorPlan& p) {
        return p.name == cd.name ? cd.types[l] : DType::kBF16;
      };
      ProgressBar quiet("", 0, stderr, /*enabled=*/false);
      UNICORN_RETURN_IF_ERROR(
          WriteTextGguf(probe, c, &vocab, o, SourceFiller(files, threads, &quiet)));
      UNICORN_ASSIGN_OR_RETURN(auto q, RunCalib(probe, threads, cal, a.calib_window));
      cd.kl.push_back(MeanKl(cal, q));
    }
    cd.kl.push_back(0);
    sensitivity.Add(1, cd.name);
  }
  sensitivity.Done();
  std::remove(probe.c_str());
  double bits = fixed_bits;
  for (const Cand& cd : cands) bits += cd.bits[0];
  const double budget = a.auto_mix * elems;
  while (true) {
    Cand* best = nullptr;
    double best_gain = 0;
    size_t best_next = 0;
    for (Cand& cd : cands) {
      // The next level with a different type (after fallback, levels may
      // coincide: an upgrade to the same type gains nothing and must not
      // block the real one behind it).
      size_t next = cd.level + 1;
      while (next + 1 < levels.size() && cd.types[next] == cd.types[cd.level]) ++next;
      if (next >= levels.size() || cd.types[next] == cd.types[cd.level]) continue;
      const double add = cd.bits[next] - cd.bits[cd.level];
      if (bits + add > budget) continue;
      const double saved = cd.kl[cd.level] - cd.kl[next];
      const double gain = add > 0 ? saved / add : INFINITY;
      if (best == nullptr || gain > best_gain) {
        best = &cd;
        best_gain = gain;
        best_next = next;
      }
    }
    if (best == nullptr) break;
    bits += best->bits[best_next] - best->bits[best->level];
    best->level = best_next;
  }
  std::map<std::string, DType> out;
  std::printf("auto-mix %.3f bpw target, %.3f bpw chosen (text model)\n", a.auto_mix, bits / elems);
  std::printf("%-28s %-6s %s\n", "tensor", "type", "KL if alone at each level");
  for (const Cand& cd : cands) {
    out[cd.name] = cd.types[cd.level];
    std::string kls;
    for (size_t l = 0; l < levels.size(); ++l) {
      kls += absl::StrCat(std::string(Traits(cd.types[l]).name), "=", cd.kl[l], " ");
    }
    std::printf("%-28s %-6s %s\n", cd.name.c_str(),
                std::string(Traits(cd.types[cd.level]).name).c_str(), kls.c_str());
  }
  return out;
}

Status Quantize(const QuantizeArgs& a) {
  if (a.auto_mix <= 0 && !IsQuantScheme(a.type)) {
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
  const int threads =
      a.threads > 0 ? a.threads : int(std::max(1u, std::thread::hardware_concurrency()));
  std::map<std::string, DType> mix;
  if (a.auto_mix > 0) {
    UNICORN_ASSIGN_OR_RETURN(mix, AutoMix(a, *files, vocab, threads));
  }
  const std::string main = a.type == "q4_k_m" ? "q4_k" : a.type;
  o.matrix_type = IsQuantScheme(a.type) ? *ParseQuantType(main) : DType::kQ4_K;
  o.text_type = [&](const GgufTensorPlan& p) {
    if (auto it = mix.find(p.name); it != mix.end()) return it->second;
    DType want = SchemeType(a.type, p.name, p.role, LayerOf(p.name), c.num_layers);
    if (!recipe.default_type.empty() && p.role == TensorRole::kMatrix) {
      want = *ParseQuantType(recipe.default_type);
    }
    if (const std::string* r = recipe.Find(p.name)) want = *ParseQuantType(*r);
    return WithFallback(want, p.row_elems());
  };

  const std::vector<GgufTensorPlan> plan = PlanTextGguf(c, o);
  int64_t elems = 0, bytes = 0;
  for (const GgufTensorPlan& t : plan) {
    elems += t.rows() * t.row_elems();
    bytes += int64_t(RowBytes(t.type, t.row_elems())) * t.rows();
  }
  ProgressBar progress("quantize", PlanElems(plan));
  UNICORN_RETURN_IF_ERROR(
      WriteTextGguf(a.out, c, &vocab, o, SourceFiller(*files, threads, &progress)));
  progress.Done();
  std::printf("wrote %s: %lld tensors, %.1f MB of weights, %.3f bits per weight (%s)\n",
              a.out.c_str(), (long long)plan.size(), double(bytes) / 1e6,
              8.0 * double(bytes) / double(elems), a.auto_mix > 0 ? "auto-mix" : a.type.c_str());
  if (c.has_vision && files->Find("v.patch_embd.weight") != nullptr) {
    std::string mm = a.mmproj_out;
    if (mm.empty()) {
      const std::filesystem::path p(a.out);
      mm = (p.parent_path() / ("mmproj-" + p.filename().string())).string();
    }
    ProgressBar vp("quantize vision", PlanElems(PlanMmprojGguf(c, o)));
    UNICORN_RETURN_IF_ERROR(WriteMmprojGguf(mm, c, o, SourceFiller(*files, threads, &vp)));
    vp.Done();
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
  cmd->add_option("--auto-mix", a.auto_mix,
                  "target bits per weight: per-tensor types from measured sensitivity");
  cmd->add_option("--auto-mix-types", a.auto_mix_types, "levels, lowest first")
      ->capture_default_str();
  cmd->add_option("--calib", a.calib, "calibration text for --auto-mix");
  cmd->add_option("--calib-windows", a.calib_windows, "calibration windows")->capture_default_str();
  cmd->add_option("--calib-window", a.calib_window, "tokens per calibration window")
      ->capture_default_str();
  cmd->callback([] {
    Status s = Quantize(a);
    if (!s.ok()) {
      std::cerr << "unicorn quantize: " << s.message() << "\n";
      ExitCode() = 1;
    }
  });
}

}  // namespace unicorn::cli
