// The Gemma 3 text decoder, written once against the ops interface
// (model/ops.h), so every backend runs the same model. Reference: transformers'
// models/gemma3/modeling_gemma3.py (function names cited where a quirk lives).
//
//   Gemma3Model    the weights of one model, bound to one backend (read-only
//                  once loaded; shareable by many sessions)
//   Gemma3Session  one sequence: its KV cache and scratch buffers; Prefill()
//                  runs a prompt in chunks, Decode() one token at a time.
//   Gemma3Batch    (model/gemma3_batch.h) the layer code: one forward pass
//                  over rows of one or more sequences.
#pragma once

#include <algorithm>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/gemma3_config.h"
#include "model/ops.h"
#include "model/tensor.h"

namespace unicorn {

// Finds a tensor by internal name (model/names.h); null when absent. The
// tensor's bytes must outlive the model (they are used in place).
using TensorLookup = std::function<const TensorInfo*(const std::string& name)>;

struct Gemma3LayerWeights {
  std::unique_ptr<Weight> attn_norm;       // [hidden]
  std::unique_ptr<Weight> q, k, v;         // [heads*hd, hidden], [kv_heads*hd, hidden] x2
  std::unique_ptr<Weight> q_norm, k_norm;  // [head_dim]
  std::unique_ptr<Weight> o;               // [hidden, heads*hd]
  std::unique_ptr<Weight> post_attn_norm;  // [hidden]
  std::unique_ptr<Weight> ffn_norm;        // [hidden]
  std::unique_ptr<Weight> gate, up;        // [intermediate, hidden]
  std::unique_ptr<Weight> down;            // [hidden, intermediate]
  std::unique_ptr<Weight> post_ffw_norm;   // [hidden]
};

// Which parts of the model to bind (a pipeline worker holds only its share;
// model/stage.h). Empty vectors mean every layer.
struct Gemma3Parts {
  bool embedding = true;        // token_embd for the input
  bool lm_head = true;          // output_norm + token_embd as the tied head
  std::vector<bool> attention;  // per layer: its attention half
  std::vector<bool> ffn;        // per layer: its FFN half
  bool HasAttention(int l) const { return attention.empty() || attention[size_t(l)]; }
  bool HasFfn(int l) const { return ffn.empty() || ffn[size_t(l)]; }
};

// Told after each layer is bound (done = 1..total, total = num_layers), so a
// caller can show progress: binding may repack or upload the weights, which
// takes seconds on large models.
using LoadProgress = std::function<void(int done, int total)>;

class Gemma3Model {
 public:
  // Binds the text tensors of `config` found through `lookup` on `ops` (those
  // of `parts` only, if given). Errors name the missing or misshapen tensor.
  static StatusOr<std::unique_ptr<Gemma3Model>> Load(const Gemma3Config& config,
                                                     const TensorLookup& lookup, Ops& ops,
                                                     const Gemma3Parts& parts = {},
                                                     const LoadProgress& progress = nullptr);
  const Gemma3Parts& parts() const { return parts_; }

  const Gemma3Config& config() const { return config_; }
  Ops& ops() const { return ops_; }
  const Weight& token_embd() const { return *token_embd_; }  // [vocab, hidden], tied LM head
  const Weight& output_norm() const { return *output_norm_; }
  const Gemma3LayerWeights& layer(int i) const { return layers_[size_t(i)]; }
  // sqrt(hidden) as transformers' Gemma3TextScaledWordEmbedding applies it.
  float embed_scale() const { return embed_scale_; }

 private:
  Gemma3Model(const Gemma3Config& config, Ops& ops) : config_(config), ops_(ops) {}

