// Client subcommands that talk to a running coordinator over gRPC.
#include <chrono>
#include <iostream>
#include <memory>

#include "absl/strings/str_format.h"
#include "common/config.h"
#include "nlohmann/json.hpp"
#include "tools/cli/client.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

// The client of --server/--config/--tls-*, or an error printed as `cmd: ...`.
std::unique_ptr<Client> Connect(const ServerFlags& flags, const char* cmd) {
  auto e = ResolveEndpoint(flags);
  if (!e.ok()) {
    std::cerr << "unicorn " << cmd << ": " << e.status().message() << "\n";
    return nullptr;
  }
  return std::make_unique<Client>(*e);
}

int Health(const ServerFlags& server) {
  auto c = Connect(server, "health");
  if (c == nullptr) return 2;
  Client& client = *c;
  auto info = client.ModelInfo();
  if (!info.ok()) {
    std::cerr << "unicorn health: " << info.status().message() << "\n";
    return 1;
  }
  std::cout << (info->serving() ? "SERVING" : "NOT_SERVING") << "  " << client.address()
            << "  model " << info->model_path() << "\n";
  std::cout << absl::StrFormat("  %-8s %-4s %-7s %-6s %-8s %-12s %-9s %s\n", "worker", "kind",
                               "backend", "alive", "pid", "heartbeat", "restarts", "device");
  for (const auto& w : info->workers()) {
    std::cout << absl::StrFormat("  %-8s %-4s %-7s %-6s %-8d %-12s %-9d %s\n", w.name(), w.kind(),
                                 w.backend(), w.alive() ? "yes" : "NO", w.pid(),
                                 absl::StrFormat("%.0f us rtt", w.heartbeat_rtt_us()), w.restarts(),
                                 w.device());
    if (!w.standby_for().empty() || (!w.runs_parts_of().empty() && w.runs_parts_of() != w.name())) {
      std::cout << "    " << w.name() << ": "
                << (w.standby_for().empty() ? "" : "standby for " + w.standby_for() + "; ")
                << (w.runs_parts_of().empty() ? "idle" : "runs the parts of " + w.runs_parts_of())
                << "\n";
    }
    if (!w.backend_note().empty()) {
      std::cout << "    " << w.name() << ": requested " << w.requested_backend() << ", runs "
                << w.backend() << ": " << w.backend_note() << "\n";
    }
  }
  return info->serving() ? 0 : 3;
}

// Prints the streamed text; with `chat`, sends the prompt as one user turn.
// With `timings`, reports the time to the first token and the decode speed
// after it on stderr, as `unicorn run` does for one process.
int Generate(const ServerFlags& server, const v1::GenerateRequest& req, bool chat, bool timings) {
  auto c = Connect(server, "generate");
  if (c == nullptr) return 2;
  Client& client = *c;
  using Clock = std::chrono::steady_clock;
  const Clock::time_point t0 = Clock::now();
  Clock::time_point first, last;
  int tokens = 0;
  v1::Usage usage;
  std::string id;
  auto print = [&](const v1::GenerateResponse& r) {
    std::cout << r.text() << std::flush;
    id = r.request_id();
    if (r.token_id() >= 0) {
      last = Clock::now();
      if (tokens++ == 0) first = last;
    }
    if (r.has_usage()) usage = r.usage();
  };
  Status s;
  if (chat) {
    v1::ChatRequest c;
    auto* m = c.add_messages();
    m->set_role("user");
    m->add_parts()->set_text(req.prompt());
    c.set_max_tokens(req.max_tokens());
    c.set_trace(req.trace());
    *c.mutable_sampling() = req.sampling();
    s = client.Chat(c, print);
  } else {
    s = client.Generate(req, print);
  }
  if (!s.ok()) {
    std::cerr << "unicorn generate: " << s.message() << "\n";
    return 1;
  }
  std::cout << "\n";
  if (timings && tokens > 0) {
    const double ttft = std::chrono::duration<double>(first - t0).count();
    const double tg = std::chrono::duration<double>(last - first).count();
    std::cerr << absl::StrFormat(
        "[generate] prompt %d tokens, first token after %.3f s | generation %d tokens, %.2f "
        "tok/s\n",
        usage.prompt_tokens(), ttft, tokens, tokens > 1 ? (tokens - 1) / tg : 0.0);
  }
  if (req.trace()) std::cerr << "traced: unicorn profile --request " << id << " -o trace.json\n";
  return 0;
}

