#include "coordinator/engine.h"

#include <algorithm>

#include "common/log.h"
#include "model/sampler.h"

namespace unicorn {

struct Engine::Sequence {
  uint64_t id = 0;
  EngineRequest req;
  EventSink sink;
  std::vector<int> tokens;  // prompt + generated
  int prompt_len = 0;
  int kv_len = 0;  // tokens held in the workers' KV caches
  int generated = 0;
  std::unique_ptr<TokenSampler> sampler;
  std::unique_ptr<TextStream> text;
  std::unique_ptr<StopMatcher> stop;  // EOS ids and stop strings; holds back text
  bool done = false;
};

namespace {

// Greedy pick, used when no sampler factory is configured.
class ArgmaxSampler final : public TokenSampler {
 public:
  int Sample(std::span<const float> logits, std::span<const int>, float* logprob) override {
    int best = int(std::max_element(logits.begin(), logits.end()) - logits.begin());
    *logprob = 0;
    return best;
  }
};

}  // namespace

Engine::Engine(EngineOptions options, StepExecutor* executor)
    : options_(std::move(options)), executor_(executor) {
  thread_ = std::thread([this] { Loop(); });
}

Engine::~Engine() { Stop(); }

void Engine::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

StatusOr<uint64_t> Engine::Submit(EngineRequest request, EventSink sink) {
  if (request.prompt.empty()) return absl::InvalidArgumentError("[engine] empty prompt");
  int ctx = executor_->max_context();
  if (int(request.prompt.size()) >= ctx) {
    return absl::InvalidArgumentError(absl::StrCat("[engine] prompt of ", request.prompt.size(),
                                                   " tokens does not fit the context of ", ctx));
  }
  if (request.max_tokens <= 0) return absl::InvalidArgumentError("[engine] max_tokens must be > 0");
  for (const auto& s : request.stop) {
    if (s.empty()) return absl::InvalidArgumentError("[engine] empty stop string");
  }
  auto seq = std::make_unique<Sequence>();
  seq->req = std::move(request);
  seq->sink = std::move(sink);
  seq->tokens = seq->req.prompt;
  seq->prompt_len = int(seq->tokens.size());
  seq->sampler = options_.make_sampler ? options_.make_sampler(seq->req.sampling)
                                       : std::make_unique<ArgmaxSampler>();
  if (options_.make_text_stream) seq->text = options_.make_text_stream();
  seq->stop = std::make_unique<StopMatcher>(seq->req.stop_tokens, seq->req.stop);
  uint64_t id;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return absl::UnavailableError("[engine] stopping");
    if (int(queue_.size()) >= options_.max_queue) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "[engine] request queue full (", options_.max_queue, " waiting); retry later"));
    }
    id = next_id_++;
    seq->id = id;
    live_.insert(id);
    stats_.prompt_tokens += seq->prompt_len;
    queue_.push_back(std::move(seq));
    ++stats_.requests_total;
    stats_.waiting = int(queue_.size());
  }
  cv_.notify_all();
  return id;
}

bool Engine::Cancel(uint64_t request_id) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!live_.count(request_id) || cancelled_.count(request_id)) return false;
  cancelled_.insert(request_id);
  cv_.notify_all();
  return true;
}

EngineStats Engine::GetStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void Engine::Finish(Sequence& s, FinishReason reason, Status error) {
  if (s.done) return;
  s.done = true;
  {
    std::lock_guard<std::mutex> lock(mu_);
    live_.erase(s.id);
    cancelled_.erase(s.id);
  }
  EngineEvent e;
  e.request_id = s.id;
  e.final = true;
  e.reason = reason;
  e.error = std::move(error);
  if (reason == FinishReason::kLength) e.text = s.stop->Flush();  // nothing more can match
  e.prompt_tokens = s.prompt_len;
  e.completion_tokens = s.generated;
  s.sink(e);
  executor_->Free(s.id);
}

void Engine::Emit(Sequence& s, int token, float logprob) {
  ++s.generated;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.generated_tokens;
  }
  s.tokens.push_back(token);
  EngineEvent e;
  e.request_id = s.id;
  e.token = token;
  e.logprob = logprob;
  e.prompt_tokens = s.prompt_len;
  e.completion_tokens = s.generated;
  // An EOS token ends the output without text; a stop string ends it just
  // before the string (StopMatcher holds back what may begin one).
  bool stop_token = s.stop->IsEos(token);
  e.text = s.stop->Feed(!stop_token && s.text ? s.text->Push(token) : std::string());
  s.sink(e);
  if (stop_token || s.stop->stopped()) {
    Finish(s, FinishReason::kStop);
  } else if (s.generated >= s.req.max_tokens || int(s.tokens.size()) >= executor_->max_context()) {
    Finish(s, FinishReason::kLength);
  }
}

