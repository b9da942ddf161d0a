// The GPU worker's zero-copy seam: the shared arena imported into VulkanOps
// (gpu_worker/arena_import.h). Write/Read with arena pointers become device
// copies from/to the imported memory and give the same bytes as the copy
// path; a stage run in place gives the same output as one through host
// vectors; with import forced off the fallback is taken and logged.
#include "gpu_worker/arena_import.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <cstdlib>
#include <cstring>
#include <random>

#include "common/log.h"
#include "model/gemma3_stage.h"
#include "shared_mem/plan.h"
#include "tests/scoped_env.h"

namespace unicorn::vk {
namespace {

constexpr int kHidden = 64;  // text-small
constexpr int kRows = 8;

VulkanOps& SharedOps() {
  static VulkanOps* ops = [] {
    const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
    auto o = VulkanOps::Create({sel ? sel : ""});
    if (!o.ok()) {
      ADD_FAILURE() << o.status();
      return static_cast<VulkanOps*>(nullptr);
    }
    return o->release();
  }();
  return *ops;
}

std::unique_ptr<shm::Arena> MakeArena() {
  shm::ArenaPlan plan;
  plan.regions.push_back({"act", kRows * kHidden * 4, 4});
  plan.regions.push_back({"logits", 4096, 2});
  shm::ArenaOptions opts;
  opts.backend = shm::BackendPreference::kMemfd;
  auto a = shm::Arena::Create(plan, opts);
  UNICORN_CHECK(a.ok());
  return std::move(*a);
}

std::vector<float> Random(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

// Captures warnings of the default logger while alive.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64)) {
    spdlog::default_logger()->sinks().push_back(sink_);
  }
  ~LogCapture() { spdlog::default_logger()->sinks().pop_back(); }
  std::string Text() const {
    std::string s;
    for (const std::string& l : sink_->last_formatted()) s += l;
    return s;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

class ArenaImport : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(&ops_, nullptr);
    if (!ops_.device().caps().external_memory_host) {
      GTEST_SKIP() << "device lacks VK_EXT_external_memory_host (lavapipe has it)";
    }
    arena_ = MakeArena();
    act_ = arena_->region("act");
  }
  void TearDown() override {
    if (arena_) (void)ImportArena(ops_, nullptr);
  }
  float* Slot(uint32_t i) { return reinterpret_cast<float*>(act_->payload(i)); }