// The served model, as /v1/models names it, and what the coordinator knows of it.
int Models(const ServerFlags& server, bool json) {
  auto c = Connect(server, "models");
  if (c == nullptr) return 2;
  Client& client = *c;
  auto info = client.ModelInfo();
  if (!info.ok()) {
    std::cerr << "unicorn models: " << info.status().message() << "\n";
    return 1;
  }
  std::string path = info->model_path();
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  std::string id = path.substr(path.rfind('/') + 1);
  if (id.size() > 5 && id.substr(id.size() - 5) == ".gguf") id.resize(id.size() - 5);
  if (json) {
    nlohmann::json j = {{"id", id},
                        {"path", info->model_path()},
                        {"architecture", info->architecture()},
                        {"layers", info->num_layers()},
                        {"vocab", info->vocab_size()},
                        {"plan", info->plan_summary()},
                        {"serving", info->serving()}};
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::cout << absl::StrFormat("%-20s %-24s %6s %7s  %s\n", "id", "architecture", "layers", "vocab",
                               "path");
  std::cout << absl::StrFormat("%-20s %-24s %6d %7d  %s\n", id, info->architecture(),
                               info->num_layers(), info->vocab_size(), info->model_path());
  std::cout << "plan: " << info->plan_summary() << "\n";
  return 0;
}

int Stats(const ServerFlags& server, bool json) {
  auto c = Connect(server, "stats");
  if (c == nullptr) return 2;
  Client& client = *c;
  auto s = client.Stats();
  if (!s.ok()) {
    std::cerr << "unicorn stats: " << s.status().message() << "\n";
    return 1;
  }
  nlohmann::json j = {{"requests_total", s->requests_total()},
                      {"requests_running", s->requests_running()},
                      {"requests_waiting", s->requests_waiting()},
                      {"prompt_tokens_total", s->prompt_tokens_total()},
                      {"generated_tokens_total", s->generated_tokens_total()},
                      {"replays_total", s->replays_total()},
                      {"hops_total", s->hops_total()}};
  if (json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  for (auto& [k, v] : j.items()) std::cout << absl::StrFormat("%-24s %s\n", k, v.dump());
  return 0;
}

}  // namespace

void AddClientCommands(CLI::App& app) {
  static ServerFlags server;
  auto* health = app.add_subcommand("health", "show whether the system serves, and its workers");
  AddServerFlags(health, &server);
  health->callback([] { ExitCode() = Health(server); });

  static bool json = false;
  auto* models = app.add_subcommand("models", "show the model the system serves");
  AddServerFlags(models, &server);
  models->add_flag("--json", json, "print JSON");
  models->callback([] { ExitCode() = Models(server, json); });
  auto* stats = app.add_subcommand("stats", "show the server's request and token counters");
  AddServerFlags(stats, &server);
  stats->add_flag("--json", json, "print JSON");
  stats->callback([] { ExitCode() = Stats(server, json); });

  static v1::GenerateRequest req;
  static std::string prompt;
  static int max_tokens = 64;
  static float temperature = 0;
  static uint64_t seed = 0;
  static bool chat = false;
  static bool ignore_eos = false;
  static bool timings = false;
  auto* gen = app.add_subcommand("generate", "generate text from a prompt (prints only the text)");
  AddServerFlags(gen, &server);
  gen->add_option("-p,--prompt", prompt, "prompt text")->required();
  gen->add_option("-n,--max-tokens", max_tokens, "tokens to generate");
  gen->add_option("--temp", temperature, "temperature (0 = greedy)");
  auto* seed_opt = gen->add_option("--seed", seed, "sampling seed");
  gen->add_flag("--ignore-eos", ignore_eos, "generate past end-of-sequence, exactly -n tokens");
  gen->add_flag("--timings", timings, "report time to first token and tok/s on stderr");
  gen->add_flag("--chat", chat, "send the prompt as a user turn of a chat (template applied)");
  static bool traced = false;
  gen->add_flag("--trace", traced, "trace this request (then see `unicorn profile --request`)");
  gen->callback([seed_opt] {
    req.set_prompt(prompt);
    req.set_max_tokens(max_tokens);
    req.mutable_sampling()->set_temperature(temperature);
    req.mutable_sampling()->set_ignore_eos(ignore_eos);
    req.set_trace(traced);
    if (seed_opt->count() > 0) {
      req.mutable_sampling()->set_seed(seed);
      req.mutable_sampling()->set_has_seed(true);
    }
    ExitCode() = Generate(server, req, chat, timings);
  });
}

}  // namespace unicorn::cli
