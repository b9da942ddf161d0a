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
  bool greedy = false;  // the sampler picks the argmax of the raw logits
  std::unique_ptr<TextStream> text;
  std::unique_ptr<StopMatcher> stop;  // EOS ids and stop strings; holds back text
  bool done = false;
  bool traced = false;  // sampled for tracing: every step it runs in is traced
  // Images: image_before[i] = image tokens of the prompt before position i
  // (size prompt_len + 1; empty without images), their embeddings
  // [image tokens, hidden] once the vision tower ran (kept for replays), and
  // whether the next step must make room for a run of image tokens.
  std::vector<int> image_before;
  std::vector<float> image_embeds;
  size_t image_row_floats = 0;  // hidden
  bool embedded = false;
  bool image_waits = false;
  bool IsImage(int pos) const {
    return pos < prompt_len && !image_before.empty() &&
           image_before[size_t(pos) + 1] > image_before[size_t(pos)];
  }
  // trace::NowNs() of: Submit, first step, first token, last token.
  int64_t submit_ns = 0, admit_ns = 0, first_token_ns = 0, last_token_ns = 0;
};

namespace {

// Greedy pick, used when no sampler factory is configured.
class ArgmaxSampler final : public TokenSampler {
 public:
  int Sample(std::span<const float> logits, std::span<const int>, float* logprob) override {
    *logprob = 0;
    return Argmax(logits);
  }
};

}  // namespace

Engine::Engine(EngineOptions options, StepExecutor* executor)
    : options_(std::move(options)), executor_(executor) {
  int threads = options_.sample_threads;
  if (threads <= 0) threads = std::clamp(int(std::thread::hardware_concurrency()), 1, 8);
  // Workers sleep as soon as a step's rows are done: the device workers may
  // need the cores until the next step.
  sample_pool_ = std::make_unique<ThreadPool>(threads, std::chrono::microseconds(0));
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
  std::vector<int> image_before;
  if (!request.images.empty()) {
    // One run of image tokens per image, each within one step.
    if (options_.image_token_id < 0) {
      return absl::InvalidArgumentError("[engine] this model takes no images");
    }
    const std::vector<int>& p = request.prompt;
    image_before.assign(p.size() + 1, 0);
    int runs = 0, run = 0, longest = 0;
    for (size_t i = 0; i < p.size(); ++i) {
      const bool image = p[i] == options_.image_token_id;
      image_before[i + 1] = image_before[i] + (image ? 1 : 0);
      run = image ? run + 1 : 0;
      runs += run == 1 ? 1 : 0;
      longest = std::max(longest, run);
    }
    if (runs != int(request.images.size())) {
      return absl::InvalidArgumentError(absl::StrCat("[engine] the prompt has ", runs,
                                                     " runs of image tokens for ",
                                                     request.images.size(), " images"));
    }
    if (longest > options_.max_step_tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("[engine] an image takes ", longest,
                       " tokens, more than one step holds (max_step_tokens ",
                       options_.max_step_tokens, "): raise coordinator.max_step_tokens"));
    }
  }
  auto seq = std::make_unique<Sequence>();
  seq->req = std::move(request);
  seq->sink = std::move(sink);
  seq->tokens = seq->req.prompt;
  seq->prompt_len = int(seq->tokens.size());
  seq->image_before = std::move(image_before);
  seq->embedded = seq->req.images.empty();
  seq->sampler = options_.make_sampler ? options_.make_sampler(seq->req.sampling)
                                       : std::make_unique<ArgmaxSampler>();
  // Greedy rows may take the executor's argmax ids (make_sampler's contract);
  // log-probabilities need the logits.
  const SamplingOptions& so = seq->req.sampling;
  seq->greedy =
      !options_.make_sampler || (so.temperature <= 0 && so.repetition_penalty == 1 && !so.logprobs);
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
    seq->submit_ns = trace::NowNs();
    if (options_.trace_ring != nullptr && options_.trace_requests > 0) {
      // xorshift64: a cheap, deterministic-enough coin for sampling.
      sample_state_ ^= sample_state_ << 13;
      sample_state_ ^= sample_state_ >> 7;
      sample_state_ ^= sample_state_ << 17;
      seq->traced = double(sample_state_ >> 11) * 0x1.0p-53 < options_.trace_requests;
    }
    seq->traced |= seq->req.trace && options_.trace_ring != nullptr;
    live_.insert(id);
    stats_.prompt_tokens += seq->prompt_len;
    queue_.push_back(std::move(seq));
    ++stats_.requests_total;
    stats_.waiting = int(queue_.size());
  }
  cv_.notify_all();
  return id;
}

