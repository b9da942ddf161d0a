// Traced stages on Vulkan time their parts and their ops on the GPU: a
// whole-model stage (text-small: embedding, 8 layers, LM head) run in a
// traced step yields one device span per part, in order, with non-negative
// durations inside the stage's wall time, op spans (one per op or fused
// group) nested in their part with its layer and the kinds the part runs,
// and the same logits bitwise as the untraced run (the marks are
// timestamps, not ops). Both clock methods run it: calibrated timestamps
// (where the device offers VK_EXT_calibrated_timestamps; lavapipe does) and
// the pinning fallback, forced by the option.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "common/trace.h"
#include "gpu_worker/device_clock.h"
#include "gpu_worker/vulkan_ops.h"
#include "model/gemma3_stage.h"
#include "tests/model/text_small_shard.h"

namespace unicorn::vk {
namespace {

constexpr int kVocab = 512;  // text-small
constexpr int kLayers = unicorn::testing::kTextSmallLayers;

using trace::Kind;

StatusOr<std::unique_ptr<VulkanOps>> Open(bool calibrated) {
  const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
  VulkanOptions o;
  o.device = sel ? sel : "";
  o.calibrated_clock = calibrated;
  return VulkanOps::Create(o);
}

class StageDeviceSpans : public ::testing::TestWithParam<bool> {};

TEST_P(StageDeviceSpans, PartAndOpSpansInsideTheStage) {
  auto ops = Open(GetParam());
  ASSERT_TRUE(ops.ok()) << ops.status();
  if (!(*ops)->device().caps().timestamps) GTEST_SKIP() << "device has no timestamps";
  if (GetParam() && !(*ops)->device().caps().calibrated_timestamps) {
    GTEST_SKIP() << "device has no calibrated timestamps";
  }
  EXPECT_EQ((*ops)->clock_calibrated(), GetParam());
  const ShardSpec spec = unicorn::testing::WholeTextSmallShard(8);
  auto model = Gemma3StageModel::Load(spec, **ops);
  ASSERT_TRUE(model.ok()) << model.status();
  const StageSpec stage{true, 0, 2 * kLayers, true};
  const std::vector<int> prompt = {2, 10, 11, 12, 13};

  std::vector<float> plain(kVocab), traced(kVocab);
  ASSERT_TRUE(
      (*model)->Run(stage, {{{1, 0, 5, true}}}, prompt, {}, nullptr, nullptr, plain.data()).ok());
  // Each traced sequence takes the freed ring 0, so its kernels (and bits)
  // are those of the plain run.
  (*model)->Free(1);
  for (int round = 0; round < 2; ++round) {  // recorded, then the cached traced graph
    if (round > 0) (*model)->Free(uint64_t(1 + round));
    trace::Collector spans(4096);
    int64_t t0, t1;
    {
      trace::StepScope scope(&spans, 9);
      t0 = trace::NowNs();
      ASSERT_TRUE((*model)
                      ->Run(stage, {{{uint64_t(2 + round), 0, 5, true}}}, prompt, {}, nullptr,
                            nullptr, traced.data())
                      .ok());
      t1 = trace::NowNs();
    }
    EXPECT_EQ(std::memcmp(plain.data(), traced.data(), kVocab * 4), 0) << "round " << round;

    // A part's op spans are recorded before the part's own span.
    std::vector<trace::Span> dev, op;
    std::vector<size_t> op_part;  // index into dev of each op's part
    for (const trace::Span& s : spans.spans()) {
      if (!s.device) continue;
      EXPECT_EQ(std::string(trace::KindCategory(s.kind)), trace::IsOp(s.kind) ? "op" : "layer");
      if (trace::IsOp(s.kind)) {
        op.push_back(s);
      } else {
        dev.push_back(s);
        op_part.resize(op.size(), dev.size() - 1);
      }
    }
    ASSERT_EQ(op_part.size(), op.size()) << "op spans after the last part";
    ASSERT_EQ(dev.size(), size_t(2 + 2 * kLayers)) << "round " << round;
    EXPECT_EQ(dev.front().kind, Kind::kEmbedding);
    EXPECT_EQ(dev.back().kind, Kind::kLmHead);
    for (int l = 0; l < kLayers; ++l) {
      EXPECT_EQ(dev[size_t(1 + 2 * l)].kind, Kind::kAttention);
      EXPECT_EQ(dev[size_t(1 + 2 * l)].layer, l);
      EXPECT_EQ(dev[size_t(2 + 2 * l)].kind, Kind::kFfn);
      EXPECT_EQ(dev[size_t(2 + 2 * l)].layer, l);
    }
    for (size_t k = 0; k < dev.size(); ++k) {
      EXPECT_EQ(dev[k].step, 9u);
      EXPECT_GE(dev[k].start_ns, t0);
      EXPECT_LE(dev[k].end_ns, t1);
      EXPECT_GE(dev[k].end_ns, dev[k].start_ns);
      if (k > 0) {
        EXPECT_GE(dev[k].start_ns, dev[k - 1].end_ns);
      }
    }
    EXPECT_GT(dev.back().end_ns, dev.front().start_ns);  // the GPU took some time

    // Op spans: each inside one part span, with that part's layer, in order
    // and not overlapping; the kinds each part runs.
    ASSERT_GE(op.size(), dev.size() * 2) << "round " << round;
    std::map<size_t, std::multiset<Kind>> kinds;  // by part index
    for (size_t k = 0; k < op.size(); ++k) {
      const trace::Span& s = op[k];
      EXPECT_EQ(s.step, 9u);
      EXPECT_GE(s.end_ns, s.start_ns);
      if (k > 0) {
        EXPECT_GE(s.start_ns, op[k - 1].end_ns);
      }
      const size_t part = op_part[k];
      EXPECT_GE(s.start_ns, dev[part].start_ns) << trace::KindName(s.kind) << " L" << s.layer;
      EXPECT_LE(s.end_ns, dev[part].end_ns) << trace::KindName(s.kind) << " L" << s.layer;
      EXPECT_EQ(s.layer, dev[part].layer) << trace::KindName(s.kind);
      kinds[part].insert(s.kind);
    }
    int64_t op_ns = 0;
    for (const trace::Span& s : op) op_ns += s.end_ns - s.start_ns;
    EXPECT_GT(op_ns, 0);  // the ops took GPU time
    EXPECT_TRUE(kinds[0].count(Kind::kOpEmbed));
    EXPECT_TRUE(kinds[dev.size() - 1].count(Kind::kOpLmHead));
    for (int l = 0; l < kLayers; ++l) {
      const auto& a = kinds[size_t(1 + 2 * l)];
      const auto& f = kinds[size_t(2 + 2 * l)];
      for (Kind k :
           {Kind::kOpQ, Kind::kOpK, Kind::kOpV, Kind::kOpAttentionCore, Kind::kOpAttnOutput}) {
        EXPECT_EQ(a.count(k), 1u) << "L" << l << " " << trace::KindName(k);
      }
      EXPECT_EQ(f.count(Kind::kOpDown), 1u) << "L" << l;
      EXPECT_EQ(f.count(Kind::kOpQ), 0u) << "L" << l;
      EXPECT_EQ(a.count(Kind::kOpDown), 0u) << "L" << l;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Clock, StageDeviceSpans, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Calibrated" : "Pinned"; });

// The calibration samples agree with each other: over a pause, the device
// ticks advance as CLOCK_MONOTONIC does.
TEST(DeviceCalibration, SamplesFollowTheHostClock) {
  auto ops = Open(true);
  ASSERT_TRUE(ops.ok()) << ops.status();
  Device& d = (*ops)->device();
  if (!d.caps().calibrated_timestamps) {
    EXPECT_FALSE((*ops)->clock_calibrated());
    uint64_t tick, dev;
    int64_t ns;
    EXPECT_FALSE(d.CalibratedTimestamps(&tick, &ns, &dev).ok());
    GTEST_SKIP() << "device has no calibrated timestamps";
  }
  EXPECT_TRUE((*ops)->clock_calibrated());
  uint64_t tick0, tick1, dev0, dev1;
  int64_t ns0, ns1;
  ASSERT_TRUE(d.CalibratedTimestamps(&tick0, &ns0, &dev0).ok());
  EXPECT_LE(std::abs(ns0 - trace::NowNs()), 1'000'000'000);  // it is CLOCK_MONOTONIC
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_TRUE(d.CalibratedTimestamps(&tick1, &ns1, &dev1).ok());
  const double device_ns = double(tick1 - tick0) * d.caps().timestamp_period_ns;
  // Both clocks measured the same ~30 ms: they may differ by the two
  // samples' stated deviations plus 1 ms of rate error (0.1% of a few
  // seconds' drift budget is far less; 1 ms keeps it robust on a loaded VM).
  EXPECT_NEAR(device_ns, double(ns1 - ns0), double(dev0 + dev1) + 1e6);
  EXPECT_GE(ns1 - ns0, 30'000'000);
}

TEST(DeviceClock, CalibratedAndPinnedConversions) {
  DeviceClock c(2.0, 64);  // 2 ns per tick
  EXPECT_FALSE(c.calibrated());
  // Pinned: the last tick lands on done_ns, earlier ones before it.
  EXPECT_EQ(c.ToNs(1000, 1500, 1'000'000), 1'000'000 - 1000);
  EXPECT_EQ(c.ToNs(1500, 1500, 1'000'000), 1'000'000);
  c.Calibrate(10'000, 5'000'000);
  EXPECT_TRUE(c.calibrated());
  EXPECT_EQ(c.calibrated_ns(), 5'000'000);
  // Calibrated: done_ns no longer matters.
  EXPECT_EQ(c.ToNs(10'500, 99, 1), 5'000'000 + 1000);
  EXPECT_EQ(c.ToNs(9'000, 99, 1), 5'000'000 - 2000);
  // A 36-bit counter that wrapped since the sample still converts.
  DeviceClock w(1.0, 36);
  const uint64_t top = (uint64_t(1) << 36) - 10;
  w.Calibrate(top, 100);
  EXPECT_EQ(w.ToNs(5, 0, 0), 100 + 15);
  EXPECT_EQ(w.ToNs(top - 7, 0, 0), 100 - 7);
}

}  // namespace
}  // namespace unicorn::vk