void Engine::Admit(std::vector<std::unique_ptr<Sequence>>& running) {
  // Caller holds mu_.
  while (int(running.size()) < options_.max_sequences && !queue_.empty()) {
    running.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

void Engine::Replay(std::vector<std::unique_ptr<Sequence>>& running) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.replays;
  }
  LOG_WARN("[engine] a worker was lost: rebuilding {} sequences once it is back", running.size());
  for (auto& s : running) {
    s->kv_len = 0;
    executor_->Free(s->id);
  }
  Status ready = executor_->WaitReady(options_.replay_wait_ms);
  if (!ready.ok()) {
    for (auto& s : running) {
      Finish(*s, FinishReason::kError,
             absl::UnavailableError(absl::StrCat(
                 "[engine] a worker was lost and did not come back: ", ready.message())));
    }
  }
}

void Engine::Loop() {
  std::vector<std::unique_ptr<Sequence>> running;
  std::vector<SeqStep> batch;
  std::vector<Sequence*> batch_seqs;
  std::vector<float> logits;
  while (true) {
    std::vector<uint64_t> cancels;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stop_ || !queue_.empty() || !running.empty(); });
      if (stop_) break;
      Admit(running);
      // Cancellations of queued requests are handled when they are admitted.
      for (auto& s : running) {
        if (cancelled_.count(s->id)) cancels.push_back(s->id);
      }
    }
    auto now = std::chrono::steady_clock::now();
    for (auto& s : running) {
      if (std::find(cancels.begin(), cancels.end(), s->id) != cancels.end()) {
        Finish(*s, FinishReason::kCancelled);
      } else if (now > s->req.deadline) {
        Finish(*s, FinishReason::kError,
               absl::DeadlineExceededError(
                   absl::StrCat("[engine] deadline passed after ", s->generated, " tokens")));
      }
    }
    running.erase(std::remove_if(running.begin(), running.end(), [](auto& s) { return s->done; }),
                  running.end());
    {
      std::lock_guard<std::mutex> lock(mu_);
      stats_.running = int(running.size());
      stats_.waiting = int(queue_.size());
    }
    if (running.empty()) continue;

    // Decoding sequences first (one token each), then prefill chunks within the budget.
    std::stable_sort(running.begin(), running.end(), [](const auto& a, const auto& b) {
      return (a->tokens.size() - a->kv_len == 1) > (b->tokens.size() - b->kv_len == 1);
    });
    batch.clear();
    batch_seqs.clear();
    int budget = options_.max_step_tokens;
    for (auto& s : running) {
      int pending = int(s->tokens.size()) - s->kv_len;
      int n = std::min(pending, std::max(1, budget));
      if (budget <= 0 && pending > 1) continue;  // prefill waits for the next step
      budget -= n;
      SeqStep step;
      step.seq_id = s->id;
      step.start_pos = s->kv_len;
      step.tokens = std::span<const int>(s->tokens).subspan(size_t(s->kv_len), size_t(n));
      step.want_logits = s->kv_len + n == int(s->tokens.size());
      batch.push_back(step);
      batch_seqs.push_back(s.get());
    }
    Status st = executor_->Run(batch, &logits);
    if (absl::IsUnavailable(st)) {
      Replay(running);
      running.erase(std::remove_if(running.begin(), running.end(), [](auto& s) { return s->done; }),
                    running.end());
      continue;
    }
    if (!st.ok()) {
      for (Sequence* s : batch_seqs) Finish(*s, FinishReason::kError, st);
    } else {
      int vocab = executor_->vocab_size();
      size_t row = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        Sequence& s = *batch_seqs[i];
        s.kv_len += int(batch[i].tokens.size());
        if (!batch[i].want_logits) continue;
        std::span<const float> row_logits(logits.data() + row * size_t(vocab), size_t(vocab));
        ++row;
        float logprob = 0;
        int token = s.sampler->Sample(row_logits, s.tokens, &logprob);
        Emit(s, token, logprob);
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.steps;
    }
    running.erase(std::remove_if(running.begin(), running.end(), [](auto& s) { return s->done; }),
                  running.end());
    // Before the loop may sleep: an idle engine reports 0 running.
    std::lock_guard<std::mutex> lock(mu_);
    stats_.running = int(running.size());
  }
  // Stopping: nobody is left waiting without an answer.
  Status gone = absl::UnavailableError("[engine] coordinator stopping");
  std::deque<std::unique_ptr<Sequence>> queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued.swap(queue_);
  }
  for (auto& s : running) Finish(*s, FinishReason::kError, gone);
  for (auto& s : queued) Finish(*s, FinishReason::kError, gone);
}

}  // namespace unicorn