void Engine::Trace(trace::Kind kind, int64_t start, int64_t end, uint64_t request, uint64_t step) {
  if (options_.trace_ring == nullptr) return;
  trace::Span s;
  s.kind = kind;
  s.start_ns = start;
  s.end_ns = end;
  s.request_id = request;
  s.step = step;
  options_.trace_ring->Add(s);
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
  if (options_.on_finish) {
    int64_t now = trace::NowNs();
    RequestTimes t;
    int64_t admitted = s.admit_ns ? s.admit_ns : now;
    t.queue = double(admitted - s.submit_ns) * 1e-9;
    t.e2e = double(now - s.submit_ns) * 1e-9;
    t.has_first_token = s.first_token_ns != 0;
    if (t.has_first_token) {
      t.prefill = double(s.first_token_ns - admitted) * 1e-9;
      t.decode = double(now - s.first_token_ns) * 1e-9;
    }
    options_.on_finish(t);
  }
}

void Engine::Emit(Sequence& s, int token, float logprob) {
  ++s.generated;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.generated_tokens;
  }
  s.tokens.push_back(token);
  int64_t now = trace::NowNs();
  if (options_.on_token) {
    bool first = s.first_token_ns == 0;
    options_.on_token(first, double(now - (first ? s.submit_ns : s.last_token_ns)) * 1e-9);
  }
  if (s.first_token_ns == 0) s.first_token_ns = now;
  s.last_token_ns = now;
  trace::ScopedSpan span(trace::Kind::kStream, -1, s.id);
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
    Sequence& s = *queue_.front();
    s.admit_ns = trace::NowNs();
    if (s.traced) {
      if (s.req.tokenize_start_ns != 0) {
        Trace(trace::Kind::kTokenize, s.req.tokenize_start_ns, s.req.tokenize_end_ns, s.id, 0);
      }
      if (s.req.preprocess_start_ns != 0) {
        Trace(trace::Kind::kImagePreprocess, s.req.preprocess_start_ns, s.req.preprocess_end_ns,
              s.id, 0);
      }
      Trace(trace::Kind::kQueue, s.submit_ns, s.admit_ns, s.id, 0);
    }
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

Status Engine::EmbedImages(std::vector<std::unique_ptr<Sequence>>& running) {
  for (auto& s : running) {
    if (s->embedded || s->done) continue;
    std::vector<float> embeds;
    Status st;
    for (const std::vector<float>& pixels : s->req.images) {
      st = executor_->EncodeImage(pixels, &embeds);
      if (!st.ok()) break;
    }
    if (absl::IsUnavailable(st)) return st;  // the images run again after the replay
    const int image_tokens = s->image_before.back();
    if (st.ok() && (image_tokens == 0 || embeds.size() % size_t(image_tokens) != 0)) {
      st = absl::InternalError(absl::StrCat("[engine] ", embeds.size(),
                                            " floats of image embeddings for ", image_tokens,
                                            " image tokens"));
    }
    if (!st.ok()) {
      Finish(*s, FinishReason::kError, st);
      continue;
    }
    s->image_embeds = std::move(embeds);
    s->image_row_floats = s->image_embeds.size() / size_t(image_tokens);
    s->embedded = true;
    s->req.images.clear();  // the embeddings are what a replay needs
    s->req.images.shrink_to_fit();
  }
  return absl::OkStatus();
}

