// `unicorn loadtest`: a load generator for a running system, through the
// OpenAI-compatible HTTP API (so that `--compare URL` measures any other
// OpenAI-compatible server, e.g. llama-server, the same way). For each
// concurrency level it keeps that many streaming chat requests in flight
// until --requests have finished, and reports time to first token (TTFT),
// inter-token latency (ITL: gaps between streamed content chunks, one chunk
// per token on Unicorn), requests/s and output tokens/s (completion tokens
// from the usage counts, else chunks) as a table or JSON.
#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tools/cli/client.h"
#include "tools/cli/commands.h"
#include "tools/cli/progress.h"

namespace unicorn::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

const char* const kPrompts[] = {
    "Tell me a short story about a lighthouse keeper.",
    "What are three things to see in a large old city?",
    "Explain why the sky is blue in simple words.",
    "Write a few sentences about a walk in the rain.",
    "Describe a busy market on a summer morning.",
    "What makes a good friend?",
    "Give advice to someone starting a new job.",
    "Describe the sound of the sea at night.",
};

struct Target {
  std::string base;  // "http://127.0.0.1:8080"
  std::string model;
};

// "127.0.0.1:8080", "http://h:p/v1/" -> "http://h:p".
std::string NormalizeUrl(std::string url) {
  if (url.find("://") == std::string::npos) url = "http://" + url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (url.size() > 3 && url.substr(url.size() - 3) == "/v1") url.resize(url.size() - 3);
  return url;
}

StatusOr<std::string> FirstModel(const std::string& base) {
  httplib::Client cli(base);
  cli.set_connection_timeout(5);
  auto res = cli.Get("/v1/models");
  if (!res) {
    return absl::UnavailableError(absl::StrCat(
        base, ": no answer (", httplib::to_string(res.error()), "); is the server running?"));
  }
  json j = json::parse(res->body, nullptr, false);
  if (res->status != 200 || !j.is_object() || !j.contains("data") || !j["data"].is_array() ||
      j["data"].empty()) {
    return absl::UnavailableError(
        absl::StrCat(base, "/v1/models: HTTP ", res->status, ": ", res->body.substr(0, 200)));
  }
  return j["data"][0].value("id", "default");
}

struct RequestResult {
  bool ok = false;
  std::string error;
  double ttft_ms = 0;
  std::vector<double> itl_ms;
  int tokens = 0;
};

// What every request of a run asks for besides its prompt.
struct RequestShape {
  int max_tokens = 64;
  bool ignore_eos = false;  // answers of exactly max_tokens (vLLM's and llama-server's key)
};

RequestResult OneRequest(const Target& t, const std::string& prompt, const RequestShape& shape) {
  RequestResult r;
  httplib::Client cli(t.base);
  cli.set_read_timeout(600);
  json body = {{"model", t.model},
               {"messages", json::array({{{"role", "user"}, {"content", prompt}}})},
               {"max_tokens", shape.max_tokens},
               {"temperature", 0},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (shape.ignore_eos) body["ignore_eos"] = true;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/chat/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string buf, raw;
  int chunks = 0, usage_tokens = -1;
  auto t0 = Clock::now();
  Clock::time_point last;
  auto on_event = [&](const std::string& ev) {
    if (ev.rfind("data: ", 0) != 0) return;
    std::string data = ev.substr(6);
    if (data == "[DONE]") return;
    json j = json::parse(data, nullptr, false);
    if (!j.is_object()) return;
    if (j.contains("error")) {
      r.error = j["error"].dump();
      return;
    }
    if (j.contains("usage") && j["usage"].is_object()) {
      usage_tokens = j["usage"].value("completion_tokens", -1);
    }
    if (!j.contains("choices") || !j["choices"].is_array() || j["choices"].empty()) return;
    const json& d = j["choices"][0]["delta"];
    if (!d.is_object() || !d.contains("content") || !d["content"].is_string() ||
        d["content"].get_ref<const std::string&>().empty()) {
      return;
    }
    auto now = Clock::now();
    if (chunks++ == 0) {
      r.ttft_ms = std::chrono::duration<double, std::milli>(now - t0).count();
    } else {
      r.itl_ms.push_back(std::chrono::duration<double, std::milli>(now - last).count());
    }
    last = now;
  };
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    raw.append(data, std::min<size_t>(n, 4096 - std::min<size_t>(raw.size(), 4096)));
    buf.append(data, n);
    size_t pos;
    while ((pos = buf.find("\n\n")) != std::string::npos) {
      std::string ev = buf.substr(0, pos);
      if (!ev.empty() && ev.back() == '\r') ev.pop_back();
      buf.erase(0, pos + 2);
      on_event(ev);
    }
    return true;
  };
  auto res = cli.send(req);
  if (!res) {
    r.error = httplib::to_string(res.error());
  } else if (res->status != 200) {
    r.error = absl::StrCat("HTTP ", res->status, ": ", raw.empty() ? res->body : raw);
  } else if (r.error.empty() && chunks == 0) {
    r.error = "no content streamed";
  }
  r.tokens = usage_tokens >= 0 ? usage_tokens : chunks;
  r.ok = r.error.empty();
  return r;
}

