// The exporter's output follows the Prometheus text format (0.0.4): HELP and
// TYPE once per family before its samples, escaped label values and help,
// cumulative histogram buckets ending at +Inf == _count, valid names.
#include "coordinator/prometheus.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <sstream>

namespace unicorn::prom {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

TEST(Prometheus, CounterAndGaugeHaveHelpTypeAndValue) {
  Registry r;
  r.GetCounter("unicorn_x_total", "Things counted.")->Inc(3);
  r.GetGauge("unicorn_g", "A level.")->Set(0.25);
  EXPECT_EQ(r.Render(),
            "# HELP unicorn_g A level.\n# TYPE unicorn_g gauge\nunicorn_g 0.25\n"
            "# HELP unicorn_x_total Things counted.\n# TYPE unicorn_x_total counter\n"
            "unicorn_x_total 3\n");
}

TEST(Prometheus, LabelValuesAndHelpAreEscaped) {
  Registry r;
  r.GetGauge("g", "back\\slash\nnewline", {{"path", "a\"b\\c\nd"}})->Set(1);
  std::string text = r.Render();
  EXPECT_NE(text.find("# HELP g back\\\\slash\\nnewline\n"), std::string::npos) << text;
  EXPECT_NE(text.find("g{path=\"a\\\"b\\\\c\\nd\"} 1\n"), std::string::npos) << text;
}

TEST(Prometheus, HistogramBucketsAreCumulativeAndEndAtInf) {
  Registry r;
  Histogram* h = r.GetHistogram("lat_seconds", "Latency.", {0.1, 1, 10}, {{"stage", "s"}});
  for (double v : {0.0625, 0.1, 0.5, 5.0, 50.0}) h->Observe(v);
  auto lines = Lines(r.Render());
  std::vector<std::string> want = {
      "# HELP lat_seconds Latency.",
      "# TYPE lat_seconds histogram",
      "lat_seconds_bucket{stage=\"s\",le=\"0.1\"} 2",  // le: v <= bound
      "lat_seconds_bucket{stage=\"s\",le=\"1\"} 3",
      "lat_seconds_bucket{stage=\"s\",le=\"10\"} 4",
      "lat_seconds_bucket{stage=\"s\",le=\"+Inf\"} 5",
      "lat_seconds_sum{stage=\"s\"} 55.6625",
      "lat_seconds_count{stage=\"s\"} 5",
  };
  EXPECT_EQ(lines, want);
}

TEST(Prometheus, OneFamilyManyLabelSetsShareOneHelp) {
  Registry r;
  r.GetCounter("c_total", "C.", {{"worker", "npu"}})->Inc();
  r.GetCounter("c_total", "C.", {{"worker", "gpu"}})->Inc(2);
  std::string text = r.Render();
  EXPECT_EQ(text,
            "# HELP c_total C.\n# TYPE c_total counter\nc_total{worker=\"gpu\"} 2\n"
            "c_total{worker=\"npu\"} 1\n");
  // The same metric object comes back for the same labels.
  EXPECT_EQ(r.GetCounter("c_total", "C.", {{"worker", "npu"}})->value(), 1);
}

TEST(Prometheus, ValuesAndNames) {
  EXPECT_EQ(FormatValue(2), "2");
  EXPECT_EQ(FormatValue(INFINITY), "+Inf");
  EXPECT_EQ(FormatValue(-INFINITY), "-Inf");
  EXPECT_EQ(FormatValue(NAN), "NaN");
  EXPECT_EQ(std::stod(FormatValue(0.1)), 0.1);  // round-trips exactly
  EXPECT_TRUE(ValidMetricName("unicorn_a:b_1"));
  EXPECT_FALSE(ValidMetricName("1abc"));
  EXPECT_FALSE(ValidMetricName("a-b"));
  EXPECT_TRUE(ValidLabelName("stage"));
  EXPECT_FALSE(ValidLabelName("__reserved"));
  EXPECT_FALSE(ValidLabelName("a:b"));
}

TEST(Prometheus, CollectCallbacksRunBeforeRendering) {
  Registry r;
  Gauge* g = r.GetGauge("running", "Running.");
  int calls = 0;
  r.OnCollect([&] {
    g->Set(++calls);
    r.GetCounter("late_total", "Made at collect time.", {{"worker", "npu"}})->Set(7);
  });
  std::string text = r.Render();
  EXPECT_NE(text.find("running 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("late_total{worker=\"npu\"} 7\n"), std::string::npos) << text;
}

}  // namespace
}  // namespace unicorn::prom
