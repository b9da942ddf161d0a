// `unicorn bench`: prefill and decode speed, measured like llama-bench so the
// numbers compare: ppN = one prefill of N tokens into an empty context; tgN =
// N single-token decode steps starting from an empty context; with -b B,
// tgNxB = N steps of B sequences decoding together, one pass over B rows per
// step (as the server batches them), reported as the B sequences' total
// tok/s. Prompt ids are fixed pseudo-random text ids; each test runs once
// untimed, then -r times.
#include <chrono>
#include <cmath>
#include <iostream>
#include <span>

#include "absl/strings/str_format.h"
#include "model/gemma3_batch.h"
#include "model/sampler.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"
#include "tools/cli/model_cli.h"

namespace unicorn::cli {
namespace {

struct BenchArgs {
  ModelOptions model;
  int prompt = 512;
  int gen = 128;
  int reps = 3;
  int batch = 1;  // sequences per decode step
  bool json = false;
};

struct Result {
  std::string test;
  int tokens = 0;
  std::vector<double> tok_s;
  double Mean() const {
    double s = 0;
    for (double v : tok_s) s += v;
    return tok_s.empty() ? 0 : s / double(tok_s.size());
  }
  double Std() const {
    if (tok_s.size() < 2) return 0;
    double m = Mean(), s = 0;
    for (double v : tok_s) s += (v - m) * (v - m);
    return std::sqrt(s / double(tok_s.size() - 1));
  }
};

Status Bench(const BenchArgs& a) {
  UNICORN_ASSIGN_OR_RETURN(auto engine, OpenEngine(a.model));
  const Gemma3Config& c = engine->config();
  SessionOptions so;
  so.max_context = std::max(a.prompt, a.gen) + 1;
  so.max_chunk = std::max({1, std::min(a.prompt, 512), a.batch});
  UNICORN_ASSIGN_OR_RETURN(auto session, Gemma3Session::Create(engine->model(), so));

  std::vector<int> prompt(size_t(std::max(a.prompt, 1)));
  uint32_t x = 12345;
  const uint32_t text_ids = uint32_t(std::min(c.vocab_size, 255999) - 3);
  for (int& t : prompt) {
    x = x * 1664525u + 1013904223u;
    t = 3 + int((x >> 8) % text_ids);  // skip pad, eos, bos
  }
  using Clock = std::chrono::steady_clock;
  // The next token from a greedy pick (the engine's Argmax): an image token
  // (which needs an image) replaced by a text one.
  auto text_token = [&](int token) { return token == c.image_token_id ? prompt[0] : token; };
  std::vector<float> logits;
  std::vector<Result> results;

  if (a.prompt > 0) {
    Result r{absl::StrFormat("pp%d", a.prompt), a.prompt, {}};
    for (int rep = -1; rep < a.reps; ++rep) {  // rep -1: warm-up
      session->Reset();
      const auto t0 = Clock::now();
      UNICORN_RETURN_IF_ERROR(session->Prefill(prompt, {}, LogitsMode::kLast, &logits));
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (rep >= 0) r.tok_s.push_back(a.prompt / s);
    }
    results.push_back(r);
  }
  if (a.gen > 0 && a.batch > 1) {
    UNICORN_ASSIGN_OR_RETURN(auto batch, Gemma3Batch::Create(engine->model(), so, a.batch));
    Result r{absl::StrFormat("tg%dx%d", a.gen, a.batch), a.gen * a.batch, {}};
    // Greedy rows take their argmax on the device, as the server's do.
    std::vector<int> rows(size_t(a.batch)), tokens(rows.size());
    std::vector<int32_t> ids(rows.size());
    for (int i = 0; i < a.batch; ++i) rows[size_t(i)] = i;
    for (int rep = -1; rep < a.reps; ++rep) {
      for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = prompt[i % prompt.size()];
      const auto t0 = Clock::now();
      const int steps = rep < 0 ? std::min(a.gen, 4) : a.gen;
      for (int step = 0; step < steps; ++step) {
        for (int i = 0; i < a.batch; ++i) batch->SetRow(i, i, tokens[size_t(i)], step, -1, -1);
        Gemma3Batch::Pass pass;
        pass.n = a.batch;
        pass.last_part = 2 * c.num_layers;
        pass.logit_rows = rows;
        pass.argmax = ids.data();
        batch->Run(pass);
        for (size_t i = 0; i < tokens.size(); ++i) {
          tokens[i] = text_token(ids[i]);
        }
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (rep >= 0) r.tok_s.push_back(double(steps) * a.batch / s);
    }
    results.push_back(r);
  } else if (a.gen > 0) {
    Result r{absl::StrFormat("tg%d", a.gen), a.gen, {}};
    for (int rep = -1; rep < a.reps; ++rep) {
      session->Reset();
      int token = prompt[0];
      const auto t0 = Clock::now();
      for (int i = 0; i < (rep < 0 ? std::min(a.gen, 4) : a.gen); ++i) {
        UNICORN_RETURN_IF_ERROR(session->Decode(token, &logits));
        token = text_token(Argmax(logits));
      }
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      if (rep >= 0) r.tok_s.push_back(a.gen / s);
    }
    results.push_back(r);
  }

  const std::string desc = engine->ops().Describe();
  if (a.json) {
    nlohmann::json j;
    ModelOptions m = a.model;
    UNICORN_RETURN_IF_ERROR(ResolveModelOptions(&m));
    j["model"] = m.model;
    j["backend"] = m.backend;
    j["device"] = desc;
    j["threads"] = a.model.threads;
    for (const Result& r : results) {
      j["results"].push_back({{"test", r.test},
                              {"tokens", r.tokens},
                              {"tok_s_mean", r.Mean()},
                              {"tok_s_std", r.Std()},
                              {"samples", r.tok_s}});
    }
    std::cout << j.dump(2) << "\n";
  } else {
    std::cout << absl::StrFormat("| %-40s | %-36s | %8s | %20s |\n", "model", "backend", "test",
                                 "t/s");
    std::cout << absl::StrFormat("| %-40s | %-36s | %8s | %20s |\n", std::string(40, '-'),
                                 std::string(36, '-'), std::string(8, '-'), std::string(20, '-'));
    ModelOptions m = a.model;
    UNICORN_RETURN_IF_ERROR(ResolveModelOptions(&m));
    std::string model = m.model;
    if (model.size() > 40) model = "..." + model.substr(model.size() - 37);
    for (const Result& r : results) {
      std::cout << absl::StrFormat("| %-40s | %-36s | %8s | %20s |\n", model, desc, r.test,
                                   absl::StrFormat("%.2f ± %.2f", r.Mean(), r.Std()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

void AddBenchCommands(CLI::App& app) {
  static BenchArgs a;
  auto* cmd = app.add_subcommand("bench", "measure prefill and decode speed (as llama-bench)");
  AddModelOptions(cmd, &a.model);
  cmd->add_option("-p,--n-prompt", a.prompt, "prefill test: tokens (0 = skip)");
  cmd->add_option("-n,--n-gen", a.gen, "decode test: tokens (0 = skip)");
  cmd->add_option("-r,--repetitions", a.reps, "timed repetitions of each test");
  cmd->add_option("-b,--batch", a.batch,
                  "decode test: sequences decoding together, one pass per step (tgNxB: their "
                  "total tok/s)")
      ->check(CLI::Range(1, 256));
  cmd->add_flag("--json", a.json, "print JSON instead of a table");
  cmd->callback([] {
    Status s = Bench(a);
    if (!s.ok()) {
      std::cerr << "unicorn bench: " << s.message() << "\n";
      ExitCode() = 1;
    }
  });
}

}  // namespace unicorn::cli
