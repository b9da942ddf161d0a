// What tracing costs per span and per stage hop, to bound its share of a
// step: a traced step of the demo split plan records ~7 spans on a worker per
// hop (13 hops) plus ~20 on the coordinator, and ships the worker spans in
// StageDone. Run: ninja -C build trace_bench && build/bench/trace_bench
#include <benchmark/benchmark.h>

#include "common/trace.h"
#include "proto/unicorn/worker.pb.h"

namespace unicorn {
namespace {

// A span site outside a traced step: one thread-local check.
void BM_SpanOff(benchmark::State& state) {
  for (auto _ : state) {
    trace::ScopedSpan s(trace::Kind::kAttention, 3);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_SpanOff);

// A span recorded into a worker's per-stage collector: two clock reads.
void BM_SpanIntoCollector(benchmark::State& state) {
  trace::Collector c(1024);
  trace::StepScope scope(&c, 1);
  for (auto _ : state) {
    if (c.spans().size() == 1024) c.Clear();
    trace::ScopedSpan s(trace::Kind::kAttention, 3);
  }
}
BENCHMARK(BM_SpanIntoCollector);

// An op span site of the CPU backend outside a traced step (every op of
// every untraced step pays this): one thread-local check.
void BM_OpSpanOff(benchmark::State& state) {
  for (auto _ : state) {
    trace::OpSpan s(trace::Kind::kOpNorm);
    benchmark::ClobberMemory();
  }
}
BENCHMARK(BM_OpSpanOff);

// An op span of a traced step, inside a part's layer scope, with the matrix
// product's kind read from the weight's name (the costliest op span).
void BM_MatMulOpSpanIntoCollector(benchmark::State& state) {
  trace::Collector c(1024);
  trace::StepScope scope(&c, 1);
  trace::LayerScope layer(3);
  const std::string name = "blk.3.ffn_down.weight";
  for (auto _ : state) {
    if (c.spans().size() == 1024) c.Clear();
    trace::OpSpan s(trace::Kind::kOpMatMul);
    if (s.on()) s.set_kind(trace::MatMulOpKind(name));
  }
}
BENCHMARK(BM_MatMulOpSpanIntoCollector);

// A span recorded into the coordinator's ring (mutex, copy).
void BM_SpanIntoRing(benchmark::State& state) {
  trace::Ring ring(1 << 17);
  trace::StepScope scope(&ring, 1);
  for (auto _ : state) {
    trace::ScopedSpan s(trace::Kind::kHop, 3);
  }
}
BENCHMARK(BM_SpanIntoRing);

// One traced hop's extra work beyond its spans: the worker puts 7 spans in
// StageDone and serializes it, the coordinator parses it and merges them into
// its ring (compared with the same reply without spans).
void BM_HopSpansOverWire(benchmark::State& state) {
  const bool with_spans = state.range(0) != 0;
  trace::Ring ring(1 << 17);
  for (auto _ : state) {
    wire::StageDone done;
    done.set_step_id(42);
    done.mutable_output()->set_region(1);
    done.mutable_output()->set_size(4096);
    if (with_spans) {
      for (int i = 0; i < 7; ++i) {
        wire::Span* w = done.add_spans();
        w->set_kind(int(trace::Kind::kFfn));
        w->set_layer(i);
        w->set_start_ns(1000000000 + i);
        w->set_end_ns(1000000100 + i);
      }
    }
    std::string bytes = done.SerializeAsString();
    wire::StageDone got;
    got.ParseFromString(bytes);
    for (const wire::Span& w : got.spans()) {
      trace::Span s;
      trace::KindFromInt(w.kind(), &s.kind);
      s.start_ns = w.start_ns();
      s.end_ns = w.end_ns();
      s.layer = w.layer();
      ring.Add(s);
    }
    benchmark::DoNotOptimize(got);
  }
}
BENCHMARK(BM_HopSpansOverWire)->Arg(0)->Arg(1);

}  // namespace
}  // namespace unicorn

BENCHMARK_MAIN();
