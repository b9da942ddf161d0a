// The GPU worker's decode steps re-submit one recorded command buffer: a
// whole-model stage (text-small: embedding, 8 layers, LM head) run at
// successive positions with its logits written into an imported arena slot
// records its decode work once, and every step's logits equal bitwise those
// of a twin whose command buffers are dropped and recorded anew before each
// step (same kernels on the same device, so no tolerance). A sequence after
// a freed one reuses its session and records nothing.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "gpu_worker/arena_import.h"
#include "model/gemma3_stage.h"
#include "shared_mem/plan.h"
#include "tests/model/text_small_shard.h"

namespace unicorn::vk {
namespace {

constexpr int kVocab = 512;  // text-small
constexpr int kChunk = 8;

std::unique_ptr<VulkanOps> MakeOps() {
  const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
  auto o = VulkanOps::Create({sel ? sel : ""});
  UNICORN_CHECK(o.ok());
  return std::move(*o);
}

TEST(StageDecodeCache, DecodeReusesItsRecordingAndMatchesFreshOnes) {
  auto cached_ops = MakeOps(), fresh_ops = MakeOps();
  if (!cached_ops->device().caps().external_memory_host) {
    GTEST_SKIP() << "device lacks VK_EXT_external_memory_host (lavapipe has it)";
  }
  shm::ArenaPlan plan;
  plan.regions.push_back({"logits", kVocab * 4, 2});
  shm::ArenaOptions opts;
  opts.backend = shm::BackendPreference::kMemfd;
  auto arena = shm::Arena::Create(plan, opts);
  ASSERT_TRUE(arena.ok()) << arena.status();
  ASSERT_TRUE(ImportArena(*cached_ops, arena->get()).ok());
  float* slot = reinterpret_cast<float*>((*arena)->region("logits")->payload(0));

  const ShardSpec spec = unicorn::testing::WholeTextSmallShard(kChunk);
  auto cached = Gemma3StageModel::Load(spec, *cached_ops);
  ASSERT_TRUE(cached.ok()) << cached.status();
  auto fresh = Gemma3StageModel::Load(spec, *fresh_ops);
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  const StageSpec stage{true, 0, 16, true};

  std::vector<int> ids = {2, 10, 11, 12, 13};  // the prompt, then one token per step
  std::vector<float> want(kVocab);
  std::vector<std::vector<float>> first_run;
  uint64_t recorded_after_first_decode = 0;
  for (int step = 0; step < 6; ++step) {
    const int pos = step == 0 ? 0 : int(ids.size()) - 1;
    const std::vector<int> rows(ids.begin() + pos, ids.end());
    const std::vector<StageRows> seqs = {{7, pos, int(rows.size()), true}};
    std::fill(slot, slot + kVocab, 0.0f);
    ASSERT_TRUE((*cached)->Run(stage, seqs, rows, {}, nullptr, nullptr, slot).ok());
    fresh_ops->DropCachedCommandBuffers();
    const uint64_t fresh_before = fresh_ops->stats().recorded;
    ASSERT_TRUE((*fresh)->Run(stage, seqs, rows, {}, nullptr, nullptr, want.data()).ok());
    EXPECT_GT(fresh_ops->stats().recorded, fresh_before);  // recorded anew
    EXPECT_EQ(std::memcmp(slot, want.data(), kVocab * 4), 0) << "step " << step;
    first_run.push_back(want);
    if (step == 1) recorded_after_first_decode = cached_ops->stats().recorded;
    ids.push_back(int(100 + 37 * step) % kVocab);  // the next "sampled" token
  }
  // Decode steps 2..5 reused the recording of step 1.
  EXPECT_EQ(cached_ops->stats().recorded, recorded_after_first_decode);
  EXPECT_NE(want[0], 0.0f);

  // Later sequences take the freed one's session (same buffers), and the
  // same tokens give the same logits. The second one records nothing at all
  // (the first may record its prefill again: the decode's attention scratch
  // grew after the prefill was recorded, which drops recordings once).
  for (uint64_t seq = 8; seq <= 9; ++seq) {
    (*cached)->Free(seq - 1);
    const uint64_t recorded = cached_ops->stats().recorded;
    ids.resize(5);
    for (int step = 0; step < 6; ++step) {
      const int pos = step == 0 ? 0 : int(ids.size()) - 1;
      const std::vector<int> rows(ids.begin() + pos, ids.end());
      const std::vector<StageRows> seqs = {{seq, pos, int(rows.size()), true}};
      ASSERT_TRUE((*cached)->Run(stage, seqs, rows, {}, nullptr, nullptr, slot).ok());
      EXPECT_EQ(std::memcmp(slot, first_run[size_t(step)].data(), kVocab * 4), 0)
          << "sequence " << seq << " step " << step;
      ids.push_back(int(100 + 37 * step) % kVocab);
    }
    if (seq == 9) {
      EXPECT_EQ(cached_ops->stats().recorded, recorded);
    }
  }
  cached->reset();
  (void)ImportArena(*cached_ops, nullptr);
}

}  // namespace
}  // namespace unicorn::vk
