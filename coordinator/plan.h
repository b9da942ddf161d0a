// The placement plan resolved against a model: which worker runs each part of
// each layer, and the resulting sequence of stages of one forward step.
// Consecutive parts on the same worker form one stage, so a plan that puts a
// whole model on one worker costs one hop per step, and the NPU-attention /
// GPU-FFN split costs two hops per layer.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"
#include "common/status.h"

namespace unicorn {

// One contiguous run of work on one worker, in forward order.
struct Stage {
  std::string worker;
  bool embedding = false;  // token ids -> hidden states (first stage only)
  int first_part = 0;      // parts [first_part, last_part): part 2*l is layer l's
  int last_part = 0;       //   attention half, part 2*l+1 its FFN half
  bool lm_head = false;    // final norm + LM head -> logits (last stage only)
};

struct ResolvedPlan {
  int num_layers = 0;
  std::vector<std::string> attention;  // per layer: worker name
  std::vector<std::string> ffn;        // per layer: worker name
  std::string embedding, lm_head, vision;
  std::vector<Stage> stages;  // one forward step, in order

  // Worker names that hold KV caches (run some attention).
  std::vector<std::string> AttentionWorkers() const;
  // Worker names that run some stage.
  std::vector<std::string> Workers() const;
  // A one-line summary: "embedding@gpu | L0-33: attention@npu ffn@gpu | lm_head@gpu".
  std::string Summary() const;
};

// Resolves `plan` for a model with `num_layers` layers. Errors name the layer
// and the problem: "[plan] configs/x.yaml: layer 40 in plan.layers[1] is out of
// range (the model has 34 layers)", "[plan] ...: layer 7 has no attention worker".
StatusOr<ResolvedPlan> ResolvePlan(const Config& config, int num_layers);

}  // namespace unicorn
