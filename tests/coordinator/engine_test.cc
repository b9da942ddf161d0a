// The engine against a deterministic fake model. The fake keeps a per-sequence
// "KV cache" (the tokens it has seen) and rejects any step that does not
// continue it exactly, so chunking, batching and replay mistakes fail loudly.
#include "coordinator/engine.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <thread>
#include <tuple>

#include "coordinator/token_sampler.h"

namespace unicorn {
namespace {

constexpr int kVocab = 97;

// The fake model: the next token is a hash of every token so far.
int NextToken(const std::vector<int>& tokens) {
  uint64_t h = 1469598103934665603ull;
  for (int t : tokens) h = (h ^ uint64_t(t)) * 1099511628211ull;
  return int(h % kVocab);
}

std::vector<int> Reference(std::vector<int> tokens, int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) {
    int t = NextToken(tokens);
    out.push_back(t);
    tokens.push_back(t);
  }
  return out;
}

class FakeExecutor : public StepExecutor {
 public:
  Status Run(std::span<const SeqStep> batch, LogitsFn use_logits) override {
    if (gate_.valid()) gate_.wait();
    std::this_thread::sleep_for(step_delay_);
    std::lock_guard<std::mutex> lock(mu_);
    ++steps_;
    max_batch_ = std::max(max_batch_, int(batch.size()));
    if (fail_at_step_ == steps_) {
      kv_.clear();  // the worker died with every cache
      return absl::UnavailableError("worker lost");
    }
    std::vector<float> logits;
    std::vector<int32_t> ids;  // with argmax_ids_, where every row is greedy
    bool greedy = true;
    for (const SeqStep& s : batch) {
      max_chunk_ = std::max(max_chunk_, int(s.tokens.size()));
      auto& kv = kv_[s.seq_id];
      if (int(kv.size()) != s.start_pos) {
        return absl::InternalError(absl::StrCat("seq ", s.seq_id, " starts at ", s.start_pos,
                                                " but its cache holds ", kv.size()));
      }
      kv.insert(kv.end(), s.tokens.begin(), s.tokens.end());
      if (s.want_logits) {
        std::vector<float> row(kVocab, 0.0f);
        row[size_t(NextToken(kv))] = 1.0f;
        logits.insert(logits.end(), row.begin(), row.end());
        ids.push_back(NextToken(kv));
        greedy = greedy && s.greedy;
      }
    }
    if (logits.empty()) return absl::OkStatus();
    if (argmax_ids_ && greedy) return use_logits({.logits = {}, .argmax = ids});
    return use_logits({.logits = logits, .argmax = {}});
  }
  void Free(uint64_t seq_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    kv_.erase(seq_id);
  }
  Status WaitReady(int) override { return absl::OkStatus(); }
  int vocab_size() const override { return kVocab; }
  int max_context() const override { return 4096; }

