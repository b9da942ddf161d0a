// The pipeline stage's batched pass (model/gemma3_batch.h) against one
// Gemma3Session per sequence, on any backend (tests/model/stage_batch_test.cc
// on the CPU, tests/gpu_worker/stage_batch_vulkan_test.cc on Vulkan).
//
// Sequences join, decode together, leave and are replaced while their rings
// grow (1 -> 2 -> 4: the stores are copied with live caches in them); a
// step mixes prompts and decode rows. Every logit row of the batched stage
// must equal its sequence's own session to `tol` of the logit std, and the
// greedy tokens must agree. Every other step asks only for the argmax ids
// (StageSpec::argmax, Ops::Argmax), which must be those greedy tokens.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "model/gemma3.h"
#include "model/gemma3_stage.h"
#include "model/model_files.h"
#include "tests/model/gemma3_fixture.h"
#include "tests/model/text_small_shard.h"

namespace unicorn::testing {

inline int ArgmaxOf(const float* v, int n) { return int(std::max_element(v, v + n) - v); }

inline void CheckStageBatchMatchesSessions(Ops& ops, double tol) {
  const std::string dir = UNICORN_SOURCE_DIR "/tests/data/models/text-small";
  auto files = ModelFiles::Open(dir, "");
  ASSERT_TRUE(files.ok()) << files.status();
  const Gemma3Config& c = (*files)->config();
  auto model = Gemma3Model::Load(
      c, [&](const std::string& n) { return (*files)->Find(n); }, ops);
  ASSERT_TRUE(model.ok()) << model.status();

  ShardSpec spec = WholeTextSmallShard(32);
  spec.max_sequences = 4;
  auto stage = Gemma3StageModel::Load(spec, ops);
  ASSERT_TRUE(stage.ok()) << stage.status();
  const StageSpec whole{true, 0, 2 * c.num_layers, true};
  StageSpec whole_argmax = whole;
  whole_argmax.argmax = true;
  const int V = c.vocab_size;

  struct Seq {
    std::vector<int> tokens;  // prompt, then the greedy tokens
    int in_cache = 0;         // tokens the stage and the session hold
    std::unique_ptr<Gemma3Session> session;
  };
  std::map<uint64_t, Seq> live;
  auto join = [&](uint64_t id, int prompt_len) {
    Seq s;
    s.tokens = Tokens(prompt_len, V, uint32_t(id * 7 + 1), c.image_token_id);
    auto session = Gemma3Session::Create(**model, SessionOptions{64, 32});
    ASSERT_TRUE(session.ok()) << session.status();
    s.session = std::move(*session);
    live.emplace(id, std::move(s));
  };
  // One engine step: every live sequence feeds its tokens not yet cached.
  auto step = [&](int number) {
    std::vector<StageRows> rows;
    std::vector<int> ids;
    for (auto& [id, s] : live) {
      const int n = int(s.tokens.size()) - s.in_cache;
      rows.push_back({id, s.in_cache, n, true, 0});
      ids.insert(ids.end(), s.tokens.begin() + s.in_cache, s.tokens.end());
    }
    const bool ids_only = number % 2 == 0;
    std::vector<float> logits(rows.size() * size_t(V));
    ASSERT_TRUE(
        (*stage)
            ->Run(ids_only ? whole_argmax : whole, rows, ids, {}, nullptr, nullptr, logits.data())
            .ok());
    const int32_t* argmax = reinterpret_cast<const int32_t*>(logits.data());
    size_t k = 0;
    for (auto& [id, s] : live) {
      std::vector<float> want;
      const std::span<const int> fresh(s.tokens.data() + s.in_cache,
                                       s.tokens.size() - size_t(s.in_cache));
      if (s.in_cache == 0) {
        ASSERT_TRUE(s.session->Prefill(fresh, {}, LogitsMode::kLast, &want).ok());
      } else {
        ASSERT_TRUE(s.session->Decode(fresh[0], &want).ok());
      }
      const int next = ArgmaxOf(want.data(), V);
      if (ids_only) {
        EXPECT_EQ(argmax[k++], next) << "step " << number << ", sequence " << id << " (argmax)";
      } else {
        const float* got = logits.data() + k++ * size_t(V);
        const double err = MaxAbsDiff(got, want.data(), size_t(V)) / Std(want);
        EXPECT_LT(err, tol) << "step " << number << ", sequence " << id;
        EXPECT_EQ(ArgmaxOf(got, V), next) << "step " << number << ", sequence " << id;
      }
      s.in_cache = int(s.tokens.size());
      s.tokens.push_back(next);
    }
  };

  join(1, 11);
  join(2, 5);
  step(1);  // two prompts in one pass (rings 0 and 1)
  join(3, 3);
  step(2);  // two decode rows and a prompt; the stores grow to 4 rings
  step(3);
  step(4);
  (*stage)->Free(2);
  live.erase(2);
  join(4, 4);
  step(5);  // the newcomer takes the freed ring, over the old sequence's keys
  for (int n = 6; n <= 9; ++n) step(n);

  // Errors name the sequence and change nothing.
  const std::vector<int> one = {5};
  std::vector<float> out(2 * size_t(V));
  const std::vector<StageRows> twice = {{1, live[1].in_cache, 1, true, 0},
                                        {1, live[1].in_cache, 1, true, 0}};
  const std::vector<int> two = {5, 5};
  Status dup = (*stage)->Run(whole, twice, two, {}, nullptr, nullptr, out.data());
  EXPECT_EQ(dup.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(dup.message().find("appears twice"), std::string::npos) << dup;
  const std::vector<StageRows> skip = {{3, live[3].in_cache + 2, 1, true, 0}};
  Status gap = (*stage)->Run(whole, skip, one, {}, nullptr, nullptr, out.data());
  EXPECT_EQ(gap.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(gap.message().find("sequence 3"), std::string::npos) << gap;
  step(10);  // still equal after the refused steps
}

}  // namespace unicorn::testing