  Gemma3Config config_;
  Ops& ops_;
  Gemma3Parts parts_;
  std::unique_ptr<Weight> token_embd_, output_norm_;
  std::vector<Gemma3LayerWeights> layers_;
  float embed_scale_ = 1.0f;
};

// Image rows in a forward pass: the first `max_image_rows` rows of `tokens`
// whose id is `image_token_id`. For each row, the first and last row of its
// maximal run of image rows (transformers' create_causal_mask_mapping groups
// the same way), or -1 for a text row. Returns the number of image rows.
int FindImageRuns(std::span<const int> tokens, int image_token_id, int max_image_rows,
                  std::vector<int>* run_start, std::vector<int>* run_end);

// The key positions [lo, hi] that the row at position `p` attends to, on a
// sliding (`local`) or global layer (transformers' masking_utils): causal
// kv <= p; sliding layers also kv > p - sliding_window; an image row sees its
// whole run, positions [run_lo, run_hi] (pass -1 for a text row).
inline void AttentionSpan(int p, int sliding_window, int run_lo, int run_hi, int* lo_local,
                          int* lo_global, int* hi) {
  *lo_local = std::max(0, p - sliding_window + 1);
  *lo_global = 0;
  *hi = p;
  if (run_lo >= 0) {
    *lo_local = std::min(*lo_local, run_lo);
    *hi = run_hi;
  }
}

struct SessionOptions {
  int max_context = 4096;  // positions this session can hold (capped by the model's)
  int max_chunk = 256;     // prefill rows per forward pass (>= one image's tokens + 1)
};

// Which logits a forward pass returns.
enum class LogitsMode { kNone, kLast, kAll };

class Gemma3Batch;

class Gemma3Session {
 public:
  static StatusOr<std::unique_ptr<Gemma3Session>> Create(const Gemma3Model& model,
                                                         const SessionOptions& options);
  ~Gemma3Session();

  // Appends `tokens` at positions position() .. position() + n - 1. Tokens
  // equal to the config's image_token_id take, in order, the rows of
  // `image_embeds` ([n_image_tokens, hidden], after the projector) instead of
  // their embedding; each run of image tokens attends to itself
  // bidirectionally (transformers' token_type_ids_mask_function). A count
  // mismatch, or exceeding max_context, is an error and changes nothing.
  // `logits` receives [1, vocab] (kLast) or [n, vocab] (kAll) floats.
  Status Prefill(std::span<const int> tokens, std::span<const float> image_embeds, LogitsMode mode,
                 std::vector<float>* logits);
  // One token at position(); logits [vocab] of the next token.
  Status Decode(int token, std::vector<float>* logits);

  // Runs model parts [first_part, last_part) (part 2l: layer l's attention
  // half, 2l+1: its FFN half) over `tokens` at positions [start_pos,
  // start_pos + n), n <= the chunk size, as one pipeline stage
  // (model/stage.h; Gemma3Batch::RunStage with this one sequence).
  // `hidden_in` [n, hidden] is the input unless `embedding`; `hidden_out`
  // [n, hidden] receives the output unless `lm_head` (it may be hidden_in);
  // then `logits` gets the last row's [vocab]. All three may lie in host
  // memory the backend imported (VulkanOps::ImportHostMemory): they are then
  // used in place. Attention parts extend this session's KV cache: start_pos
  // must not skip positions (it may go back, to rebuild after a loss).
  // Images: the first `image_rows` rows whose id is the config's
  // image_token_id are image rows. With `embedding` they take, in order, the
  // rows of `image_embeds` ([image_rows, hidden]) instead of their token
  // embedding; in attention parts each maximal run of image rows attends to
  // itself bidirectionally, as in Prefill(). The caller never splits a run
  // across calls.
  Status RunParts(std::span<const int> tokens, int start_pos, int image_rows,
                  std::span<const float> image_embeds, bool embedding, int first_part,
                  int last_part, bool lm_head, const float* hidden_in, float* hidden_out,
                  float* logits);

  int position() const { return n_past_; }
  int max_context() const;
  // Forgets the sequence (the cache is overwritten as positions are reused).
  void Reset() { n_past_ = 0; }

 private:
  Gemma3Session() = default;

  std::unique_ptr<Gemma3Batch> batch_;  // one ring: this sequence
  int n_past_ = 0;
  std::vector<int> image_of_row_, logit_rows_;  // per pass, kept
};

}  // namespace unicorn
