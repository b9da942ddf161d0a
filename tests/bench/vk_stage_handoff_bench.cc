// Stage hand-off in the GPU worker: moving a stage's hidden states from the
// input arena slot into the GPU's activation buffer and the result back into
// the output slot, with the arena imported into Vulkan (zero-copy) vs copied
// through host vectors (the worker's fallback).
//
//   ninja -C build vk_stage_handoff_bench && build/bench/vk_stage_handoff_bench
//
// Each iteration is one stage's hand-off around one small op (gelu over the
// first 256 floats: the queue holds work as in a stage, but the transfers
// dominate):
//   op_only  the op and a flush, no transfers (the floor);
//   copy     memcpy slot -> vector, Write(vector), op, Read(vector),
//            memcpy vector -> slot (the stage server before import);
//   import   Write(slot), op, Read(slot) on the imported arena: device copies
//            from and to the slots, no host copies.
// Hand-off time = a method's time - op_only. Rows x 2560 floats (Gemma 3 4B
// width); slots rotate over the 4 activation slots as in the pipeline.
// UNICORN_TEST_VK_DEVICE picks the device (default: the best one).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "gpu_worker/arena_import.h"
#include "shared_mem/arena.h"

namespace unicorn::vk {
namespace {

constexpr int kHidden = 2560;
constexpr int kMaxRows = 512;
constexpr uint32_t kSlots = 4;

enum Method { kOpOnly, kCopy, kImport };

struct Env {
  std::unique_ptr<VulkanOps> ops;
  std::unique_ptr<shm::Arena> arena;
};

Env& GetEnv() {
  static Env* env = [] {
    auto* e = new Env;
    const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
    auto ops = VulkanOps::Create({sel ? sel : ""});
    UNICORN_CHECK(ops.ok());
    e->ops = std::move(*ops);
    shm::ArenaPlan plan;
    plan.regions.push_back({"act", uint64_t(kMaxRows) * kHidden * 4, kSlots});
    shm::ArenaOptions opts;
    opts.backend = shm::BackendPreference::kMemfd;
    auto arena = shm::Arena::Create(plan, opts);
    UNICORN_CHECK(arena.ok());
    e->arena = std::move(*arena);
    LOG_INFO("[bench] {}", e->ops->Describe());
    return e;
  }();
  return *env;
}

void BM_StageHandoff(benchmark::State& state) {
  const Method method = Method(state.range(0));
  const size_t n = size_t(state.range(1)) * kHidden;
  const size_t op_n = std::min<size_t>(n, 256);
  Env& env = GetEnv();
  VulkanOps& ops = *env.ops;
  shm::Region* act = env.arena->region("act");
  if (method == kImport) {
    if (Status s = ImportArena(ops, env.arena.get()); !s.ok()) {
      state.SkipWithError(std::string(s.message()).c_str());
      return;
    }
  }
  for (uint32_t i = 0; i < kSlots; ++i) {
    auto* p = reinterpret_cast<float*>(act->payload(i));
    for (size_t j = 0; j < n; ++j) p[j] = float(j % 97) * 0.01f;
  }
  auto x = ops.Alloc(n);
  std::vector<float> host(n);
  uint32_t slot = 0;
  for (auto _ : state) {
    const float* in = reinterpret_cast<const float*>(act->payload(slot));
    float* out = reinterpret_cast<float*>(act->payload((slot + 1) % kSlots));
    slot = (slot + 1) % kSlots;
    switch (method) {
      case kOpOnly:
        ops.Gelu(*x, op_n);
        (void)ops.Flush();
        break;
      case kCopy:
        std::memcpy(host.data(), in, n * 4);
        ops.Write(*x, 0, host.data(), n);
        ops.Gelu(*x, op_n);
        ops.Read(*x, 0, host.data(), n);
        std::memcpy(out, host.data(), n * 4);
        break;
      case kImport:
        ops.Write(*x, 0, in, n);
        ops.Gelu(*x, op_n);
        ops.Read(*x, 0, out, n);
        break;
    }
    benchmark::ClobberMemory();
  }
  if (!ops.status().ok()) state.SkipWithError(std::string(ops.status().message()).c_str());
  if (method == kImport) (void)ImportArena(ops, nullptr);
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(n) * 4 * 2);
  state.SetLabel(method == kOpOnly ? "op_only" : method == kCopy ? "copy" : "import");
}

BENCHMARK(BM_StageHandoff)
    ->ArgNames({"method", "rows"})
    ->ArgsProduct({{kOpOnly, kCopy, kImport}, {1, 16, 128, 512}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

}  // namespace
}  // namespace unicorn::vk

BENCHMARK_MAIN();
