// One forward pass over the rows of one or more sequences: the Gemma 3 layer
// code (transformers' models/gemma3/modeling_gemma3.py), shared by
// Gemma3Session (one sequence) and the pipeline stage (model/gemma3_stage.h:
// every sequence of an engine step in one pass).
//
// The KV cache is a set of rings. Per layer there is one key store and one
// value store of rings() * capacity(l) slots; ring r holds one sequence, the
// keys and values of its position p at slot r * capacity(l) + p % capacity(l)
// (a sliding-window layer keeps only the window, so its ring wraps). A pass
// runs the rows [0, n) that SetRow prepared, each in its sequence's ring: the
// norms and products take all rows at once, so each weight is read once per
// pass however many sequences decode together, and attention reads each
// row's own ring.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/gemma3.h"
#include "model/ops.h"

namespace unicorn {

// One sequence's rows in a pipeline stage pass (model/stage.h): its tokens
// at positions [start_pos, start_pos + n), in ring `ring`.
struct Gemma3StageSeq {
  uint64_t id = 0;  // named in errors
  int ring = 0;
  std::span<const int> tokens;
  int start_pos = 0;
  // In: the positions its ring holds. Out: start_pos + n when the pass ran
  // an attention part (which extends the ring).
  int* n_past = nullptr;
  // The first image_rows rows whose id is the config's image_token_id are
  // image rows: embeddings from the pass's images, bidirectional runs.
  int image_rows = 0;
  bool want_logits = false;  // its last row's logits (LM-head stages)
};

class Gemma3Batch {
 public:
  // Buffers for passes of up to options.max_chunk rows and `rings` rings of
  // options.max_context positions (capped by the model's).
  static StatusOr<std::unique_ptr<Gemma3Batch>> Create(const Gemma3Model& model,
                                                       const SessionOptions& options, int rings);

  const Gemma3Model& model() const { return model_; }
  int rings() const { return rings_; }
  int max_context() const { return max_context_; }
  int max_chunk() const { return max_chunk_; }
  // Adds rings up to `rings`: larger stores, the existing rings copied over.
  void Grow(int rings);

  // Row r of the next pass: token `id` at position `pos` of ring `ring`; an
  // image row (run_lo >= 0) sees the positions [run_lo, run_hi] of its run
  // (transformers' token_type_ids_mask_function), a text row its causal /
  // sliding-window span.
  void SetRow(int r, int ring, int id, int pos, int run_lo, int run_hi);

  // A pass over the rows [0, n) set since the last one.
  struct Pass {
    int n = 0;
    // Input: token embeddings (image rows replaced from `images`) or hidden_in.
    bool embedding = true;
    std::span<const float> images;      // [image rows, hidden]
    std::span<const int> image_of_row;  // [n] or empty: row -> its row of images, or -1
    const float* hidden_in = nullptr;   // [n, hidden] unless embedding
    int first_part = 0, last_part = 0;  // parts [first, last): 2l attention, 2l+1 FFN of layer l
    std::span<const int> logit_rows;    // rows the LM head runs on (empty: no LM head)
    float* hidden_out = nullptr;        // [n, hidden] or null (without LM head)
    float* logits = nullptr;            // [logit_rows.size(), vocab]
    int32_t* argmax = nullptr;          // or instead their argmax ids [logit_rows.size()]
  };
  // Runs `pass`; returns once its outputs are written (and every input
  // read: they may lie in host memory the backend imported).
  void Run(const Pass& pass);

  // A pipeline stage over several sequences (model/stage.h): checks every
  // sequence first (bad ids, positions that skip the ring's end, image rows,
  // parts the model does not hold: an error changes nothing), then runs them
  // all in one pass. images [image rows of all, hidden] (embedding),
  // hidden_in / hidden_out [rows, hidden] (hidden_out unless lm_head; it may
  // be hidden_in), logits [sequences wanting logits, vocab], or with `argmax`
  // their argmax token ids (i32 [sequences wanting logits]).
  // Runs passes of 1, 4, 8, 16, 64, ... 512 rows (up to max_chunk) through every part
  // the model holds, one part at a time, on ring 0: a backend that tunes
  // kernels on first use (Ops::TunesOnFirstUse) does it here, not in a
  // serving step. Ring 0 is left holding nothing a sequence reads.
  void WarmUp();

  Status RunStage(std::span<const Gemma3StageSeq> seqs, std::span<const float> images,
                  bool embedding, int first_part, int last_part, bool lm_head, bool argmax,
                  const float* hidden_in, float* hidden_out, float* logits);

 private:
  explicit Gemma3Batch(const Gemma3Model& model) : model_(model), ops_(model.ops()) {}
  void AttentionHalf(int l, int n);  // part 2l
  void FfnHalf(int l, int n);        // part 2l + 1
  // Final norm, tied LM head, soft-capping: logits_ [rows, vocab] from h [rows, hidden].
  void LmHead(const Buffer& h, int rows);

  const Gemma3Model& model_;
  Ops& ops_;
  int max_context_ = 0, max_chunk_ = 0, rings_ = 0;
  std::vector<int> capacity_;                               // per layer: slots of a ring
  std::vector<std::unique_ptr<Buffer>> k_store_, v_store_;  // per layer [rings * capacity, kv_dim]

  // Inputs of a pass (host copies, then uploaded).
  std::vector<int32_t> ids_host_, pos_host_, ring_host_, spans_local_host_, spans_global_host_;
  std::unique_ptr<Buffer> ids_, pos_, ring_;            // i32 [chunk]
  std::unique_ptr<Buffer> spans_local_, spans_global_;  // i32 [chunk, 2]
  // Activations, [chunk, ...].
  std::unique_ptr<Buffer> x_, xn_;     // [chunk, hidden]
  std::unique_ptr<Buffer> q_, attn_;   // [chunk, heads*hd]
  std::unique_ptr<Buffer> k_, v_;      // [chunk, kv_heads*hd]
  std::unique_ptr<Buffer> o_;          // [chunk, hidden]
  std::unique_ptr<Buffer> gate_, up_;  // [chunk, intermediate]
  std::unique_ptr<Buffer> rows_;       // [chunk, hidden]: the LM head's rows
  std::unique_ptr<Buffer> logits_;     // [rows, vocab]
  std::unique_ptr<Buffer> argmax_;     // i32 [rows]
  // Rings of this pass: null when every row is in ring 0.
  const Buffer* pass_rings_ = nullptr;
  // Operand lists of MatMulMulti: per layer {q, k, v} and {gate, up}.
  std::vector<std::vector<const Weight*>> qkv_w_, gate_up_w_;
  std::vector<Buffer*> qkv_out_, gate_up_out_;
  // RunStage's per-row scratch (kept: no allocation per step).
  std::vector<int> run_start_, run_end_, image_of_row_, logit_rows_, seq_start_, seq_end_;
};

}  // namespace unicorn
