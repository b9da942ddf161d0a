// Trace spans: the ring keeps the newest spans and finds a request's steps;
// the Chrome JSON has one complete event per span with the right process and
// names; the summary's shares add up over the step time.
#include "coordinator/trace_export.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "common/trace.h"

namespace unicorn {
namespace {

using trace::Kind;
using trace::Span;

Span Make(Kind k, int64_t start, int64_t end, uint64_t request = 0, uint64_t step = 0,
          int layer = -1, uint16_t process = 0) {
  Span s;
  s.kind = k;
  s.start_ns = start;
  s.end_ns = end;
  s.request_id = request;
  s.step = step;
  s.layer = layer;
  s.process = process;
  return s;
}

TEST(TraceRing, KeepsTheNewestSpans) {
  trace::Ring ring(4);
  for (int i = 0; i < 6; ++i) ring.Add(Make(Kind::kStep, i * 10, i * 10 + 5, 0, uint64_t(i + 1)));
  auto all = ring.Since(0);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all.front().step, 3u);
  EXPECT_EQ(all.back().step, 6u);
  EXPECT_EQ(ring.Since(45).size(), 2u);  // spans ending at or after 45
}

TEST(TraceRing, ForRequestTakesItsStepsSharedSpans) {
  trace::Ring ring(64);
  ring.Add(Make(Kind::kQueue, 0, 1, 7));
  ring.Add(Make(Kind::kInStep, 1, 9, 7, 1));
  ring.Add(Make(Kind::kHop, 2, 8, 0, 1, 0));
  ring.Add(Make(Kind::kSample, 8, 9, 8, 1));    // another request in the same step
  ring.Add(Make(Kind::kHop, 12, 18, 0, 2, 0));  // a step request 7 did not run in
  auto spans = ring.ForRequest(7);
  ASSERT_EQ(spans.size(), 3u);
  EXPECT_EQ(spans[2].kind, Kind::kHop);
  EXPECT_EQ(spans[2].step, 1u);
}

TEST(TraceScope, RecordsOnlyInsideATracedStep) {
  trace::Collector c(8);
  { trace::ScopedSpan s(Kind::kCompute); }
  EXPECT_TRUE(c.spans().empty());
  {
    trace::StepScope scope(&c, 42);
    trace::ScopedSpan s(Kind::kAttention, 3);
  }
  {
    trace::StepScope scope(nullptr, 43);
    trace::ScopedSpan s(Kind::kFfn, 3);
  }
  ASSERT_EQ(c.spans().size(), 1u);
  EXPECT_EQ(c.spans()[0].step, 42u);
  EXPECT_EQ(c.spans()[0].layer, 3);
  EXPECT_LE(c.spans()[0].start_ns, c.spans()[0].end_ns);
  EXPECT_FALSE(trace::Enabled());
}

TEST(TraceExport, ChromeJsonHasOneCompleteEventPerSpan) {
  uint16_t npu = trace::ProcessId("npu-test");
  std::vector<Span> spans = {
      Make(Kind::kStep, 1000, 9000, 0, 1),
      Make(Kind::kHop, 2000, 8000, 0, 1, 0),
      Make(Kind::kAttention, 3000, 7000, 0, 1, 5, npu),
      Make(Kind::kQueue, 0, 1000, 4, 0),
  };
  auto doc = nlohmann::json::parse(ChromeTraceJson(spans, {{"L5 attention", "npu-test"}}));
  std::vector<nlohmann::json> x;
  std::map<int, std::string> process_names;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "X") x.push_back(e);
    if (e["ph"] == "M" && e["name"] == "process_name") {
      process_names[e["pid"].get<int>()] = e["args"]["name"];
    }
  }
  ASSERT_EQ(x.size(), 4u);
  EXPECT_EQ(x[1]["name"], "hop 0: L5 attention @npu-test");
  EXPECT_EQ(x[2]["name"], "attention L5");
  EXPECT_EQ(x[2]["cat"], "layer");
  EXPECT_DOUBLE_EQ(x[2]["ts"].get<double>(), 3.0);  // microseconds
  EXPECT_DOUBLE_EQ(x[2]["dur"].get<double>(), 4.0);
  EXPECT_EQ(process_names[x[2]["pid"].get<int>()], "npu-test");
  EXPECT_EQ(x[2]["args"]["layer"], 5);
  EXPECT_NE(x[3]["tid"], x[0]["tid"]);  // the queue span is on the request's own track
}

