// The coordinator's engine loop: a request queue, continuous batching (new
// requests join between steps), chunked prefill, sampling, stop conditions,
// cancellation and deadlines, and replay after a worker loss.
//
// Each sequence remembers every token it has (prompt + generated) and how many
// of them are in the workers' KV caches (kv_len). A step feeds each sequence
// its tokens [kv_len, end); prefill, chunked prefill, decode and replay are the
// same code path. When the executor loses a worker, every running sequence is
// reset to kv_len = 0 and replayed once the worker is back: tokens already
// streamed are never sent again, and sampling continues from the same RNG
// state, which lives here.
//
// Thread-safe: Submit/Cancel/GetStats from any thread; events are delivered on
// the engine thread, in order, and sinks must not block.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "common/thread_pool.h"
#include "common/trace.h"
#include "coordinator/step_executor.h"

namespace unicorn {

enum class FinishReason { kNone, kLength, kStop, kCancelled, kError };

struct SamplingOptions {
  float temperature = 0;  // 0 = greedy
  int top_k = 0;
  float top_p = 1;
  float min_p = 0;
  float repetition_penalty = 1;
  uint64_t seed = 0;
  bool has_seed = false;
  bool logprobs = false;  // the sampler sets each token's log-probability (else 0)
};

// Picks the next token. One instance per sequence: it owns that sequence's RNG.
class TokenSampler {
 public:
  virtual ~TokenSampler() = default;
  // `history` is every token of the sequence so far. Sets *logprob (0 when
  // the request did not ask for log-probabilities).
  virtual int Sample(std::span<const float> logits, std::span<const int> history,
                     float* logprob) = 0;
};

// Turns generated tokens into text incrementally (complete UTF-8 only).
class TextStream {
 public:
  virtual ~TextStream() = default;
  virtual std::string Push(int token) = 0;
};

struct EngineEvent {
  uint64_t request_id = 0;
  int token = -1;    // -1 on the final event
  std::string text;  // text made visible by this event (may be empty)
  float logprob = 0;
  bool final = false;
  FinishReason reason = FinishReason::kNone;
  Status error;  // set when reason == kError
  int prompt_tokens = 0;
  int completion_tokens = 0;
};
using EventSink = std::function<void(const EngineEvent&)>;

struct EngineRequest {
  std::vector<int> prompt;
  int max_tokens = 256;
  SamplingOptions sampling;
  std::vector<std::string> stop;  // stop strings (not included in the output)
  std::vector<int> stop_tokens;   // e.g. <eos>, <end_of_turn>
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
  // When the prompt text was turned into ids (trace::NowNs; 0 = not timed).
  int64_t tokenize_start_ns = 0, tokenize_end_ns = 0;
  bool trace = false;  // trace it whatever the sampling (needs EngineOptions::trace_ring)
  // Images, in prompt order: pixel_values [3, image_size, image_size] each
  // (model/image.h), one per run of image tokens in the prompt. The engine
  // runs them through the vision tower when the request is admitted and keeps
  // the embeddings (not the pixels) for replays.
  std::vector<std::vector<float>> images;
  int64_t preprocess_start_ns = 0, preprocess_end_ns = 0;  // decoding them (0 = not timed)
};

// How long a finished request spent where (seconds), for metrics.
struct RequestTimes {
  double queue = 0;    // submitted -> first step
  double prefill = 0;  // first step -> first token
  double decode = 0;   // first token -> finished
  double e2e = 0;      // submitted -> finished
  bool has_first_token = false;
};

struct EngineOptions {
  int max_sequences = 16;      // running together
  int max_queue = 256;         // waiting beyond that: RESOURCE_EXHAUSTED
  int max_step_tokens = 512;   // prefill chunk budget per step, over all sequences
  int replay_wait_ms = 60000;  // how long to wait for a lost worker to come back
  int image_token_id = -1;     // the model's <image_soft_token> (-1: no images)
  // Threads that sample a step's rows in parallel (0: the cores, at most 8);
  // between steps they sleep.
  int sample_threads = 0;
  // A sampler per request (default: the argmax). At temperature 0 with no
  // repetition penalty it must pick the argmax of the raw logits (as
  // MakeTokenSampler does): such rows may get the executor's argmax ids
  // instead of logits (SeqStep::greedy).
  std::function<std::unique_ptr<TokenSampler>(const SamplingOptions&)> make_sampler;
  std::function<std::unique_ptr<TextStream>()> make_text_stream;
  // Tracing (common/trace.h): spans go to `trace_ring` (null = off). A step is
  // traced when its number is a multiple of trace_every_n_steps (0 = never)
  // or when it runs a request sampled with probability trace_requests.
  trace::Ring* trace_ring = nullptr;
  int trace_every_n_steps = 0;
  double trace_requests = 0;
  // Metrics hooks, called on the engine thread (must not block).
  std::function<void(bool first, double seconds)> on_token;  // TTFT if first, else inter-token
  std::function<void(const RequestTimes&)> on_finish;
};

struct EngineStats {
  int64_t requests_total = 0;
  int running = 0;
  int waiting = 0;
  int64_t prompt_tokens = 0;
  int64_t generated_tokens = 0;
  int64_t replays = 0;  // times running sequences were rebuilt after a worker loss
  int64_t steps = 0;
  int64_t kv_tokens = 0;  // tokens held in the workers' KV caches, all running sequences
};

class Engine {
 public:
  Engine(EngineOptions options, StepExecutor* executor);
  ~Engine();  // Stop()

