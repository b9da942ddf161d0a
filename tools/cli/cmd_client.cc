// Client subcommands that talk to a running coordinator over gRPC.
#include <iostream>

#include "absl/strings/str_format.h"
#include "common/config.h"
#include "tools/cli/client.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

// --server, else the address in the default config, else the built-in default.
std::string ServerAddress(const std::string& flag) {
  if (!flag.empty()) return flag;
  auto config = LoadConfig(DefaultConfigPath());
  return config.ok() ? config->coordinator.grpc_address : CoordinatorConfig().grpc_address;
}

int Health(const std::string& server) {
  Client client(ServerAddress(server));
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
  }
  return info->serving() ? 0 : 3;
}

// Prints the streamed text; with `chat`, sends the prompt as one user turn.
int Generate(const std::string& server, const v1::GenerateRequest& req, bool chat) {
  Client client(ServerAddress(server));
  std::string id;
  auto print = [&id](const v1::GenerateResponse& r) {
    std::cout << r.text() << std::flush;
    id = r.request_id();
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
  if (req.trace()) std::cerr << "traced: unicorn profile --request " << id << " -o trace.json\n";
  return 0;
}

}  // namespace

void AddClientCommands(CLI::App& app) {
  static std::string server;
  auto* health = app.add_subcommand("health", "show whether the system serves, and its workers");
  health->add_option("-s,--server", server, "coordinator address (default: configs/default.yaml)");
  health->callback([] { ExitCode() = Health(server); });

  static v1::GenerateRequest req;
  static std::string prompt;
  static int max_tokens = 64;
  static float temperature = 0;
  static uint64_t seed = 0;
  static bool chat = false;
  auto* gen = app.add_subcommand("generate", "generate text from a prompt (prints only the text)");
  gen->add_option("-s,--server", server, "coordinator address (default: configs/default.yaml)");
  gen->add_option("-p,--prompt", prompt, "prompt text")->required();
  gen->add_option("-n,--max-tokens", max_tokens, "tokens to generate");
  gen->add_option("--temp", temperature, "temperature (0 = greedy)");
  auto* seed_opt = gen->add_option("--seed", seed, "sampling seed");
  gen->add_flag("--chat", chat, "send the prompt as a user turn of a chat (template applied)");
  static bool traced = false;
  gen->add_flag("--trace", traced, "trace this request (then see `unicorn profile --request`)");
  gen->callback([seed_opt] {
    req.set_prompt(prompt);
    req.set_max_tokens(max_tokens);
    req.mutable_sampling()->set_temperature(temperature);
    req.set_trace(traced);
    if (seed_opt->count() > 0) {
      req.mutable_sampling()->set_seed(seed);
      req.mutable_sampling()->set_has_seed(true);
    }
    ExitCode() = Generate(server, req, chat);
  });
}

}  // namespace unicorn::cli
