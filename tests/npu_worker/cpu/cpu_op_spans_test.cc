// Traced stages on the CPU backend time each op on the host: a whole-model
// stage (text-small: embedding, 8 layers, LM head) run in a traced step
// yields op spans (host time, category "op") nested in their part's span
// with that part's layer and the kinds the part runs; a run leaves no layer
// behind on the thread.
#include <gtest/gtest.h>

#include <map>
#include <set>
#include <vector>

#include "common/trace.h"
#include "model/gemma3_stage.h"
#include "npu_worker/cpu/cpu_ops.h"
#include "tests/model/text_small_shard.h"

namespace unicorn::cpu {
namespace {

constexpr int kVocab = 512;  // text-small
constexpr int kLayers = unicorn::testing::kTextSmallLayers;

using trace::Kind;

TEST(CpuOpSpans, NestedInTheirPartWithItsLayer) {
  CpuOps ops(CpuOptions{2});
  const ShardSpec spec = testing::WholeTextSmallShard(8);
  auto model = Gemma3StageModel::Load(spec, ops);
  ASSERT_TRUE(model.ok()) << model.status();
  const StageSpec stage{true, 0, 2 * kLayers, true};
  const std::vector<int> prompt = {2, 10, 11, 12, 13};
  std::vector<float> logits(kVocab);

  ASSERT_FALSE(trace::Enabled());
  ASSERT_TRUE(
      (*model)->Run(stage, {{{1, 0, 5, true}}}, prompt, {}, nullptr, nullptr, logits.data()).ok());
  EXPECT_EQ(trace::Current().layer, -1);

  (*model)->Free(1);  // the traced sequence takes its ring (no store growth in the step)
  trace::Collector spans(4096);
  {
    trace::StepScope scope(&spans, 9);
    ASSERT_TRUE((*model)
                    ->Run(stage, {{{2, 0, 5, true}}}, prompt, {}, nullptr, nullptr, logits.data())
                    .ok());
  }
  EXPECT_EQ(trace::Current().layer, -1);  // the parts' layer scopes ended

  // A part's op spans are recorded before the part's own span (which ends
  // after them).
  std::vector<trace::Span> parts, op;
  std::vector<size_t> op_part;
  for (const trace::Span& s : spans.spans()) {
    EXPECT_FALSE(s.device);
    EXPECT_EQ(s.step, 9u);
    if (trace::IsOp(s.kind)) {
      EXPECT_EQ(std::string(trace::KindCategory(s.kind)), "op");
      op.push_back(s);
    } else if (std::string(trace::KindCategory(s.kind)) == "layer") {
      parts.push_back(s);
      op_part.resize(op.size(), parts.size() - 1);
    }
  }
  ASSERT_EQ(parts.size(), size_t(2 + 2 * kLayers));
  ASSERT_EQ(op_part.size(), op.size()) << "op spans outside the parts";
  std::map<size_t, std::multiset<Kind>> kinds;
  for (size_t k = 0; k < op.size(); ++k) {
    const trace::Span& s = op[k];
    const trace::Span& p = parts[op_part[k]];
    EXPECT_GE(s.start_ns, p.start_ns) << trace::KindName(s.kind);
    EXPECT_LE(s.end_ns, p.end_ns) << trace::KindName(s.kind);
    EXPECT_LE(s.start_ns, s.end_ns);
    if (k > 0) {
      EXPECT_GE(s.start_ns, op[k - 1].end_ns);  // one op at a time
    }
    EXPECT_EQ(s.layer, p.layer) << trace::KindName(s.kind);
    kinds[op_part[k]].insert(s.kind);
  }
  EXPECT_EQ(parts.front().kind, Kind::kEmbedding);
  EXPECT_EQ(kinds[0], (std::multiset<Kind>{Kind::kOpEmbed}));
  EXPECT_EQ(parts.back().kind, Kind::kLmHead);
  EXPECT_EQ(kinds[parts.size() - 1].count(Kind::kOpLmHead), 1u);
  for (int l = 0; l < kLayers; ++l) {
    const size_t a = size_t(1 + 2 * l), f = size_t(2 + 2 * l);
    EXPECT_EQ(parts[a].kind, Kind::kAttention);
    EXPECT_EQ(parts[f].kind, Kind::kFfn);
    // Gemma3Attention: pre-norm, q/k/v in one call, q/k head norms, RoPE on
    // q and k, the store, attention, o_proj, post-norm, residual add.
    EXPECT_EQ(kinds[a], (std::multiset<Kind>{Kind::kOpNorm, Kind::kOpQkv, Kind::kOpNorm,
                                             Kind::kOpNorm, Kind::kOpRope, Kind::kOpRope,
                                             Kind::kOpStoreKv, Kind::kOpAttentionCore,
                                             Kind::kOpAttnOutput, Kind::kOpNorm, Kind::kOpAdd}))
        << "L" << l;
    EXPECT_EQ(kinds[f], (std::multiset<Kind>{Kind::kOpNorm, Kind::kOpGateUp, Kind::kOpGeglu,
                                             Kind::kOpDown, Kind::kOpNorm, Kind::kOpAdd}))
        << "L" << l;
  }
}

TEST(CpuOpSpans, MatMulKindsFromWeightNames) {
  EXPECT_EQ(trace::MatMulOpKind("blk.3.attn_q.weight"), Kind::kOpQ);
  EXPECT_EQ(trace::MatMulOpKind("blk.12.ffn_down.weight"), Kind::kOpDown);
  EXPECT_EQ(trace::MatMulOpKind("blk.0.attn_output.weight"), Kind::kOpAttnOutput);
  EXPECT_EQ(trace::MatMulOpKind("blk.0.attn_q.weight", 3), Kind::kOpQkv);
  EXPECT_EQ(trace::MatMulOpKind("blk.0.ffn_gate.weight", 2), Kind::kOpGateUp);
  EXPECT_EQ(trace::MatMulOpKind("token_embd.weight"), Kind::kOpLmHead);
  EXPECT_EQ(trace::MatMulOpKind("v.blk.0.attn_q.weight"), Kind::kOpMatMul);
  EXPECT_EQ(trace::MatMulOpKind("blk.0.attn_q_norm.weight"), Kind::kOpMatMul);
}

}  // namespace
}  // namespace unicorn::cpu
