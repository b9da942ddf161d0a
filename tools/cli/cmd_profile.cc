// `unicorn profile`: fetches the trace of a request or of the last N seconds
// from a running coordinator, writes it as Chrome trace JSON (open it in
// ui.perfetto.dev) and prints the per-stage summary.
//   unicorn profile [--server ADDR] [--tls-ca FILE] (--request ID | --seconds N) -o trace.json
//                   [--png chart.png]
// --png also draws the summary's shares of the token time as a bar chart
// (coordinator stages, each worker's parts and their ops).
// With --overhead ROUNDS it instead measures what tracing costs: it runs
// ROUNDS pairs of generations (one traced, one not, alternating) and prints
// the decode tok/s of each kind and their ratio.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>

#include "absl/strings/str_format.h"
#include "common/config.h"
#include "tools/cli/client.h"
#include "tools/cli/commands.h"
#include "tools/cli/share_chart.h"

namespace unicorn::cli {
namespace {

struct ProfileArgs {
  ServerFlags server;
  std::string request;
  double seconds = 0;
  std::string out;
  std::string png;
  int overhead_rounds = 0;
  int tokens = 64;
  std::string prompt = "Once upon a time";
};

int Fetch(const ProfileArgs& a) {
  if (a.request.empty() == (a.seconds <= 0)) {
    std::cerr << "unicorn profile: give exactly one of --request ID or --seconds N\n";
    return 2;
  }
  auto endpoint = ResolveEndpoint(a.server);
  if (!endpoint.ok()) {
    std::cerr << "unicorn profile: " << endpoint.status().message() << "\n";
    return 2;
  }
  Client client(*endpoint);
  v1::ProfileRequest req;
  if (!a.request.empty()) {
    req.set_request_id(a.request);
  } else {
    req.set_seconds(a.seconds);
  }
  auto resp = client.Profile(req);
  if (!resp.ok()) {
    std::cerr << "unicorn profile: " << resp.status().message() << "\n";
    return 1;
  }
  if (!a.out.empty()) {
    std::ofstream f(a.out, std::ios::binary);
    f << resp->trace_json();
    if (!f) {
      std::cerr << "unicorn profile: cannot write " << a.out << "\n";
      return 1;
    }
    std::cerr << "wrote " << resp->spans() << " spans to " << a.out
              << " (open it in ui.perfetto.dev)\n";
  }
  if (!a.png.empty()) {
    std::vector<ChartBar> bars;
    for (const v1::ProfileRow& r : resp->rows()) {
      if (r.level() == v1::ProfileRow::STEP) continue;  // the whole: 100%
      bars.push_back({r.name(), r.share(), int(r.level()) - 1});
    }
    const std::string title = absl::StrFormat(
        "share of token time per stage (blue), worker part (green) and op (orange): %s",
        a.request.empty() ? absl::StrFormat("last %g s", a.seconds) : "request " + a.request);
    if (Status s = WritePngFile(DrawShareChart(title, bars), a.png); !s.ok()) {
      std::cerr << "unicorn profile: " << s.message() << "\n";
      return 1;
    }
    std::cerr << "wrote the chart of " << bars.size() << " rows to " << a.png << "\n";
  }
  std::cout << resp->summary();
  return 0;
}

// Decode tok/s of one generation: tokens after the first over the time
// between the first and the last token, as the client sees them.
StatusOr<double> DecodeRate(Client& client, const ProfileArgs& a, bool traced) {
  v1::GenerateRequest req;
  req.set_prompt(a.prompt);
  req.set_max_tokens(a.tokens);
  req.set_trace(traced);
  std::chrono::steady_clock::time_point first, last;
  int n = 0;
  Status s = client.Generate(req, [&](const v1::GenerateResponse& r) {
    if (r.token_id() < 0) return;
    last = std::chrono::steady_clock::now();
    if (n++ == 0) first = last;
  });
  if (!s.ok()) return s;
  if (n < 3) return absl::FailedPreconditionError("generation stopped before 3 tokens");
  return double(n - 1) / std::chrono::duration<double>(last - first).count();
}

int Overhead(const ProfileArgs& a) {
  auto endpoint = ResolveEndpoint(a.server);
  if (!endpoint.ok()) {
    std::cerr << "unicorn profile: " << endpoint.status().message() << "\n";
    return 2;
  }
  Client client(*endpoint);
  std::vector<double> on, off;
  // Warm up caches and the allocator once, then alternate so drift hits both.
  if (auto w = DecodeRate(client, a, false); !w.ok()) {
    std::cerr << "unicorn profile: " << w.status().message() << "\n";
    return 1;
  }
  for (int i = 0; i < a.overhead_rounds; ++i) {
    for (bool traced : {i % 2 == 0, i % 2 != 0}) {
      auto r = DecodeRate(client, a, traced);
      if (!r.ok()) {
        std::cerr << "unicorn profile: " << r.status().message() << "\n";
        return 1;
      }
      (traced ? on : off).push_back(*r);
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
  };
  // Each round's two runs are adjacent in time: their ratio cancels slow
  // drift (other load on the machine), so the median ratio is the estimate.
  std::vector<double> ratios;
  for (size_t i = 0; i < on.size(); ++i) ratios.push_back(on[i] / off[i]);
  double m_on = median(on), m_off = median(off), ratio = median(ratios);
  auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
  std::cout << absl::StrFormat(
      "decode tok/s over %d rounds (one traced and one untraced generation of %d tokens each):\n"
      "  tracing off  median %.2f\n  tracing on   median %.2f\n"
      "  on/off       median of per-round ratios %.4f (overhead %.2f%%), range %.4f .. %.4f\n",
      a.overhead_rounds, a.tokens, m_off, m_on, ratio, 100.0 * (1 - ratio), *lo, *hi);
  return 0;
}

}  // namespace

void AddProfileCommands(CLI::App& app) {
  static ProfileArgs a;
  auto* p = app.add_subcommand(
      "profile", "fetch a request's or a time window's trace (Chrome JSON) and its summary");
  AddServerFlags(p, &a.server);
  p->add_option("-r,--request", a.request, "request id (GenerateResponse.request_id)");
  p->add_option("--seconds", a.seconds, "everything traced in the last N seconds");
  p->add_option("-o,--output", a.out, "write the Chrome trace JSON here");
  p->add_option("--png", a.png, "write a PNG bar chart of the shares of the token time here");
  p->add_option("--overhead", a.overhead_rounds,
                "measure tracing's cost instead: ROUNDS traced/untraced generation pairs");
  p->add_option("-n,--max-tokens", a.tokens, "tokens per generation (--overhead)");
  p->add_option("-p,--prompt", a.prompt, "prompt (--overhead)");
  p->callback([] { ExitCode() = a.overhead_rounds > 0 ? Overhead(a) : Fetch(a); });
}

}  // namespace unicorn::cli
