// Turns recorded spans (common/trace.h) into what people read: Chrome trace
// event JSON (loads in ui.perfetto.dev and chrome://tracing) and a text
// summary per stage.
#pragma once

#include <string>
#include <vector>

#include "common/trace.h"

namespace unicorn {

// One pipeline stage, as hop spans name it (their layer is the stage index).
struct StageLabel {
  std::string name;    // "L3 attention"
  std::string worker;  // "npu"
};

// {"traceEvents": [...], "displayTimeUnit": "ns"}: one complete event ("ph":
// "X", ts/dur in microseconds) per span, pid = the process that ran it (with
// process_name metadata), tid 1 for the engine / worker thread and one track
// per request for its queue, tokenize and in-step spans. args hold the step,
// request and layer.
std::string ChromeTraceJson(const std::vector<trace::Span>& spans,
                            const std::vector<StageLabel>& stages);

// One row of the summary: a coordinator stage (schedule, a hop, sample...),
// or a worker's part kind (layers summed) or op kind (trace::IsOp), with the
// percentiles of its spans' durations and its share of the token time.
struct TraceRow {
  enum Level { kStep, kStage, kPart, kOp };
  std::string name;
  Level level = kStage;
  int64_t count = 0;
  double p50_us = 0, p95_us = 0, p99_us = 0;
  double share = 0;  // sum of its spans over the sum of step spans (0 without steps)
};

struct TraceBreakdown {
  // The steps' own row first, then coordinator stages in pipeline order,
  // then per worker (and device) its part kinds and, below them, its op
  // kinds. Op spans lie inside part spans, which lie inside hops: shares add
  // up only within one level.
  std::vector<TraceRow> rows;
  int64_t steps = 0, tokens = 0;
  double step_us = 0;
  double covered_us = 0;  // inside the coordinator's stage spans
};
TraceBreakdown Breakdown(const std::vector<trace::Span>& spans,
                         const std::vector<StageLabel>& stages);

// Breakdown() as text: per row p50/p95/p99 (microseconds) and share of the
// token time; then the steps' coverage (time inside hops and coordinator
// spans over step time) and tok/s (tokens sampled over the time spent in
// steps).
std::string TraceSummary(const std::vector<trace::Span>& spans,
                         const std::vector<StageLabel>& stages);

}  // namespace unicorn
