// A worker's share of the model: the parts of a forward step that the
// placement plan gives it (coordinator/plan.h). Part 2l is layer l's
// attention half (input norm .. residual, with the KV cache of layer l), part
// 2l+1 its FFN half; the embedding comes before part 0 and the final norm and
// LM head after the last part.
//
// A StageModel keeps the KV caches of the sequences it has seen for the
// attention layers it owns. Thread-compatible: one thread drives it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn {

struct StageSpec {
  bool embedding = false;  // rows start as token embeddings
  int first_part = 0;      // parts [first_part, last_part)
  int last_part = 0;
  bool lm_head = false;  // end with logits of the rows that want them
  // lm_head: Run's `logits` receives, instead, each such row's argmax token
  // id as i32 [rows wanting logits] (Ops::Argmax): greedy rows need no more.
  bool argmax = false;
};

struct StageRows {
  uint64_t seq_id = 0;
  int start_pos = 0;  // positions [start_pos, start_pos + n_tokens)
  int n_tokens = 0;
  bool want_logits = false;  // its last row's logits (lm_head stages)
  // The first image_rows rows with the image token id are image rows (see
  // Gemma3Session::RunParts): embeddings from `images`, bidirectional runs.
  int image_rows = 0;
};

// What a worker is asked to load (one LoadShard message).
struct ShardSpec {
  std::string model_path;
  std::string mmproj_path;
  bool embedding = false;
  bool lm_head = false;
  bool vision = false;
  std::vector<int> attention_layers;
  std::vector<int> ffn_layers;
  int max_sequences = 16;
  int max_context = 4096;
  int max_step_tokens = 512;
};

class StageModel {
 public:
  virtual ~StageModel() = default;

  // Runs `spec` over the rows of `seqs` (concatenated, in order).
  //   ids     i32 [rows]           token ids of every row
  //   images  f32 [image rows, hidden]: embeddings of every sequence's image
  //           rows (StageRows::image_rows), in order (embedding stages)
  //   hidden_in   f32 [rows, hidden]  input (unless spec.embedding)
  //   hidden_out  f32 [rows, hidden]  output (unless spec.lm_head); may be hidden_in
  //   logits      f32 [rows wanting logits, vocab] (spec.lm_head only), or
  //               i32 [rows wanting logits] with spec.argmax
  // The pointers may lie in shared memory (the arena) that the backend
  // imported: the backend then reads and writes them in place, and is done
  // with them when Run returns.
  // Errors (bad ids, positions that do not continue a sequence's cache, parts
  // this shard does not hold) change no cache.
  virtual Status Run(const StageSpec& spec, std::span<const StageRows> seqs,
                     std::span<const int> ids, std::span<const float> images,
                     const float* hidden_in, float* hidden_out, float* logits) = 0;

  // The vision tower (SigLIP + projector), held when the shard was loaded
  // with ShardSpec::vision and the model has one:
  //   pixels  f32 [3, image_size, image_size]  (model/image.h PixelValues)
  //   embeds  f32 [mm_tokens_per_image, hidden], written to `out`
  // INVALID_ARGUMENT "... has no vision tower" for a text-only model,
  // INTERNAL when this shard was not asked to hold it.
  virtual Status EncodeImage(std::span<const float> pixels, float* out) {
    (void)pixels;
    (void)out;
    return absl::InternalError("[stage] this shard holds no vision tower");
  }
  // Floats of EncodeImage's input and output (0 without a vision tower).
  virtual int64_t pixel_floats() const { return 0; }
  virtual int64_t image_embed_floats() const { return 0; }

  // Forgets a sequence's KV caches.
  virtual void Free(uint64_t seq_id) = 0;
  virtual void FreeAll() = 0;

  virtual int hidden_size() const = 0;
  virtual int vocab_size() const = 0;
  virtual int64_t weight_bytes() const = 0;
  virtual std::string Describe() const = 0;  // backend and device
};

}  // namespace unicorn
