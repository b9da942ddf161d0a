// `unicorn quality --ref REF --model QUANT --text FILE [--backend cpu|vulkan]
//                  [--window 256] [--max-windows N] [--json]`
//
// What a quantization costs, measured: the text is tokenized (no BOS) with
// the reference's tokenizer, cut into consecutive chunks of window - 1 ids
// (remainder dropped), each run as [<bos>] + chunk (tests/data/demo/ref.json's
// perplexity procedure). At every predicted position both models' next-token
// distributions give:
//   ppl      exp(mean NLL of the true next token), for each model;
//   kl       mean KL(P_ref || P_model) in nats;
//   top1     fraction of positions where both argmaxes agree;
// plus each model's weight bytes and bits per weight (all tensors' bytes * 8
// / all tensors' elements, text and vision as opened).
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "model/gemma3.h"
#include "model/tokenizer.h"
#include "tools/cli/commands.h"
#include "tools/cli/model_cli.h"

namespace unicorn::cli {
namespace {

struct QualityArgs {
  ModelOptions ref, model;
  std::string text;
  int window = 256;
  int max_windows = 0;
  bool json = false;
};

struct Size {
  double bytes = 0, elems = 0;
};

Size WeightSize(const ModelFiles& f) {
  Size s;
  for (const TensorInfo& t : f.tensors()) {
    s.bytes += double(t.nbytes);
    s.elems += double(t.numel());
  }
  return s;
}

// log-softmax of one row in place; returns nothing.
void LogSoftmax(std::vector<double>& v) {
  double mx = -INFINITY;
  for (double x : v) mx = std::max(mx, x);
  double sum = 0;
  for (double x : v) sum += std::exp(x - mx);
  const double lse = mx + std::log(sum);
  for (double& x : v) x -= lse;
}

Status Quality(const QualityArgs& a) {
  UNICORN_ASSIGN_OR_RETURN(auto ref, OpenEngine(a.ref));
  UNICORN_ASSIGN_OR_RETURN(auto quant, OpenEngine(a.model));
  const int vocab = ref->config().vocab_size;
  if (quant->config().vocab_size != vocab) {
    return absl::InvalidArgumentError("[quality] the models' vocabularies differ");
  }
  UNICORN_ASSIGN_OR_RETURN(auto tok, ref->LoadTokenizer());
  std::ifstream in(a.text);
  if (!in) return absl::NotFoundError(absl::StrCat("[quality] cannot read ", a.text));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::vector<int32_t> ids = tok->Encode(ss.str(), /*add_bos=*/false);
  const int chunk = a.window - 1;
  int windows = int(ids.size()) / chunk;
  if (a.max_windows > 0) windows = std::min(windows, a.max_windows);
  if (windows == 0) return absl::InvalidArgumentError("[quality] text shorter than one window");

  SessionOptions so;
  so.max_context = a.window;
  so.max_chunk = a.window;
  UNICORN_ASSIGN_OR_RETURN(auto rs, Gemma3Session::Create(ref->model(), so));
  UNICORN_ASSIGN_OR_RETURN(auto qs, Gemma3Session::Create(quant->model(), so));
  double nll_r = 0, nll_q = 0, kl = 0;
  int64_t agree = 0, n = 0;
  std::vector<float> lr, lq;
  std::vector<double> pr(static_cast<size_t>(vocab)), pq(static_cast<size_t>(vocab));
  for (int w = 0; w < windows; ++w) {
    std::vector<int> win = {ref->config().bos_token_id};
    win.insert(win.end(), ids.begin() + int64_t(w) * chunk, ids.begin() + int64_t(w + 1) * chunk);
    rs->Reset();
    qs->Reset();
    UNICORN_RETURN_IF_ERROR(rs->Prefill(win, {}, LogitsMode::kAll, &lr));  // [window, vocab]
    UNICORN_RETURN_IF_ERROR(qs->Prefill(win, {}, LogitsMode::kAll, &lq));
    for (int i = 0; i + 1 < int(win.size()); ++i) {
      const float* a_row = lr.data() + size_t(i) * vocab;
      const float* b_row = lq.data() + size_t(i) * vocab;
      int am = 0, bm = 0;
      for (int k = 0; k < vocab; ++k) {
        pr[size_t(k)] = a_row[k];
        pq[size_t(k)] = b_row[k];
        if (a_row[k] > a_row[am]) am = k;
        if (b_row[k] > b_row[bm]) bm = k;
      }
      LogSoftmax(pr);
      LogSoftmax(pq);
      const int next = win[size_t(i + 1)];
      nll_r -= pr[size_t(next)];
      nll_q -= pq[size_t(next)];
      double k = 0;
      for (int j = 0; j < vocab; ++j)
        k += std::exp(pr[size_t(j)]) * (pr[size_t(j)] - pq[size_t(j)]);
      kl += k;
      agree += am == bm;
      ++n;
    }
  }
  const Size sr = WeightSize(ref->files()), sq = WeightSize(quant->files());
  const double ppl_r = std::exp(nll_r / double(n)), ppl_q = std::exp(nll_q / double(n));
  const double mkl = kl / double(n), top1 = double(agree) / double(n);
  if (a.json) {
    std::printf(
        "{\"ref\": \"%s\", \"model\": \"%s\", \"backend\": \"%s\", \"windows\": %d, "
        "\"positions\": %lld, \"ppl_ref\": %.6f, \"ppl\": %.6f, \"kl\": %.6f, \"top1\": %.6f, "
        "\"bytes_ref\": %.0f, \"bytes\": %.0f, \"bpw_ref\": %.4f, \"bpw\": %.4f}\n",
        a.ref.model.c_str(), a.model.model.c_str(), a.model.backend.c_str(), windows, (long long)n,
        ppl_r, ppl_q, mkl, top1, sr.bytes, sq.bytes, 8 * sr.bytes / sr.elems,
        8 * sq.bytes / sq.elems);
  } else {
    std::printf("%d windows of %d tokens, %lld predicted positions, backend %s\n", windows,
                a.window, (long long)n, a.model.backend.c_str());
    std::printf("%-10s %-40s %10s %10s %8s\n", "", "file", "ppl", "MB", "bpw");
    std::printf("%-10s %-40s %10.4f %10.2f %8.3f\n", "ref", a.ref.model.c_str(), ppl_r,
                sr.bytes / 1e6, 8 * sr.bytes / sr.elems);
    std::printf("%-10s %-40s %10.4f %10.2f %8.3f\n", "model", a.model.model.c_str(), ppl_q,
                sq.bytes / 1e6, 8 * sq.bytes / sq.elems);
    std::printf("mean KL(ref || model) %.6f nats, top-1 agreement %.4f\n", mkl, top1);
  }
  return absl::OkStatus();
}

}  // namespace

void AddQualityCommands(CLI::App& app) {
  static QualityArgs a;
  auto* cmd = app.add_subcommand("quality", "compare a quantized model with its reference");
  cmd->add_option("--ref", a.ref.model, "reference model (HF folder or GGUF)")->required();
  cmd->add_option("--model", a.model.model, "model to judge (HF folder or GGUF)")->required();
  cmd->add_option("--text", a.text, "evaluation text file")->required();
  cmd->add_option("--backend", a.model.backend, "cpu or vulkan")->capture_default_str();
  cmd->add_option("--threads", a.model.threads, "CPU threads (default: all cores)");
  cmd->add_option("--window", a.window, "tokens per window, BOS included")->capture_default_str();
  cmd->add_option("--max-windows", a.max_windows, "stop after N windows (0: all)");
  cmd->add_flag("--json", a.json, "one JSON object instead of the table");
  cmd->callback([] {
    a.ref.backend = a.model.backend;
    a.ref.threads = a.model.threads;
    Status s = Quality(a);
    if (!s.ok()) {
      std::cerr << "unicorn quality: " << s.message() << "\n";
      ExitCode() = 1;
    }
  });
}

}  // namespace unicorn::cli
