// The batched pipeline stage on the CPU backend (see stage_batch_check.h).
#include "npu_worker/cpu/cpu_ops.h"
#include "tests/model/stage_batch_check.h"

namespace unicorn {
namespace {

// Rows of several sequences share each product with rows of other
// sequences; the CPU kernels sum each row in the same order either way, so
// only the tiled-versus-single-row paths differ: 1e-4 of the logit std.
TEST(StageBatchCpu, StepsOfManySequencesMatchOneSessionEach) {
  cpu::CpuOps ops(cpu::CpuOptions{2});
  testing::CheckStageBatchMatchesSessions(ops, 1e-4);
}

}  // namespace
}  // namespace unicorn