  VulkanOps& ops_ = SharedOps();
  std::unique_ptr<shm::Arena> arena_;
  shm::Region* act_ = nullptr;
};

// y = gelu(x) with x written from, and y read into, arena slots: both moves
// are served by the import (counters), and the bytes equal the copy path's.
TEST_F(ArenaImport, WriteAndReadUseTheArenaInPlace) {
  ASSERT_TRUE(ImportArena(ops_, arena_.get()).ok());
  uint64_t total = 0;
  for (const auto& r : arena_->regions()) total += r->size();
  EXPECT_EQ(ops_.imported_bytes(), total);

  const size_t n = kRows * kHidden;
  std::vector<float> x = Random(n, 1);
  std::memcpy(Slot(0), x.data(), n * 4);
  std::fill(Slot(1), Slot(1) + n, -7.0f);
  auto buf = ops_.Alloc(n);
  const auto before = ops_.stats();
  ops_.Write(*buf, 0, Slot(0), n);
  ops_.Gelu(*buf, n);
  ops_.Read(*buf, 0, Slot(1), n);
  ASSERT_TRUE(ops_.status().ok()) << ops_.status();
  EXPECT_EQ(ops_.stats().imported_writes, before.imported_writes + 1);
  EXPECT_EQ(ops_.stats().imported_reads, before.imported_reads + 1);

  std::vector<float> want(n);
  ops_.Write(*buf, 0, x.data(), n);  // host vectors: the copy path
  ops_.Gelu(*buf, n);
  ops_.Read(*buf, 0, want.data(), n);
  EXPECT_EQ(ops_.stats().imported_reads, before.imported_reads + 1);
  // Same kernels on the same device: bitwise equal.
  EXPECT_EQ(std::memcmp(Slot(1), want.data(), n * 4), 0);
  // Rows at an offset inside a slot (the second sequence of a batch).
  std::vector<float> part(kHidden);
  ops_.Read(*buf, kHidden, Slot(2) + 3 * kHidden, kHidden);
  EXPECT_EQ(std::memcmp(Slot(2) + 3 * kHidden, want.data() + kHidden, kHidden * 4), 0);
}

// Once the graph cache is full, the slot copies are recorded apart from the
// cached command buffer: the same ops over other slots and rows re-use it
// instead of recording a new one each step, and the results stay right.
TEST_F(ArenaImport, FullCacheKeepsSlotCopiesOutOfTheGraph) {
  VulkanOptions vo;
  const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
  vo.device = sel ? sel : "";
  vo.max_graphs = 1;
  auto small = VulkanOps::Create(vo);
  ASSERT_TRUE(small.ok()) << small.status();
  VulkanOps& ops = **small;
  ASSERT_TRUE(ImportArena(ops, arena_.get()).ok());
  const size_t n = 2 * kHidden;
  for (uint32_t i = 0; i < 4; ++i) {
    std::vector<float> x = Random(kRows * kHidden, 10 + i);
    std::memcpy(Slot(i), x.data(), x.size() * 4);
  }
  auto buf = ops.Alloc(n);
  auto step = [&](uint32_t in, uint32_t out, size_t row) {
    ops.Write(*buf, 0, Slot(in) + row * kHidden, n);
    ops.Gelu(*buf, n);
    ops.Read(*buf, 0, Slot(out) + row * kHidden, n);
  };
  step(0, 1, 0);  // recorded whole (the cache had room)
  step(2, 3, 0);  // the cache is full: the rest recorded apart
  const auto first = ops.stats();
  step(3, 0, 5);
  step(1, 2, 2);
  ASSERT_TRUE(ops.status().ok()) << ops.status();
  EXPECT_EQ(ops.stats().recorded, first.recorded);
  EXPECT_EQ(ops.stats().reused, first.reused + 2);
  EXPECT_EQ(ops.stats().imported_reads, first.imported_reads + 2);
  // Slot 2 rows 2..3 = gelu(slot 1 rows 2..3), as the copy path computes it.
  std::vector<float> in(Slot(1) + 2 * kHidden, Slot(1) + 2 * kHidden + n), want(n);
  ops.Write(*buf, 0, in.data(), n);
  ops.Gelu(*buf, n);
  ops.Read(*buf, 0, want.data(), n);
  EXPECT_EQ(std::memcmp(Slot(2) + 2 * kHidden, want.data(), n * 4), 0);
  buf.reset();
  ops.ForgetHostMemory();
}

TEST_F(ArenaImport, ForcedOffFallsBackToCopiesAndSaysSo) {
  LogCapture log;
  Status s = [&] {
    unicorn::testing::ScopedEnv off("UNICORN_VK_IMPORT", "0");
    return ImportArena(ops_, arena_.get());
  }();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
  EXPECT_EQ(ops_.imported_bytes(), 0u);
  const std::string text = log.Text();
  EXPECT_NE(text.find("[vk] arena import unavailable ("), std::string::npos) << text;
  EXPECT_NE(text.find("UNICORN_VK_IMPORT=0"), std::string::npos) << text;
  EXPECT_NE(text.find("): copying activations"), std::string::npos) << text;

  // Arena pointers still work, through the copy path.
  const size_t n = kRows * kHidden;
  std::vector<float> x = Random(n, 2);
  std::memcpy(Slot(0), x.data(), n * 4);
  auto buf = ops_.Alloc(n);
  const auto before = ops_.stats();
  ops_.Write(*buf, 0, Slot(0), n);
  ops_.Read(*buf, 0, Slot(1), n);
  EXPECT_EQ(ops_.stats().imported_writes, before.imported_writes);
  EXPECT_EQ(ops_.stats().imported_reads, before.imported_reads);
  EXPECT_EQ(std::memcmp(Slot(1), x.data(), n * 4), 0);
}

// A pipeline stage (text-small, layers 0-1: attention + FFN, two sequences
// of a batch) run with input and output in arena slots, i.e. through the
// import, gives bitwise the output of the same stage through host vectors.
TEST_F(ArenaImport, StageInPlaceMatchesCopyPath) {
  ShardSpec spec;
  spec.model_path = UNICORN_SOURCE_DIR "/tests/data/models/text-small";
  spec.attention_layers = {0, 1};
  spec.ffn_layers = {0, 1};
  spec.max_step_tokens = kRows;
  auto in_place = Gemma3StageModel::Load(spec, ops_);
  ASSERT_TRUE(in_place.ok()) << in_place.status();
  auto copied = Gemma3StageModel::Load(spec, ops_);
  ASSERT_TRUE(copied.ok()) << copied.status();
  ASSERT_EQ((*in_place)->hidden_size(), kHidden);
  ASSERT_TRUE(ImportArena(ops_, arena_.get()).ok());

  const StageSpec stage{false, 0, 4, false};
  const std::vector<StageRows> seqs = {{1, 0, 5, false}, {2, 0, 3, false}};
  const std::vector<int> ids = {2, 10, 11, 12, 13, 2, 20, 21};
  const size_t n = kRows * kHidden;
  std::vector<float> x = Random(n, 3);
  for (int step = 0; step < 2; ++step) {  // a prefill, then the same rows as a re-run
    std::memcpy(Slot(0), x.data(), n * 4);
    std::fill(Slot(3), Slot(3) + n, 0.0f);
    const auto before = ops_.stats();
    ASSERT_TRUE((*in_place)->Run(stage, seqs, ids, {}, Slot(0), Slot(3), nullptr).ok());
    // The sequences run as one batched pass: one import copy each way.
    EXPECT_EQ(ops_.stats().imported_writes, before.imported_writes + 1);
    EXPECT_EQ(ops_.stats().imported_reads, before.imported_reads + 1);
    std::vector<float> want = x;
    ASSERT_TRUE((*copied)->Run(stage, seqs, ids, {}, want.data(), want.data(), nullptr).ok());
    EXPECT_EQ(std::memcmp(Slot(3), want.data(), n * 4), 0) << "step " << step;
    EXPECT_NE(std::memcmp(Slot(3), x.data(), n * 4), 0);  // the stage did something
  }
}

}  // namespace
}  // namespace unicorn::vk
