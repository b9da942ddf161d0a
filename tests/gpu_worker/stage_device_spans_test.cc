// Traced stages on Vulkan time their parts on the GPU: a whole-model stage
// (text-small: embedding, 8 layers, LM head) run in a traced step yields one
// device span per part, in order, with non-negative durations inside the
// stage's wall time, and the same logits bitwise as the untraced run (the
// marks are timestamps, not ops).
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/trace.h"
#include "gpu_worker/vulkan_ops.h"
#include "model/gemma3_stage.h"

namespace unicorn::vk {
namespace {

constexpr int kVocab = 512;  // text-small
constexpr int kLayers = 8;

TEST(StageDeviceSpans, OneOrderedGpuSpanPerPartInsideTheStage) {
  const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
  auto ops = VulkanOps::Create({sel ? sel : ""});
  ASSERT_TRUE(ops.ok()) << ops.status();
  if (!(*ops)->device().caps().timestamps) GTEST_SKIP() << "device has no timestamps";
  ShardSpec spec;
  spec.model_path = UNICORN_SOURCE_DIR "/tests/data/models/text-small";
  spec.embedding = spec.lm_head = true;
  for (int l = 0; l < kLayers; ++l) {
    spec.attention_layers.push_back(l);
    spec.ffn_layers.push_back(l);
  }
  spec.max_step_tokens = 8;
  spec.max_context = 64;
  auto model = Gemma3StageModel::Load(spec, **ops);
  ASSERT_TRUE(model.ok()) << model.status();
  const StageSpec stage{true, 0, 2 * kLayers, true};
  const std::vector<int> prompt = {2, 10, 11, 12, 13};

  std::vector<float> plain(kVocab), traced(kVocab);
  ASSERT_TRUE(
      (*model)->Run(stage, {{{1, 0, 5, true}}}, prompt, {}, nullptr, nullptr, plain.data()).ok());
  for (int round = 0; round < 2; ++round) {  // recorded, then the cached traced graph
    trace::Collector spans(256);
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

    std::vector<trace::Span> dev;
    for (const trace::Span& s : spans.spans()) {
      if (s.device) dev.push_back(s);
    }
    ASSERT_EQ(dev.size(), size_t(2 + 2 * kLayers)) << "round " << round;
    EXPECT_EQ(dev.front().kind, trace::Kind::kEmbedding);
    EXPECT_EQ(dev.back().kind, trace::Kind::kLmHead);
    for (int l = 0; l < kLayers; ++l) {
      EXPECT_EQ(dev[size_t(1 + 2 * l)].kind, trace::Kind::kAttention);
      EXPECT_EQ(dev[size_t(1 + 2 * l)].layer, l);
      EXPECT_EQ(dev[size_t(2 + 2 * l)].kind, trace::Kind::kFfn);
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
  }
}

}  // namespace
}  // namespace unicorn::vk