Status Engine::SampleRows(std::span<const SeqStep> batch, std::span<Sequence* const> seqs,
                          const StepLogits& out, bool timed, std::vector<Pick>* picks) {
  sample_rows_.clear();
  bool greedy = true;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (!batch[i].want_logits) continue;
    sample_rows_.push_back(seqs[i]);
    greedy = greedy && batch[i].greedy;
  }
  const size_t vocab = size_t(executor_->vocab_size());
  if (!out.argmax.empty()) {
    if (!greedy || out.argmax.size() != sample_rows_.size()) {
      return absl::InternalError(absl::StrCat("[engine] the step returned ", out.argmax.size(),
                                              " argmax ids for ", sample_rows_.size(), " rows",
                                              greedy ? "" : ", not all of them greedy"));
    }
    picks->assign(sample_rows_.size(), Pick{});
    for (size_t r = 0; r < out.argmax.size(); ++r) {
      if (out.argmax[r] < 0 || size_t(out.argmax[r]) >= vocab) {
        return absl::InternalError(absl::StrCat("[engine] the step returned token id ",
                                                out.argmax[r], " of a vocabulary of ", vocab));
      }
      (*picks)[r].token = out.argmax[r];
      if (timed) (*picks)[r].start_ns = (*picks)[r].end_ns = trace::NowNs();
    }
    return absl::OkStatus();
  }
  const std::span<const float> logits = out.logits;
  if (logits.size() != sample_rows_.size() * vocab) {
    return absl::InternalError(absl::StrCat("[engine] the step returned ", logits.size(),
                                            " logits for ", sample_rows_.size(),
                                            " rows of vocabulary ", vocab));
  }
  picks->resize(sample_rows_.size());
  // Each sequence has its own sampler (and RNG): rows are independent.
  sample_pool_->Run(int(sample_rows_.size()), [&](int r, int) {
    Pick& p = (*picks)[size_t(r)];
    const Sequence& s = *sample_rows_[size_t(r)];
    if (timed) p.start_ns = trace::NowNs();
    p.token = s.sampler->Sample(logits.subspan(size_t(r) * vocab, vocab), s.tokens, &p.logprob);
    if (timed) p.end_ns = trace::NowNs();
  });
  return absl::OkStatus();
}

int Engine::ChunkWithoutSplit(const Sequence& s, int budget) {
  const int pending = int(s.tokens.size()) - s.kv_len;
  int end = s.kv_len + std::min(pending, budget);
  // A cut between two image tokens moves back to the start of their run.
  while (end > s.kv_len && end < int(s.tokens.size()) && s.IsImage(end) && s.IsImage(end - 1)) {
    --end;
  }
  return end - s.kv_len;
}