  // Stops the loop: every unfinished request gets a final Unavailable event,
  // and Submit() answers Unavailable from now on. Idempotent. The coordinator
  // calls it before closing its gRPC server, so open streams end with
  // UNAVAILABLE (retry elsewhere or later) rather than a cancellation.
  void Stop();

  // Queues a request; returns its id. RESOURCE_EXHAUSTED when the queue is
  // full, INVALID_ARGUMENT for a request that can never run (empty prompt,
  // longer than the context, images that do not match the prompt's image
  // tokens, an image's tokens longer than max_step_tokens).
  StatusOr<uint64_t> Submit(EngineRequest request, EventSink sink);
  // Cancels a queued or running request (its sink gets a final kCancelled
  // event). Returns false if it is unknown or already finished.
  bool Cancel(uint64_t request_id);
  EngineStats GetStats() const;

 private:
  struct Sequence;
  struct Pick {  // a sampled row
    int token = 0;
    float logprob = 0;
    int64_t start_ns = 0, end_ns = 0;  // when traced
  };
  void Loop();
  // Samples every row of a step's logits (the entries of `batch` with
  // want_logits, in order) on the sampling threads, into `picks`; or takes
  // the argmax ids the executor returned for greedy rows.
  Status SampleRows(std::span<const SeqStep> batch, std::span<Sequence* const> seqs,
                    const StepLogits& out, bool timed, std::vector<Pick>* picks);
  void Admit(std::vector<std::unique_ptr<Sequence>>& running);
  void Finish(Sequence& s, FinishReason reason, Status error = absl::OkStatus());
  void Emit(Sequence& s, int token, float logprob);
  void Replay(std::vector<std::unique_ptr<Sequence>>& running);
  // Runs the vision tower on the images of sequences that have not been
  // embedded yet. Returns Unavailable when a worker was lost.
  Status EmbedImages(std::vector<std::unique_ptr<Sequence>>& running);
  // How many of s's pending tokens from kv_len a step may take, at most
  // `budget`, without splitting a run of image tokens (0: the run at kv_len
  // does not fit).
  static int ChunkWithoutSplit(const Sequence& s, int budget);
  // Adds a span to the trace ring (for spans outside a step's scope).
  void Trace(trace::Kind kind, int64_t start, int64_t end, uint64_t request, uint64_t step);

  EngineOptions options_;
  StepExecutor* executor_;
  std::unique_ptr<ThreadPool> sample_pool_;  // engine thread only
  std::vector<Sequence*> sample_rows_;       // engine thread only: SampleRows' rows
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Sequence>> queue_;  // guarded by mu_
  std::set<uint64_t> live_;                      // guarded by mu_: queued or running ids
  std::set<uint64_t> cancelled_;                 // guarded by mu_: ids asked to cancel
  uint64_t next_id_ = 1;                         // guarded by mu_
  EngineStats stats_;                            // guarded by mu_
  bool stop_ = false;                            // guarded by mu_
  uint64_t step_ = 0;                            // engine thread: steps run so far
  uint64_t sample_state_ = 0x9e3779b97f4a7c15;   // guarded by mu_: request sampling
  std::thread thread_;
};

}  // namespace unicorn
