// The batched pipeline stage on Vulkan (see tests/model/stage_batch_check.h):
// ring-indexed K/V stores in the fused head-norm/RoPE/store kernel and in
// split-K attention, and the matvec kernel's column groups (up to 16 rows).
#include <cstdlib>

#include "gpu_worker/vulkan_ops.h"
#include "tests/model/stage_batch_check.h"

namespace unicorn::vk {
namespace {

// A batch runs the matvec kernel with 4 or 8 tokens per workgroup where a
// session runs 1, and attention through the split-K kernel where a
// session's prompt takes the tiled one: different summation orders, 1e-4 of
// the logit std.
TEST(StageBatchVulkan, StepsOfManySequencesMatchOneSessionEach) {
  const char* sel = std::getenv("UNICORN_TEST_VK_DEVICE");
  auto ops = VulkanOps::Create({sel ? sel : ""});
  ASSERT_TRUE(ops.ok()) << ops.status();
  testing::CheckStageBatchMatchesSessions(**ops, 1e-4);
}

}  // namespace
}  // namespace unicorn::vk
