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

// Per stage p50/p95/p99 (microseconds) and share of the token time (the sum
// of its spans over the sum of step spans), rows in pipeline order; then the
// steps' coverage (time inside hops and coordinator spans over step time)
// and tok/s (tokens sampled over the time spent in steps).
std::string TraceSummary(const std::vector<trace::Span>& spans,
                         const std::vector<StageLabel>& stages);

}  // namespace unicorn
