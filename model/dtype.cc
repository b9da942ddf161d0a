#include "model/dtype.h"

namespace unicorn {

const DTypeTraits& Traits(DType t) {
  static const DTypeTraits kTraits[] = {
      {"f32", 1, 4}, {"f16", 1, 2}, {"bf16", 1, 2}, {"q8_0", 32, 34}, {"q4_0", 32, 18},
      {"q2_k", 256, 84}, {"q3_k", 256, 110}, {"q4_k", 256, 144}, {"q5_k", 256, 176},
      {"q6_k", 256, 210}, {"nf4", 32, 18},
  };
  return kTraits[static_cast<int>(t)];
}

}  // namespace unicorn