void Engine::Loop() {
  std::vector<std::unique_ptr<Sequence>> running;
  std::vector<SeqStep> batch;
  std::vector<Sequence*> batch_seqs;
  std::vector<Pick> picks;
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

    // Tracing: this step is traced if its number says so or it runs a sampled request.
    const uint64_t step = ++step_;
    const int64_t step_start = trace::NowNs();
    bool traced = options_.trace_ring != nullptr &&
                  ((options_.trace_every_n_steps > 0 && step % options_.trace_every_n_steps == 0) ||
                   std::any_of(running.begin(), running.end(), [](auto& s) { return s->traced; }));
    trace::StepScope scope(traced ? options_.trace_ring : nullptr, step);

    // Images of newly admitted requests through the vision tower, in this
    // step's trace (their first step).
    if (Status vs = EmbedImages(running); absl::IsUnavailable(vs)) {
      Replay(running);
      running.erase(std::remove_if(running.begin(), running.end(), [](auto& s) { return s->done; }),
                    running.end());
      continue;
    }
    running.erase(std::remove_if(running.begin(), running.end(), [](auto& s) { return s->done; }),
                  running.end());
    if (running.empty()) continue;

    // Decoding sequences first (one token each), then prefill chunks within
    // the budget. A prefill whose next run of image tokens did not fit the
    // last step's budget goes first instead, with decoders waiting one step,
    // so that the run (at most max_step_tokens) always gets its step.
    const bool image_first =
        std::any_of(running.begin(), running.end(), [](auto& s) { return s->image_waits; });
    std::stable_sort(running.begin(), running.end(), [&](const auto& a, const auto& b) {
      if (image_first) return a->image_waits > b->image_waits;
      return (a->tokens.size() - a->kv_len == 1) > (b->tokens.size() - b->kv_len == 1);
    });
    batch.clear();
    batch_seqs.clear();
    int budget = options_.max_step_tokens;
    for (auto& s : running) {
      int pending = int(s->tokens.size()) - s->kv_len;
      if (image_first && pending == 1) continue;  // decoders wait one step
      if (budget <= 0 && pending > 1) continue;   // prefill waits for the next step
      int n = ChunkWithoutSplit(*s, std::max(1, budget));
      if (n == 0) {  // the run of image tokens at kv_len needs a step of its own
        s->image_waits = true;
        continue;
      }
      s->image_waits = false;
      budget -= n;
      SeqStep step;
      step.seq_id = s->id;
      step.start_pos = s->kv_len;
      step.tokens = std::span<const int>(s->tokens).subspan(size_t(s->kv_len), size_t(n));
      step.want_logits = s->kv_len + n == int(s->tokens.size());
      step.greedy = s->greedy;
      if (!s->image_before.empty() && s->kv_len < s->prompt_len) {
        const int first = s->image_before[size_t(s->kv_len)];
        const int last = s->image_before[size_t(std::min(s->kv_len + n, s->prompt_len))];
        step.image_rows = last - first;
        step.image_embeds = std::span<const float>(s->image_embeds)
                                .subspan(size_t(first) * s->image_row_floats,
                                         size_t(last - first) * s->image_row_floats);
      }
      batch.push_back(step);
      batch_seqs.push_back(s.get());
    }
    trace::Record(trace::Kind::kSchedule, step_start, trace::NowNs());
    if (batch.empty()) continue;  // nothing fits (cannot happen: see image_first)
    picks.clear();
    Status st = executor_->Run(batch, [&](const StepLogits& out) {
      return SampleRows(batch, batch_seqs, out, traced, &picks);
    });
    if (absl::IsUnavailable(st)) {
      Replay(running);
      running.erase(std::remove_if(running.begin(), running.end(), [](auto& s) { return s->done; }),
                    running.end());
      continue;
    }
    const size_t want_rows = size_t(
        std::count_if(batch.begin(), batch.end(), [](const SeqStep& b) { return b.want_logits; }));
    if (st.ok() && picks.size() != want_rows) {
      st = absl::InternalError(absl::StrCat("[engine] the step gave logits for ", picks.size(),
                                            " of its ", want_rows, " rows"));
    }
    if (!st.ok()) {
      for (Sequence* s : batch_seqs) Finish(*s, FinishReason::kError, st);
    } else {
      size_t row = 0;
      for (size_t i = 0; i < batch.size(); ++i) {
        Sequence& s = *batch_seqs[i];
        s.kv_len += int(batch[i].tokens.size());
        if (!batch[i].want_logits) continue;
        const Pick& p = picks[row++];
        if (traced) trace::Record(trace::Kind::kSample, p.start_ns, p.end_ns, s.id);
        Emit(s, p.token, p.logprob);
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.steps;
    }
    if (traced) {
      int64_t step_end = trace::NowNs();
      trace::Record(trace::Kind::kStep, step_start, step_end);
      for (Sequence* s : batch_seqs) {
        trace::Record(trace::Kind::kInStep, step_start, step_end, s->id);
      }
    }
    running.erase(std::remove_if(running.begin(), running.end(), [](auto& s) { return s->done; }),
                  running.end());
    // Counted again here so that an idle engine does not report its last
    // finished requests as running while it waits for work.
    int64_t kv = 0;
    for (auto& s : running) kv += s->kv_len;
    std::lock_guard<std::mutex> lock(mu_);
    stats_.running = int(running.size());
    stats_.waiting = int(queue_.size());
    stats_.kv_tokens = kv;
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
