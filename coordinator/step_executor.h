// What the engine needs from whatever runs the model: one forward step over a
// batch of sequences. Implementations: the multi-process pipeline (stages on
// workers, coordinator/pipeline_executor.h) and a single-process one (tests,
// `unicorn run --config`).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "common/status.h"

namespace unicorn {

// One sequence's part of a step: append `tokens` at positions
// [start_pos, start_pos + tokens.size()) to its KV cache and, if
// `want_logits`, return the logits of its last token.
struct SeqStep {
  uint64_t seq_id = 0;
  int start_pos = 0;
  std::span<const int> tokens;
  bool want_logits = true;
  // Its next token is the argmax of those logits (greedy sampling): the
  // executor may return only that (StepLogits::argmax).
  bool greedy = false;
  // The first image_rows tokens equal to the model's image token id are image
  // rows: they take, in order, the rows of image_embeds [image_rows, hidden]
  // instead of their token embedding, and each run of them attends to itself
  // bidirectionally. The engine never splits a run across steps.
  int image_rows = 0;
  std::span<const float> image_embeds;
};

// What a step gives for its rows: one per entry of the batch with
// want_logits, in order. Their logits [rows, vocab_size()], or, where every
// such entry is greedy and the executor chose to, only their argmax token
// ids [rows] (logits then empty). The spans are valid only during the
// LogitsFn call (they may point into shared memory).
struct StepLogits {
  std::span<const float> logits;
  std::span<const int32_t> argmax;
};

class StepExecutor {
 public:
  virtual ~StepExecutor() = default;

  // Reads a step's StepLogits: keep what it computes, not the spans.
  using LogitsFn = absl::FunctionRef<Status(const StepLogits& out)>;

  // Runs one step and, if any entry wants logits, calls `use_logits` once
  // with them; its error becomes Run's. An OK return also says that the
  // logits were intact while they were read, so results computed from them
  // may be used only after it. An Unavailable error means a worker was lost:
  // every KV cache may be gone, and the engine replays (re-prefills) all
  // running sequences once WaitReady() returns OK. Other errors fail only
  // the sequences of this batch.
  virtual Status Run(std::span<const SeqStep> batch, LogitsFn use_logits) = 0;

  // Runs the vision tower on one image: pixels [3, image_size, image_size]
  // f32 -> embeddings [mm_tokens_per_image, hidden] appended to `embeds`.
  // Unavailable means a worker was lost (as for Run); INVALID_ARGUMENT, e.g.
  // a model without a vision tower, fails only the request.
  virtual Status EncodeImage(std::span<const float> pixels, std::vector<float>* embeds) {
    (void)pixels;
    (void)embeds;
    return absl::InvalidArgumentError("[executor] this executor runs no vision tower");
  }

  // Drops a sequence's KV cache (finished, cancelled, or before a replay).
  virtual void Free(uint64_t seq_id) = 0;

  // Blocks until every stage has a live worker again, or `timeout_ms` passes
  // (then DeadlineExceeded).
  virtual Status WaitReady(int timeout_ms) = 0;

  virtual int vocab_size() const = 0;
  // Longest sequence (prompt + generated) a KV cache can hold.
  virtual int max_context() const = 0;
};

}  // namespace unicorn