struct LevelResult {
  int concurrency = 0, requests = 0, errors = 0;
  std::string first_error;
  std::vector<double> ttft, itl;
  double wall_s = 0;
  int64_t tokens = 0;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::clamp(p / 100 * double(v.size() - 1) + 0.5, 0.0, double(v.size() - 1)));
  return v[i];
}

LevelResult RunLevel(const Target& t, int concurrency, int requests, const RequestShape& shape,
                     bool progress, const std::string& label) {
  LevelResult lr;
  lr.concurrency = concurrency;
  lr.requests = requests;
  std::mutex mu;
  std::atomic<int> next = 0;
  ProgressBar bar(label, requests, stderr, progress);
  bar.Set(0);
  auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&] {
      int i;
      while ((i = next.fetch_add(1)) < requests) {
        RequestResult r = OneRequest(t, kPrompts[size_t(i) % std::size(kPrompts)], shape);
        std::lock_guard<std::mutex> lock(mu);
        if (!r.ok) {
          if (lr.errors++ == 0) lr.first_error = r.error;
        } else {
          lr.ttft.push_back(r.ttft_ms);
          lr.itl.insert(lr.itl.end(), r.itl_ms.begin(), r.itl_ms.end());
          lr.tokens += r.tokens;
        }
        bar.Add(1);
      }
    });
  }
  for (auto& th : threads) th.join();
  lr.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
  bar.Done();
  return lr;
}

json LevelJson(const LevelResult& r) {
  auto pct = [](const std::vector<double>& v) {
    return json{{"p50", Percentile(v, 50)}, {"p95", Percentile(v, 95)}, {"p99", Percentile(v, 99)}};
  };
  int ok = r.requests - r.errors;
  return {{"concurrency", r.concurrency},
          {"requests", r.requests},
          {"errors", r.errors},
          {"first_error", r.first_error},
          {"ttft_ms", pct(r.ttft)},
          {"itl_ms", pct(r.itl)},
          {"requests_per_s", r.wall_s > 0 ? ok / r.wall_s : 0},
          {"output_tokens_per_s", r.wall_s > 0 ? double(r.tokens) / r.wall_s : 0},
          {"output_tokens", r.tokens},
          {"wall_s", r.wall_s}};
}

struct LoadtestOptions {
  std::string server, compare, model, compare_model, levels = "1,4,16";
  int requests = 0;  // per level; 0 = 2 x concurrency, at least 4
  RequestShape shape;
  bool json = false;
};

