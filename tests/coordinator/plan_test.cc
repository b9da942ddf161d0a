#include "coordinator/plan.h"

#include <gtest/gtest.h>

namespace unicorn {
namespace {

Config Load(const std::string& layers) {
  auto c = ParseConfig(
      "model: m\nworkers: {npu: {kind: npu}, gpu: {kind: gpu}}\n"
      "plan: {embedding: gpu, lm_head: gpu, layers: " +
          layers + "}",
      "p.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

TEST(Plan, SplitAttentionNpuFfnGpu) {
  auto p = ResolvePlan(Load("[{attention: npu, ffn: gpu}]"), 3);
  ASSERT_TRUE(p.ok()) << p.status();
  // embedding@gpu, then per layer attention@npu, ffn@gpu; lm_head joins the last ffn stage.
  ASSERT_EQ(p->stages.size(), 7u);
  EXPECT_EQ(p->stages[0].worker, "gpu");
  EXPECT_TRUE(p->stages[0].embedding);
  EXPECT_EQ(p->stages[0].last_part, 0);  // embedding only
  EXPECT_EQ(p->stages[1].worker, "npu");
  EXPECT_EQ(p->stages[1].first_part, 0);
  EXPECT_EQ(p->stages[1].last_part, 1);
  EXPECT_EQ(p->stages[6].worker, "gpu");
  EXPECT_EQ(p->stages[6].first_part, 5);
  EXPECT_TRUE(p->stages[6].lm_head);
  EXPECT_EQ(p->AttentionWorkers(), std::vector<std::string>{"npu"});
  EXPECT_EQ(p->Summary(), "embedding@gpu | L0-2: attention@npu ffn@gpu | lm_head@gpu");
}

TEST(Plan, WholeModelOnOneWorkerIsOneStage) {
  auto p = ResolvePlan(Load("[{attention: gpu, ffn: gpu}]"), 34);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->stages.size(), 1u);
  EXPECT_TRUE(p->stages[0].embedding);
  EXPECT_TRUE(p->stages[0].lm_head);
  EXPECT_EQ(p->stages[0].first_part, 0);
  EXPECT_EQ(p->stages[0].last_part, 68);
}

TEST(Plan, LaterRangesOverride) {
  auto p =
      ResolvePlan(Load("[{attention: gpu, ffn: gpu}, {layers: 0-1, attention: npu, ffn: npu}]"), 4);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->stages.size(), 3u);  // embedding@gpu | L0-1@npu | L2-3 + head@gpu
  EXPECT_EQ(p->stages[1].worker, "npu");
  EXPECT_EQ(p->stages[1].last_part, 4);
  EXPECT_EQ(p->stages[2].first_part, 4);
}

TEST(Plan, ErrorsNameTheLayer) {
  auto out_of_range = ResolvePlan(Load("[{layers: 0-40, attention: npu, ffn: gpu}]"), 34);
  ASSERT_FALSE(out_of_range.ok());
  EXPECT_NE(std::string(out_of_range.status().message())
                .find("layer 40 in plan.layers[0] is out of range (the model has 34 layers)"),
            std::string::npos)
      << out_of_range.status();
  auto gap = ResolvePlan(Load("[{layers: 0-9, attention: npu, ffn: gpu}]"), 12);
  ASSERT_FALSE(gap.ok());
  EXPECT_NE(std::string(gap.status().message()).find("layer 10 has no attention worker"),
            std::string::npos);
}

}  // namespace
}  // namespace unicorn

namespace unicorn {
namespace {

TEST(Plan, WorkersListsEveryStageWorkerOnce) {
  auto c = ParseConfig(
      "model: m\nworkers: {npu: {kind: npu}, gpu: {kind: gpu}}\n"
      "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}",
      "p.yaml");
  ASSERT_TRUE(c.ok());
  auto p = ResolvePlan(*c, 4);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->Workers(), (std::vector<std::string>{"gpu", "npu"}));
}

}  // namespace
}  // namespace unicorn
