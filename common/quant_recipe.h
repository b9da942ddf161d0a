// A quantization recipe (`unicorn quantize --recipe FILE.yaml`): tensor-name
// globs mapped to type names, first match wins. Lives here because yaml-cpp
// is linked only by unicorn_config. File format:
//   default: q4_k            # optional: type of matrices no rule matches
//   rules:
//     - match: "token_embd.weight"      # fnmatch(3) glob on GGUF names
//       type: q6_k
//     - match: "blk.*.ffn_down.weight"
//       type: q8_0
// Type names are checked by the caller (model/quant_plan.h).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace unicorn {

struct QuantRecipe {
  struct Rule {
    std::string match;
    std::string type;
  };
  std::string default_type;  // empty: the command's --type decides
  std::vector<Rule> rules;

  // The type of the first rule whose glob matches `name`, or nullptr.
  const std::string* Find(const std::string& name) const;
};

// Errors start with "[recipe] <path>: ".
StatusOr<QuantRecipe> LoadQuantRecipe(const std::string& path);

}  // namespace unicorn