int Loadtest(const LoadtestOptions& o) {
  std::vector<int> levels;
  for (absl::string_view s : absl::StrSplit(o.levels, ',', absl::SkipEmpty())) {
    int c = 0;
    if (!absl::SimpleAtoi(s, &c) || c < 1 || c > 1024) {
      std::cerr << "unicorn loadtest: --concurrency: \"" << s << "\" is not a level in 1..1024\n";
      return 2;
    }
    levels.push_back(c);
  }
  std::vector<Target> targets;
  for (auto [url, model] : {std::pair{o.server.empty() ? DefaultHttpUrl() : o.server, o.model},
                            std::pair{o.compare, o.compare_model}}) {
    if (url.empty()) continue;
    Target t{NormalizeUrl(url), model};
    if (t.model.empty()) {
      auto m = FirstModel(t.base);
      if (!m.ok()) {
        std::cerr << "unicorn loadtest: " << m.status().message() << "\n";
        return 1;
      }
      t.model = *m;
    }
    targets.push_back(t);
  }
  bool progress = isatty(2);
  json out = {{"server", targets[0].base},
              {"model", targets[0].model},
              {"max_tokens", o.shape.max_tokens},
              {"ignore_eos", o.shape.ignore_eos},
              {"levels", json::array()}};
  if (targets.size() > 1)
    out["compare"] = {{"server", targets[1].base}, {"model", targets[1].model}};
  int errors = 0;
  for (int c : levels) {
    int n = o.requests > 0 ? o.requests : std::max(4, 2 * c);
    json level = LevelJson(
        RunLevel(targets[0], c, n, o.shape, progress, absl::StrFormat("unicorn c=%d", c)));
    errors += level["errors"].get<int>();
    if (targets.size() > 1) {
      json other = LevelJson(
          RunLevel(targets[1], c, n, o.shape, progress, absl::StrFormat("compare c=%d", c)));
      errors += other["errors"].get<int>();
      auto ratio = [&](const char* a, const char* b) {
        double x = b ? level[a][b].get<double>() : level[a].get<double>();
        double y = b ? other[a][b].get<double>() : other[a].get<double>();
        return y > 0 ? x / y : 0.0;
      };
      level["compare"] = other;
      level["ratio"] = {{"ttft_p50", ratio("ttft_ms", "p50")},
                        {"itl_p50", ratio("itl_ms", "p50")},
                        {"requests_per_s", ratio("requests_per_s", nullptr)},
                        {"output_tokens_per_s", ratio("output_tokens_per_s", nullptr)}};
    }
    out["levels"].push_back(level);
  }
  if (o.json) {
    std::cout << out.dump(2) << "\n";
    return errors ? 1 : 0;
  }
  std::cout << absl::StrFormat("loadtest %s (model %s), %d max tokens, temperature 0\n",
                               targets[0].base, targets[0].model, o.shape.max_tokens);
  if (targets.size() > 1) {
    std::cout << absl::StrFormat("compare  %s (model %s); ratio = unicorn / compare\n",
                                 targets[1].base, targets[1].model);
  }
  std::cout << absl::StrFormat("%-8s %-4s %5s %4s %9s %9s %9s %8s %8s %8s %8s %9s\n", "server",
                               "conc", "reqs", "err", "ttft p50", "ttft p95", "ttft p99", "itl p50",
                               "itl p95", "itl p99", "req/s", "out tok/s");
  auto row = [](const char* who, const json& l) {
    std::cout << absl::StrFormat(
        "%-8s %-4d %5d %4d %7.1fms %7.1fms %7.1fms %6.1fms %6.1fms %6.1fms %8.2f %9.1f\n", who,
        l["concurrency"].get<int>(), l["requests"].get<int>(), l["errors"].get<int>(),
        l["ttft_ms"]["p50"].get<double>(), l["ttft_ms"]["p95"].get<double>(),
        l["ttft_ms"]["p99"].get<double>(), l["itl_ms"]["p50"].get<double>(),
        l["itl_ms"]["p95"].get<double>(), l["itl_ms"]["p99"].get<double>(),
        l["requests_per_s"].get<double>(), l["output_tokens_per_s"].get<double>());
  };
  for (const json& l : out["levels"]) {
    row("unicorn", l);
    if (l.contains("compare")) {
      row("compare", l["compare"]);
      const json& r = l["ratio"];
      std::cout << absl::StrFormat(
          "%-8s %-4d %5s %4s %8.2fx %9s %9s %7.2fx %8s %8s %7.2fx %8.2fx\n", "ratio",
          l["concurrency"].get<int>(), "", "", r["ttft_p50"].get<double>(), "", "",
          r["itl_p50"].get<double>(), "", "", r["requests_per_s"].get<double>(),
          r["output_tokens_per_s"].get<double>());
    }
  }
  for (const json& l : out["levels"]) {
    if (l["errors"].get<int>() > 0) {
      std::cout << "c=" << l["concurrency"].get<int>()
                << " first error: " << l["first_error"].get<std::string>() << "\n";
    }
  }
  return errors ? 1 : 0;
}

}  // namespace

void AddLoadtestCommands(CLI::App& app) {
  static LoadtestOptions o;
  auto* lt = app.add_subcommand("loadtest",
                                "load a running system through its OpenAI-compatible HTTP API");
  lt->add_option("-s,--server", o.server,
                 "Unicorn's HTTP API, e.g. http://127.0.0.1:8080 (default: configs/default.yaml)");
  lt->add_option("-c,--concurrency", o.levels, "concurrency levels to sweep (default 1,4,16)");
  lt->add_option("-r,--requests", o.requests,
                 "requests per level (default: 2 x concurrency, at least 4)");
  lt->add_option("-n,--max-tokens", o.shape.max_tokens, "tokens per answer at most (default 64)");
  lt->add_flag("--ignore-eos", o.shape.ignore_eos,
               "answers of exactly -n tokens, past end-of-turn (servers that know ignore_eos)");
  lt->add_option("--model", o.model, "model name to send (default: the first of /v1/models)");
  lt->add_option("--compare", o.compare,
                 "another OpenAI-compatible server to run the same prompts against");
  lt->add_option("--compare-model", o.compare_model, "model name for --compare");
  lt->add_flag("--json", o.json, "print JSON instead of a table");
  lt->callback([] { ExitCode() = Loadtest(o); });
}

}  // namespace unicorn::cli
