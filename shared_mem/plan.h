// How big the arena is: slot classes derived from the model shape and the
// batch limits. Everything is sized once at start-up; no slot is allocated per
// token (the pipeline reuses them round robin).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "shared_mem/region.h"

namespace unicorn::shm {

struct ModelLimits {
  int64_t hidden = 0;            // model width (Gemma 3: 1152, 2560, 3840, 5376)
  int64_t vocab = 0;             // logits per sequence (Gemma 3: 262144 / 262208)
  int64_t max_batch_tokens = 0;  // tokens of one forward step (prefill chunk or decode batch)
  int64_t max_sequences = 1;     // sequences decoded together (one logits row each)
  int activation_bytes = 4;      // bytes per element of activations/logits (f32)
  // Activation slots: a pipeline of S stages keeps at most one step in flight
  // per stage boundary and direction, plus one being filled; 4 covers two
  // workers with double buffering.
  int activation_slots = 4;
  int logits_slots = 2;  // double buffered: sampling overlaps the next step
  // Vision: image embeddings [max_images * tokens_per_image, hidden], 0 = none.
  int64_t max_images = 0;
  int64_t tokens_per_image = 256;
  int image_slots = 1;
  // The vision worker's input: one image's pixel_values [3, S, S] floats
  // (S = the vision tower's image_size), 0 = none.
  int64_t pixel_values = 0;
};

struct ArenaPlan {
  std::vector<RegionPlan> regions;  // region ids are 1 + index

  // Slot classes, one region each:
  //   "act"    [max_batch_tokens, hidden]          x activation_slots
  //   "logits" [max_sequences, vocab]              x logits_slots
  //   "image"  [max_images * tokens_per_image, hidden] x image_slots (if max_images > 0)
  //   "pixels" [pixel_values]                      x 1            (if pixel_values > 0)
  // Errors: a non-positive limit, or a slot over 4 GiB (a sign of a unit
  // mistake, and beyond what one device allocation reliably takes).
  static StatusOr<ArenaPlan> ForModel(const ModelLimits& limits);

  // Mapped bytes of all regions, headers and slack included.
  uint64_t TotalBytes() const;
  // "act 4 x 2.5 MiB, logits 2 x 16 MiB; 74.1 MiB mapped"
  std::string ToString() const;
};

}  // namespace unicorn::shm
