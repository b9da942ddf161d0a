// A small Prometheus exporter: counters, gauges and histograms, rendered in
// the text exposition format (version 0.0.4):
//   # HELP <name> <help, with \ and newline escaped>
//   # TYPE <name> counter|gauge|histogram
//   <name>{<label>="<value, with \ " and newline escaped>",...} <value>
// A histogram family renders <name>_bucket{...,le="<bound>"} (cumulative,
// ending with le="+Inf", equal to _count), <name>_sum and <name>_count.
// Every family's samples come together, after its HELP and TYPE lines.
//
// Metrics are created once (Registry::Counter/Gauge/Histogram with a label
// set) and updated lock-free from any thread; Render() may run concurrently.
// Values known elsewhere (engine stats, worker restarts) come from collect
// callbacks that run at the start of each Render().
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace unicorn::prom {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(double v = 1) { value_.fetch_add(v, std::memory_order_relaxed); }
  // For counters mirrored from elsewhere (collect callbacks): never decrease it.
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, strictly increasing (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket (not cumulative) counts, the +Inf bucket last.
  std::vector<uint64_t> counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Bucket bounds: `count` values from `start`, each `factor` times the last.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

// Formats a sample value: integers without a fraction, +Inf, -Inf, NaN.
std::string FormatValue(double v);
// Escapes a label value (\ " newline) or HELP text (\ newline).
std::string EscapeLabelValue(const std::string& s);
std::string EscapeHelp(const std::string& s);
// True if `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*.
bool ValidMetricName(const std::string& name);
// True if `name` matches [a-zA-Z_][a-zA-Z0-9_]* and does not start with "__".
bool ValidLabelName(const std::string& name);

class Registry {
 public:
  // Returns the metric of that name and label set, creating it (and its
  // family) on first use. The same name must keep one type and help text;
  // a misuse is a programmer bug (checked).
  Counter* GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge* GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram* GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bounds, const Labels& labels = {});
  // Runs before every Render(), e.g. to copy gauges from engine stats.
  void OnCollect(std::function<void()> f);

  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;
    std::map<Labels, std::unique_ptr<Counter>> counters;
    std::map<Labels, std::unique_ptr<Gauge>> gauges;
    std::map<Labels, std::unique_ptr<Histogram>> histograms;
  };
  Family& GetFamily(const std::string& name, const std::string& help, Type type,
                    const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;  // guarded by mu_, rendered in name order
  std::vector<std::function<void()>> collect_;
};

}  // namespace unicorn::prom