  std::mutex mu_;
  bool argmax_ids_ = false;  // return greedy steps' argmax ids, not logits
  std::map<uint64_t, std::vector<int>> kv_;
  int steps_ = 0, max_batch_ = 0, max_chunk_ = 0, fail_at_step_ = -1;
  std::chrono::microseconds step_delay_{0};
  std::shared_future<void> gate_;  // when set, every step waits for it
};

struct Collected {
  std::vector<int> tokens;
  std::string text;
  FinishReason reason = FinishReason::kNone;
  Status error;
  std::promise<void> done;
};

EventSink Collect(Collected* c) {
  return [c](const EngineEvent& e) {
    if (e.token >= 0) c->tokens.push_back(e.token);
    c->text += e.text;
    if (e.final) {
      c->reason = e.reason;
      c->error = e.error;
      c->done.set_value();
    }
  };
}

// Text of token t is "<t>".
class AngleText : public TextStream {
 public:
  std::string Push(int token) override { return "<" + std::to_string(token) + ">"; }
};

EngineRequest Req(std::vector<int> prompt, int n) {
  EngineRequest r;
  r.prompt = std::move(prompt);
  r.max_tokens = n;
  return r;
}

TEST(Engine, GreedyMatchesTheModel) {
  FakeExecutor ex;
  Engine engine({}, &ex);
  Collected c;
  ASSERT_TRUE(engine.Submit(Req({2, 5, 7}, 20), Collect(&c)).ok());
  c.done.get_future().wait();
  EXPECT_EQ(c.reason, FinishReason::kLength);
  EXPECT_EQ(c.tokens, Reference({2, 5, 7}, 20));
}

TEST(Engine, AnIdleEngineReportsNothingRunning) {
  FakeExecutor ex;
  Engine engine({}, &ex);
  Collected c;
  ASSERT_TRUE(engine.Submit(Req({2, 5, 7}, 3), Collect(&c)).ok());
  c.done.get_future().wait();
  // The loop updates its stats right after the final event; give it 2 s.
  EngineStats s;
  for (int i = 0; i < 400; ++i) {
    s = engine.GetStats();
    if (s.running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(s.running, 0);
  EXPECT_EQ(s.waiting, 0);
  EXPECT_EQ(s.requests_total, 1);
}

TEST(Engine, ConcurrentRequestsAreBatchedAndIndependent) {
  FakeExecutor ex;
  // Hold the first step until all eight are queued: on a loaded machine the
  // engine could otherwise finish one request before the next is submitted.
  std::promise<void> open;
  ex.gate_ = open.get_future().share();
  EngineOptions opt;
  opt.max_sequences = 8;
  Engine engine(opt, &ex);
  std::vector<std::unique_ptr<Collected>> cs;
  for (int i = 0; i < 8; ++i) {
    cs.push_back(std::make_unique<Collected>());
    ASSERT_TRUE(engine.Submit(Req({2, i, i * 3}, 40), Collect(cs.back().get())).ok());
  }
  open.set_value();
  for (int i = 0; i < 8; ++i) {
    cs[i]->done.get_future().wait();
    EXPECT_EQ(cs[i]->tokens, Reference({2, i, i * 3}, 40)) << i;
  }
  EXPECT_GT(ex.max_batch_, 1) << "requests should share steps";
  EXPECT_EQ(engine.GetStats().generated_tokens, 8 * 40);
}

// Seeded temperature sampling gives the same tokens whether a step's rows are
// sampled on one thread or on several: each sequence owns its RNG.
TEST(Engine, ParallelSamplingMatchesOneThread) {
  auto run = [](int threads) {
    FakeExecutor ex;
    std::promise<void> open;
    ex.gate_ = open.get_future().share();
    EngineOptions opt;
    opt.max_sequences = 8;
    opt.sample_threads = threads;
    opt.make_sampler = MakeTokenSampler;
    Engine engine(opt, &ex);
    std::vector<std::unique_ptr<Collected>> cs;
    for (int i = 0; i < 8; ++i) {
      cs.push_back(std::make_unique<Collected>());
      EngineRequest r = Req({2, i, i * 3}, 24);
      r.sampling.temperature = 0.5f;
      r.sampling.seed = 100 + uint64_t(i);
      r.sampling.has_seed = true;
      EXPECT_TRUE(engine.Submit(r, Collect(cs.back().get())).ok());
    }
    open.set_value();
    std::vector<std::vector<int>> out;
    for (auto& c : cs) {
      c->done.get_future().wait();
      out.push_back(c->tokens);
    }
    return out;
  };
  const auto one = run(1);
  EXPECT_EQ(run(4), one);
  for (size_t i = 1; i < one.size(); ++i) EXPECT_NE(one[i], one[0]) << "seeds should differ";
}

// An executor that returns greedy rows' argmax ids instead of their logits
// gives the same tokens. Ids for rows that are not greedy, or out of the
// vocabulary, fail the step with an error that says so.
TEST(Engine, GreedyRowsTakeTheExecutorsArgmaxIds) {
  FakeExecutor ex;
  ex.argmax_ids_ = true;
  {
    Engine engine({}, &ex);
    Collected c;
    ASSERT_TRUE(engine.Submit(Req({2, 5, 7}, 6), Collect(&c)).ok());
    c.done.get_future().wait();
    EXPECT_EQ(c.reason, FinishReason::kLength) << c.error;
    EXPECT_EQ(c.tokens, Reference({2, 5, 7}, 6));
  }
  struct Bad : FakeExecutor {
    int32_t id = 0;
    Status Run(std::span<const SeqStep> batch, LogitsFn use_logits) override {
      std::vector<int32_t> ids;
      for (const SeqStep& s : batch) {
        kv_[s.seq_id].insert(kv_[s.seq_id].end(), s.tokens.begin(), s.tokens.end());
        if (s.want_logits) ids.push_back(id);
      }
      return ids.empty() ? absl::OkStatus() : use_logits({.logits = {}, .argmax = ids});
    }
  };
  for (auto [id, logprobs, what] : {std::tuple{int32_t(3), true, "not all of them greedy"},
                                    {int32_t(kVocab), false, "token id"}}) {
    Bad bad;
    bad.id = id;
    EngineOptions o;
    o.make_sampler = MakeTokenSampler;
    Engine engine(o, &bad);
    EngineRequest r = Req({2, 5, 7}, 4);
    r.sampling.logprobs = logprobs;
    Collected c;
    ASSERT_TRUE(engine.Submit(std::move(r), Collect(&c)).ok());
    c.done.get_future().wait();
    EXPECT_EQ(c.reason, FinishReason::kError) << what;
    EXPECT_NE(c.error.message().find(what), std::string::npos) << c.error.message();
  }
}

// Logits that do not match the step's rows fail its requests with an error
// that says so, and the engine goes on serving.
TEST(Engine, LogitsThatDoNotMatchTheRowsFailTheStep) {
  struct Short : FakeExecutor {
    int mode = 0;  // 1: a row short, 2: no logits at all
    Status Run(std::span<const SeqStep> batch, LogitsFn use_logits) override {
      if (mode == 0) return FakeExecutor::Run(batch, use_logits);
      std::vector<float> rows(size_t(kVocab) * (batch.size() - 1));
      for (const SeqStep& s : batch)
        kv_[s.seq_id].insert(kv_[s.seq_id].end(), s.tokens.begin(), s.tokens.end());
      return mode == 1 ? use_logits({.logits = rows, .argmax = {}}) : absl::OkStatus();
    }
  } ex;
  Engine engine({}, &ex);
  for (int mode : {1, 2}) {
    ex.mode = mode;
    Collected c;
    ASSERT_TRUE(engine.Submit(Req({2, 5, 7}, 4), Collect(&c)).ok());
    c.done.get_future().wait();
    EXPECT_EQ(c.reason, FinishReason::kError) << mode;
    EXPECT_EQ(c.error.code(), absl::StatusCode::kInternal) << mode;
    EXPECT_NE(c.error.message().find(mode == 1 ? "0 logits for 1 rows" : "logits for 0 of its 1"),
              std::string::npos)
        << c.error.message();
  }
  ex.mode = 0;
  Collected ok;
  ASSERT_TRUE(engine.Submit(Req({2, 5, 7}, 4), Collect(&ok)).ok());
  ok.done.get_future().wait();
  EXPECT_EQ(ok.tokens, Reference({2, 5, 7}, 4));
}

TEST(Engine, LongPromptIsPrefilledInChunks) {
  FakeExecutor ex;
  EngineOptions opt;
  opt.max_step_tokens = 64;
  Engine engine(opt, &ex);
  std::vector<int> prompt(1000);
  for (int i = 0; i < 1000; ++i) prompt[i] = i % kVocab;
  Collected c;
  ASSERT_TRUE(engine.Submit(Req(prompt, 5), Collect(&c)).ok());
  c.done.get_future().wait();
  EXPECT_EQ(c.tokens, Reference(prompt, 5));
  EXPECT_LE(ex.max_chunk_, 64);
}

TEST(Engine, ReplayAfterWorkerLossLosesAndDuplicatesNothing) {
  for (int fail_step : {1, 2, 5, 17}) {
    FakeExecutor ex;
    ex.fail_at_step_ = fail_step;
    EngineOptions opt;
    opt.max_step_tokens = 4;  // the prompt spans several steps, so some failures hit prefill
    Engine engine(opt, &ex);
    Collected a, b;
    ASSERT_TRUE(engine.Submit(Req({2, 3, 4, 5, 6, 7}, 25), Collect(&a)).ok());
    ASSERT_TRUE(engine.Submit(Req({2, 9}, 25), Collect(&b)).ok());
    a.done.get_future().wait();
    b.done.get_future().wait();
    EXPECT_EQ(a.tokens, Reference({2, 3, 4, 5, 6, 7}, 25)) << "fail at step " << fail_step;
    EXPECT_EQ(b.tokens, Reference({2, 9}, 25)) << "fail at step " << fail_step;
    EXPECT_EQ(engine.GetStats().replays, 1);
  }
}

TEST(Engine, StopTokenAndStopStrings) {
  FakeExecutor ex;
  EngineOptions opt;
  opt.make_text_stream = [] { return std::make_unique<AngleText>(); };
  Engine engine(opt, &ex);
  std::vector<int> ref = Reference({2, 11}, 30);

  Collected by_token;
  EngineRequest r = Req({2, 11}, 30);
  r.stop_tokens = {ref[4]};
  ASSERT_TRUE(engine.Submit(r, Collect(&by_token)).ok());
  by_token.done.get_future().wait();
  EXPECT_EQ(by_token.reason, FinishReason::kStop);
  auto first = std::find(ref.begin(), ref.end(), ref[4]) - ref.begin();
  EXPECT_EQ(by_token.tokens.size(), size_t(first + 1));

  // Stop string spanning two tokens: output ends just before it.
  Collected by_string;
  EngineRequest s = Req({2, 11}, 30);
  s.stop = {"><" + std::to_string(ref[3]) + ">"};
  ASSERT_TRUE(engine.Submit(s, Collect(&by_string)).ok());
  by_string.done.get_future().wait();
  EXPECT_EQ(by_string.reason, FinishReason::kStop);
  std::string want;
  for (int i = 0; i < 3; ++i) want += "<" + std::to_string(ref[i]) + ">";
  want.pop_back();  // the stop string begins with the '>' of token 2
  EXPECT_EQ(by_string.text.substr(0, want.size()), want);
  EXPECT_EQ(by_string.text.find(s.stop[0]), std::string::npos);
}

TEST(Engine, CancelQueueLimitAndBadRequests) {
  FakeExecutor ex;
  EngineOptions opt;
  opt.max_sequences = 1;
  opt.max_queue = 1;
  Engine engine(opt, &ex);
  Collected running, queued;
  auto id = engine.Submit(Req({2}, 100000), Collect(&running));
  ASSERT_TRUE(id.ok());
  // Wait until it runs, so the queue is empty again.
  while (engine.GetStats().running == 0) std::this_thread::yield();
  ASSERT_TRUE(engine.Submit(Req({2}, 10), Collect(&queued)).ok());
  Collected rejected;
  auto full = engine.Submit(Req({2}, 10), Collect(&rejected));
  EXPECT_EQ(full.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(engine.Cancel(*id));
  running.done.get_future().wait();
  EXPECT_EQ(running.reason, FinishReason::kCancelled);
  queued.done.get_future().wait();
  EXPECT_EQ(queued.reason, FinishReason::kLength);
  EXPECT_FALSE(engine.Cancel(*id)) << "already finished";

  EXPECT_EQ(engine.Submit(Req({}, 10), Collect(&rejected)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.Submit(Req(std::vector<int>(5000, 1), 10), Collect(&rejected)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(Engine, DeadlineEndsARequestWithAnError) {
  FakeExecutor ex;
  ex.step_delay_ = std::chrono::milliseconds(1);  // 4096 steps take longer than the deadline
  Engine engine({}, &ex);
  Collected c;
  EngineRequest r = Req({2}, 1000000);
  r.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(20);
  ASSERT_TRUE(engine.Submit(r, Collect(&c)).ok());
  c.done.get_future().wait();
  EXPECT_EQ(c.reason, FinishReason::kError);
  EXPECT_EQ(c.error.code(), absl::StatusCode::kDeadlineExceeded);
}

// Images: a fake vision tower whose embedding rows are (image value, row),
// hidden 2. It records every step's image rows to check what the engine
// hands the executor.
constexpr int kImageToken = 96;
constexpr int kImageTokens = 6;

class VisionExecutor : public FakeExecutor {
 public:
  Status EncodeImage(std::span<const float> pixels, std::vector<float>* embeds) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++encodes_;
    for (int r = 0; r < kImageTokens; ++r) {
      embeds->push_back(pixels[0]);
      embeds->push_back(float(r));
    }
    return absl::OkStatus();
  }
  Status Run(std::span<const SeqStep> batch, LogitsFn use_logits) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const SeqStep& s : batch) {
        steps_seen_.push_back({s.start_pos, std::vector<int>(s.tokens.begin(), s.tokens.end()),
                               s.image_rows,
                               std::vector<float>(s.image_embeds.begin(), s.image_embeds.end())});
      }
    }
    return FakeExecutor::Run(batch, use_logits);
  }
  struct Seen {
    int start;
    std::vector<int> tokens;
    int image_rows;
    std::vector<float> embeds;
  };
  std::vector<Seen> steps_seen_;
  int encodes_ = 0;
};

// Text, an image, text, an image, text: each image is a run of 6 tokens.
std::vector<int> ImagePrompt() {
  std::vector<int> p = {2, 3, 4, 5};
  p.insert(p.end(), kImageTokens, kImageToken);
  p.insert(p.end(), {7, 8});
  p.insert(p.end(), kImageTokens, kImageToken);
  p.push_back(9);
  return p;
}

EngineRequest ImageReq(int n) {
  EngineRequest r = Req(ImagePrompt(), n);
  r.images = {{10.0f}, {20.0f}};  // "pixels": the fake tower tags rows with them
  return r;
}

// Checks every prefill step of the image prompt: no step ends inside an
// image run, and each step's image rows are the right images' rows, in order.
void CheckImageSteps(const VisionExecutor& ex) {
  const std::vector<int> prompt = ImagePrompt();
  const int P = int(prompt.size());
  auto is_image = [&](int pos) {
    return pos >= 0 && pos < P && prompt[size_t(pos)] == kImageToken;
  };
  int prefill_steps = 0;
  for (const auto& s : ex.steps_seen_) {
    if (s.start >= P) continue;
    ++prefill_steps;
    const int end = s.start + int(s.tokens.size());
    EXPECT_FALSE(is_image(end - 1) && is_image(end)) << "a step ends inside an image at " << end;
    EXPECT_FALSE(is_image(s.start - 1) && is_image(s.start)) << "a step starts inside an image";
    int rows = 0;
    for (int p = s.start; p < std::min(end, P); ++p) {
      if (!is_image(p)) continue;
      // The image of position p: the first run is image 10, the second 20.
      const float image = p < 10 ? 10.0f : 20.0f;
      ASSERT_LT(size_t(2 * rows + 1), s.embeds.size());
      EXPECT_EQ(s.embeds[size_t(2 * rows)], image) << "position " << p;
      EXPECT_EQ(s.embeds[size_t(2 * rows + 1)], float((p - 4) % 8 % kImageTokens)) << p;
      ++rows;
    }
    EXPECT_EQ(s.image_rows, rows) << "step at " << s.start;
    EXPECT_EQ(s.embeds.size(), size_t(2 * rows));
  }
  EXPECT_GE(prefill_steps, 3);  // 8 tokens per step: the prompt of 19 needs 3 at least
}

TEST(EngineImages, ImageRunsAreNeverSplitAndCarryTheirEmbeddings) {
  VisionExecutor ex;
  EngineOptions o;
  o.max_step_tokens = 8;
  o.image_token_id = kImageToken;
  Engine engine(o, &ex);
  Collected c;
  ASSERT_TRUE(engine.Submit(ImageReq(12), Collect(&c)).ok());
  c.done.get_future().wait();
  EXPECT_EQ(c.reason, FinishReason::kLength) << c.error;
  EXPECT_EQ(c.tokens, Reference(ImagePrompt(), 12));
  EXPECT_EQ(ex.encodes_, 2);
  CheckImageSteps(ex);
  // The first step stops before the first image (4 of 8 tokens): the image
  // (6) would not fit behind them.
  ASSERT_FALSE(ex.steps_seen_.empty());
  EXPECT_EQ(ex.steps_seen_[0].tokens.size(), 4u);
}

TEST(EngineImages, ReplayReusesTheEmbeddingsWithoutTheVisionTower) {
  VisionExecutor ex;
  ex.fail_at_step_ = 3;  // after the first image's step: every cache is lost
  EngineOptions o;
  o.max_step_tokens = 8;
  o.image_token_id = kImageToken;
  Engine engine(o, &ex);
  Collected c;
  ASSERT_TRUE(engine.Submit(ImageReq(12), Collect(&c)).ok());
  c.done.get_future().wait();
  EXPECT_EQ(c.reason, FinishReason::kLength) << c.error;
  EXPECT_EQ(c.tokens, Reference(ImagePrompt(), 12));
  EXPECT_EQ(ex.encodes_, 2) << "the replay ran the vision tower again";
  CheckImageSteps(ex);
  EXPECT_EQ(engine.GetStats().replays, 1);
}

TEST(EngineImages, ImpossibleImageRequestsAreRefusedAtSubmit) {
  VisionExecutor ex;
  EngineOptions o;
  o.max_step_tokens = 5;  // an image of 6 tokens never fits a step
  o.image_token_id = kImageToken;
  Engine engine(o, &ex);
  Collected c;
  auto r = engine.Submit(ImageReq(4), Collect(&c));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("max_step_tokens"), std::string::npos) << r.status();
  EngineRequest one = ImageReq(4);
  one.images.pop_back();  // two runs of image tokens, one image
  o.max_step_tokens = 8;
  Engine engine2(o, &ex);
  r = engine2.Submit(one, Collect(&c));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("2 runs of image tokens for 1 images"), std::string::npos)
      << r.status();
}

}  // namespace
}  // namespace unicorn
