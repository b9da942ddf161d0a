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
  if ((s.kind == Kind::kAttention || s.kind == Kind::kFfn || trace::IsOp(s.kind)) && s.layer >= 0) {
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

TraceBreakdown Breakdown(const std::vector<trace::Span>& spans,
                         const std::vector<StageLabel>& stages) {
  // Rows keyed by (order, label): coordinator step parts in pipeline order,
  // then worker spans by worker, device and kind (layers summed per kind;
  // op kinds come after part kinds).
  struct Acc {
    TraceRow::Level level = TraceRow::kStage;
    std::vector<double> us;
    double total_us = 0;
  };
  std::map<std::pair<int, std::string>, Acc> rows;
  TraceBreakdown b;
  std::vector<double> step_durations;
  for (const trace::Span& s : spans) {
    double d = Us(s.end_ns - s.start_ns);
    std::pair<int, std::string> key;
    TraceRow::Level level = TraceRow::kStage;
    switch (s.kind) {
      case Kind::kStep:
        b.step_us += d;
        ++b.steps;
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
        b.covered_us += d;
        break;
      case Kind::kSchedule:
        key = {0, "schedule"};
        b.covered_us += d;
        break;
      case Kind::kHop:
        key = {1 + std::max(0, s.layer), SpanName(s, stages)};
        b.covered_us += d;
        break;
      case Kind::kLogits:  // the rows are sampled in place, inside this span
        key = {1000000, "logits read + sample"};
        b.covered_us += d;
        break;
      case Kind::kSample:  // inside "logits read + sample", rows in parallel
        key = {1000001, "  sample (per row)"};
        level = TraceRow::kPart;
        ++b.tokens;
        break;
      case Kind::kStream:
        key = {1000002, "stream write"};
        b.covered_us += d;
        break;
      default: {  // worker spans (GPU time on the device's own rows)
        const bool op = trace::IsOp(s.kind);
        level = op ? TraceRow::kOp : TraceRow::kPart;
        key = {2000000 + int(s.process) * 1000 + (s.device ? 500 : 0) + int(s.kind),
               absl::StrCat(op ? "    op " : "  ", trace::KindName(s.kind), " @",
                            trace::ProcessName(s.process), s.device ? " (vulkan, GPU time)" : "")};
        break;
      }
    }
    Acc& r = rows[key];
    r.level = level;
    r.us.push_back(d);
    r.total_us += d;
  }
  auto row = [&](const std::string& name, TraceRow::Level level, std::vector<double> v,
                 double total) {
    std::sort(v.begin(), v.end());
    TraceRow r;
    r.name = name;
    r.level = level;
    r.count = int64_t(v.size());
    r.p50_us = Percentile(v, 50);
    r.p95_us = Percentile(v, 95);
    r.p99_us = Percentile(v, 99);
    r.share = b.step_us > 0 ? total / b.step_us : 0.0;
    b.rows.push_back(std::move(r));
  };
  row("step (token time)", TraceRow::kStep, step_durations, b.step_us);
  for (auto& [key, r] : rows) row(key.second, r.level, std::move(r.us), r.total_us);
  return b;
}

std::string TraceSummary(const std::vector<trace::Span>& spans,
                         const std::vector<StageLabel>& stages) {
  const TraceBreakdown b = Breakdown(spans, stages);
  std::string out = absl::StrFormat("%-44s %7s %10s %10s %10s %7s\n", "stage", "count", "p50 us",
                                    "p95 us", "p99 us", "share");
  for (const TraceRow& r : b.rows) {
    absl::StrAppendFormat(&out, "%-44s %7d %10.1f %10.1f %10.1f %6.1f%%\n", r.name, r.count,
                          r.p50_us, r.p95_us, r.p99_us, 100.0 * r.share);
  }
  absl::StrAppendFormat(&out,
                        "steps %d, tokens %d; hops + coordinator spans cover %.1f%% of the "
                        "step time; %.1f tok/s while stepping\n",
                        b.steps, b.tokens, b.step_us > 0 ? 100.0 * b.covered_us / b.step_us : 0.0,
                        b.step_us > 0 ? double(b.tokens) / (b.step_us * 1e-6) : 0.0);
  if (std::any_of(b.rows.begin(), b.rows.end(),
                  [](const TraceRow& r) { return r.level == TraceRow::kOp; })) {
    out += "(op rows lie inside their worker's part rows, which lie inside the hops)\n";
  }
  return out;
}

}  // namespace unicorn
