#include "coordinator/trace_export.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace unicorn {
namespace {

using trace::Kind;

// The track of a worker's device-timed spans (GPU timestamps), beside its
// host track (tid 1) and the request tracks (1000 + request id).
constexpr int64_t kDeviceTid = 2;

bool OnRequestTrack(Kind k) {
  return k == Kind::kQueue || k == Kind::kTokenize || k == Kind::kInStep ||
         k == Kind::kImagePreprocess;
}

std::string SpanName(const trace::Span& s, const std::vector<StageLabel>& stages) {
  if (s.kind == Kind::kHop) {
    if (s.layer >= 0 && size_t(s.layer) < stages.size()) {
      return absl::StrCat("hop ", s.layer, ": ", stages[size_t(s.layer)].name, " @",
                          stages[size_t(s.layer)].worker);
    }
    return absl::StrCat("hop ", s.layer);
  }
  if ((s.kind == Kind::kAttention || s.kind == Kind::kFfn) && s.layer >= 0) {
    return absl::StrCat(trace::KindName(s.kind), " L", s.layer);
  }
  return trace::KindName(s.kind);
}

double Us(int64_t ns) { return double(ns) / 1000.0; }

// Nearest-rank percentile of sorted values.
double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t rank = size_t(std::max(1.0, std::ceil(p / 100.0 * double(sorted.size()))));
  return sorted[std::min(rank, sorted.size()) - 1];
}

}  // namespace

std::string ChromeTraceJson(const std::vector<trace::Span>& spans,
                            const std::vector<StageLabel>& stages) {
  nlohmann::json events = nlohmann::json::array();
  std::set<uint16_t> processes;
  std::set<std::pair<uint16_t, uint64_t>> request_tracks;
  std::set<uint16_t> device_tracks;
  for (const trace::Span& s : spans) {
    processes.insert(s.process);
    int64_t tid = 1;
    if (s.device) {
      tid = kDeviceTid;
      device_tracks.insert(s.process);
    } else if (OnRequestTrack(s.kind)) {
      tid = 1000 + int64_t(s.request_id);
      request_tracks.insert({s.process, s.request_id});
    }
    nlohmann::json args = {{"step", s.step}};
    if (s.request_id != 0) args["request"] = s.request_id;
    if (s.layer >= 0) args[s.kind == Kind::kHop ? "stage" : "layer"] = s.layer;
    if (s.device) args["device"] = "vulkan";
    events.push_back({{"name", SpanName(s, stages)},
                      {"cat", trace::KindCategory(s.kind)},
                      {"ph", "X"},
                      {"ts", Us(s.start_ns)},
                      {"dur", Us(std::max<int64_t>(0, s.end_ns - s.start_ns))},
                      {"pid", int(s.process) + 1},
                      {"tid", tid},
                      {"args", args}});
  }
  for (uint16_t p : processes) {
    events.push_back({{"name", "process_name"},
                      {"ph", "M"},
                      {"pid", int(p) + 1},
                      {"args", {{"name", trace::ProcessName(p)}}}});
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", int(p) + 1},
                      {"tid", 1},
                      {"args", {{"name", p == 0 ? "engine" : "stage server"}}}});
  }
  for (uint16_t p : device_tracks) {
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", int(p) + 1},
                      {"tid", kDeviceTid},
                      {"args", {{"name", "vulkan (GPU time)"}}}});
  }
  for (const auto& [p, r] : request_tracks) {
    events.push_back({{"name", "thread_name"},
                      {"ph", "M"},
                      {"pid", int(p) + 1},
                      {"tid", 1000 + int64_t(r)},
                      {"args", {{"name", absl::StrCat("request ", r)}}}});
  }
  nlohmann::json doc = {{"traceEvents", events}, {"displayTimeUnit", "ns"}};
  return doc.dump();
}

std::string TraceSummary(const std::vector<trace::Span>& spans,
                         const std::vector<StageLabel>& stages) {
  // Rows keyed by (order, label): coordinator step parts in pipeline order,
  // then worker spans by worker and kind (layers summed per kind).
  struct Row {
    std::vector<double> us;
    double total_us = 0;
  };
  std::map<std::pair<int, std::string>, Row> rows;
  double step_us = 0, covered_us = 0;
  int64_t steps = 0, tokens = 0;
  std::vector<double> step_durations;
  for (const trace::Span& s : spans) {
    double d = Us(s.end_ns - s.start_ns);
    std::pair<int, std::string> key;
    switch (s.kind) {
      case Kind::kStep:
        step_us += d;
        ++steps;
        step_durations.push_back(d);
        continue;
      case Kind::kQueue:
      case Kind::kTokenize:
      case Kind::kInStep:
        continue;  // per request, not part of the token time
      case Kind::kImagePreprocess:
        key = {-1, "image preprocess (before the steps)"};  // per request, outside the steps
        break;
      case Kind::kVisionHop:
        key = {999999, "vision hop"};  // in the request's first step, before its prefill
        covered_us += d;
        break;
      case Kind::kSchedule:
        key = {0, "schedule"};
        covered_us += d;
        break;
      case Kind::kHop:
        key = {1 + std::max(0, s.layer), SpanName(s, stages)};
        covered_us += d;
        break;
      case Kind::kLogits:
        key = {1000000, "logits read"};
        covered_us += d;
        break;
      case Kind::kSample:
        key = {1000001, "sample"};
        covered_us += d;
        ++tokens;
        break;
      case Kind::kStream:
        key = {1000002, "stream write"};
        covered_us += d;
        break;
      default:  // worker spans (GPU time on the device's own rows)
        key = {2000000 + int(s.process) * 100 + int(s.kind) + (s.device ? 50 : 0),
               absl::StrCat("  ", trace::KindName(s.kind), " @", trace::ProcessName(s.process),
                            s.device ? " (vulkan, GPU time)" : "")};
        break;
    }
    Row& r = rows[key];
    r.us.push_back(d);
    r.total_us += d;
  }
  std::string out = absl::StrFormat("%-44s %7s %10s %10s %10s %7s\n", "stage", "count", "p50 us",
                                    "p95 us", "p99 us", "share");
  auto line = [&](const std::string& name, std::vector<double> v, double total) {
    std::sort(v.begin(), v.end());
    absl::StrAppendFormat(&out, "%-44s %7d %10.1f %10.1f %10.1f %6.1f%%\n", name, v.size(),
                          Percentile(v, 50), Percentile(v, 95), Percentile(v, 99),
                          step_us > 0 ? 100.0 * total / step_us : 0.0);
  };
  line("step (token time)", step_durations, step_us);
  for (auto& [key, r] : rows) line(key.second, r.us, r.total_us);
  absl::StrAppendFormat(&out,
                        "steps %d, tokens %d; hops + coordinator spans cover %.1f%% of the "
                        "step time; %.1f tok/s while stepping\n",
                        steps, tokens, step_us > 0 ? 100.0 * covered_us / step_us : 0.0,
                        step_us > 0 ? double(tokens) / (step_us * 1e-6) : 0.0);
  return out;
}

}  // namespace unicorn