TEST(TraceExport, SummarySharesAreOfTheStepTime) {
  std::vector<Span> spans = {
      Make(Kind::kStep, 0, 10000, 0, 1),     Make(Kind::kSchedule, 0, 1000, 0, 1),
      Make(Kind::kHop, 1000, 9000, 0, 1, 0), Make(Kind::kLogits, 9000, 9500, 0, 1),
      Make(Kind::kSample, 9100, 9400, 1, 1), Make(Kind::kStream, 9500, 10000, 1, 1),
  };
  // The sample span lies inside the logits span (rows are sampled in place):
  // a row of its own, a level down, not counted twice in the cover.
  std::string s = TraceSummary(spans, {{"embedding + L0 attention", "npu"}});
  EXPECT_NE(s.find("hop 0: embedding + L0 attention @npu"), std::string::npos) << s;
  EXPECT_NE(s.find("80.0%"), std::string::npos) << s;  // the hop's share
  EXPECT_NE(s.find("cover 100.0% of the step time"), std::string::npos) << s;
  EXPECT_NE(s.find(" 100000.0 tok/s"), std::string::npos) << s;  // 1 token in 10 us
  const TraceBreakdown b = Breakdown(spans, {{"embedding + L0 attention", "npu"}});
  std::map<std::string, TraceRow> rows;
  for (const TraceRow& r : b.rows) rows[r.name] = r;
  ASSERT_TRUE(rows.count("logits read + sample")) << s;
  ASSERT_TRUE(rows.count("  sample (per row)")) << s;
  EXPECT_EQ(rows["logits read + sample"].level, TraceRow::kStage);
  EXPECT_EQ(rows["  sample (per row)"].level, TraceRow::kPart);
  EXPECT_DOUBLE_EQ(rows["  sample (per row)"].share, 0.03);
}

TEST(TraceExport, OpSpansNestUnderTheirPartInJsonAndSummary) {
  uint16_t gpu = trace::ProcessId("gpu-op-test");
  Span part = Make(Kind::kFfn, 2000, 6000, 0, 1, 3, gpu);
  part.device = true;
  Span down = Make(Kind::kOpDown, 3000, 5000, 0, 1, 3, gpu);
  down.device = true;
  Span host_op = Make(Kind::kOpAttentionCore, 2500, 3500, 0, 1, 2, gpu);
  std::vector<Span> spans = {
      Make(Kind::kStep, 0, 10000, 0, 1), Make(Kind::kHop, 1000, 9000, 0, 1, 0), part, down, host_op,
  };
  auto doc = nlohmann::json::parse(ChromeTraceJson(spans, {{"L3 ffn", "gpu-op-test"}}));
  std::map<std::string, nlohmann::json> x;
  for (const auto& e : doc["traceEvents"]) {
    if (e["ph"] == "X") x[e["name"]] = e;
  }
  ASSERT_TRUE(x.count("matmul ffn_down L3")) << doc.dump();
  const auto& op = x["matmul ffn_down L3"];
  EXPECT_EQ(op["cat"], "op");
  EXPECT_EQ(op["args"]["layer"], 3);
  EXPECT_EQ(op["args"]["device"], "vulkan");
  EXPECT_EQ(op["tid"], x["ffn L3"]["tid"]);  // the part's track, where it nests by time
  EXPECT_EQ(op["pid"], x["ffn L3"]["pid"]);
  EXPECT_EQ(x["attention core L2"]["cat"], "op");
  EXPECT_NE(x["attention core L2"]["tid"], op["tid"]);  // host time: the worker's own track

  const TraceBreakdown b = Breakdown(spans, {{"L3 ffn", "gpu-op-test"}});
  std::map<std::string, TraceRow> rows;
  for (const TraceRow& r : b.rows) rows[r.name] = r;
  const std::string dev = " @gpu-op-test (vulkan, GPU time)";
  ASSERT_TRUE(rows.count("  ffn" + dev));
  ASSERT_TRUE(rows.count("    op matmul ffn_down" + dev));
  ASSERT_TRUE(rows.count("    op attention core @gpu-op-test"));
  EXPECT_EQ(rows["  ffn" + dev].level, TraceRow::kPart);
  EXPECT_EQ(rows["    op matmul ffn_down" + dev].level, TraceRow::kOp);
  EXPECT_DOUBLE_EQ(rows["  ffn" + dev].share, 0.4);
  EXPECT_DOUBLE_EQ(rows["    op matmul ffn_down" + dev].share, 0.2);
  EXPECT_DOUBLE_EQ(rows["    op matmul ffn_down" + dev].p50_us, 2.0);
  // The op row sits below its worker's part rows.
  size_t part_at = 0, op_at = 0;
  for (size_t i = 0; i < b.rows.size(); ++i) {
    if (b.rows[i].name == "  ffn" + dev) part_at = i;
    if (b.rows[i].name == "    op matmul ffn_down" + dev) op_at = i;
  }
  EXPECT_LT(part_at, op_at);
  // Coverage counts the coordinator's stages only: ops are not counted twice.
  EXPECT_DOUBLE_EQ(b.covered_us, 8.0);
  std::string text = TraceSummary(spans, {{"L3 ffn", "gpu-op-test"}});
  EXPECT_NE(text.find("    op matmul ffn_down" + dev), std::string::npos) << text;
  EXPECT_NE(text.find("cover 80.0% of the step time"), std::string::npos) << text;
}

}  // namespace
}  // namespace unicorn
