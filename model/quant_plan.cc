#include "model/quant_plan.h"

#include "absl/strings/str_cat.h"

namespace unicorn {

StatusOr<DType> ParseQuantType(std::string_view name) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ2_K,
                  DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K, DType::kNF4}) {
    if (Traits(t).name == name) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown type ", std::string(name),
                   " (known: f32 f16 bf16 q8_0 q4_0 q2_k q3_k q4_k q5_k q6_k nf4)"));
}

bool IsQuantScheme(std::string_view s) {
  return s == "q8_0" || s == "q4_0" || s == "nf4" || s == "q4_k_m" || s == "q2_k" || s == "q3_k" ||
         s == "q4_k" || s == "q5_k" || s == "q6_k";
}

bool UseMoreBits(int layer, int n_layers) {
  return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

int LayerOf(const std::string& name) {
  if (name.rfind("blk.", 0) != 0) return -1;
  int n = 0;
  size_t i = 4;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && i < 10; ++i) {
    n = n * 10 + (name[i] - '0');
  }
  return i > 4 && i < name.size() && name[i] == '.' ? n : -1;
}

namespace {
bool Contains(const std::string& s, std::string_view part) {
  return s.find(part) != std::string::npos;
}
}  // namespace

DType SchemeType(std::string_view scheme, const std::string& name, TensorRole role, int layer,
                 int n_layers) {
  const bool embed = role == TensorRole::kEmbedding;
  if (scheme == "q8_0") return DType::kQ8_0;
  if (scheme == "q4_0") return embed ? DType::kQ8_0 : DType::kQ4_0;
  if (scheme == "nf4") return embed ? DType::kQ8_0 : DType::kNF4;
  if (embed) return DType::kQ6_K;
  if (scheme == "q4_k_m") {
    if ((Contains(name, ".attn_v.") || Contains(name, ".ffn_down.")) && layer >= 0 &&
        UseMoreBits(layer, n_layers)) {
      return DType::kQ6_K;
    }
    return DType::kQ4_K;
  }
  StatusOr<DType> t = ParseQuantType(scheme);
  return t.ok() ? *t : DType::kQ8_0;
}

DType WithFallback(DType want, int64_t row_elems) {
  if (row_elems % Traits(want).block_elems == 0) return want;
  switch (want) {
    case DType::kQ2_K:
    case DType::kQ3_K:
    case DType::kQ4_K:
      return row_elems % 32 == 0 ? DType::kQ4_0 : DType::kF16;
    case DType::kQ5_K:
    case DType::kQ6_K:
      return row_elems % 32 == 0 ? DType::kQ8_0 : DType::kF16;
    default:
      return DType::kF16;
  }
}

}  // namespace unicorn
