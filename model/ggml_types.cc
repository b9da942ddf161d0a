#include "model/ggml_types.h"

#include "common/status.h"

namespace unicorn {
namespace {

// Block geometry from ggml/src/ggml.c's type_traits (QK_K = 256), the same
// table as gguf-py's GGML_QUANT_SIZES.
constexpr GgmlTypeInfo kTypes[] = {
    {0, "f32", 1, 4, DType::kF32},          {1, "f16", 1, 2, DType::kF16},
    {2, "q4_0", 32, 18, DType::kQ4_0},      {3, "q4_1", 32, 20, std::nullopt},
    {6, "q5_0", 32, 22, std::nullopt},      {7, "q5_1", 32, 24, std::nullopt},
    {8, "q8_0", 32, 34, DType::kQ8_0},      {9, "q8_1", 32, 36, std::nullopt},
    {10, "q2_k", 256, 84, DType::kQ2_K},    {11, "q3_k", 256, 110, DType::kQ3_K},
    {12, "q4_k", 256, 144, DType::kQ4_K},   {13, "q5_k", 256, 176, DType::kQ5_K},
    {14, "q6_k", 256, 210, DType::kQ6_K},   {15, "q8_k", 256, 292, std::nullopt},
    {16, "iq2_xxs", 256, 66, std::nullopt}, {17, "iq2_xs", 256, 74, std::nullopt},
    {18, "iq3_xxs", 256, 98, std::nullopt}, {19, "iq1_s", 256, 50, std::nullopt},
    {20, "iq4_nl", 32, 18, std::nullopt},   {21, "iq3_s", 256, 110, std::nullopt},
    {22, "iq2_s", 256, 82, std::nullopt},   {23, "iq4_xs", 256, 136, std::nullopt},
    {24, "i8", 1, 1, std::nullopt},         {25, "i16", 1, 2, std::nullopt},
    {26, "i32", 1, 4, std::nullopt},        {27, "i64", 1, 8, std::nullopt},
    {28, "f64", 1, 8, std::nullopt},        {29, "iq1_m", 256, 56, std::nullopt},
    {30, "bf16", 1, 2, DType::kBF16},       {34, "tq1_0", 256, 54, std::nullopt},
    {35, "tq2_0", 256, 66, std::nullopt},   {39, "mxfp4", 32, 17, std::nullopt},
    {40, "nvfp4", 64, 36, std::nullopt},    {41, "q1_0", 128, 18, std::nullopt},
    {42, "q2_0", 64, 18, std::nullopt},
    // Unicorn's NF4 (model/kquant.h): an id far beyond ggml's enum, so
    // llama.cpp rejects the tensor ("invalid ggml type") instead of misreading it.
    {kGgmlUnicornNF4, "unicorn_nf4", 32, 18, DType::kNF4},
};

}  // namespace

const GgmlTypeInfo* FindGgmlType(uint32_t id) {
  for (const GgmlTypeInfo& t : kTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

std::string GgmlTypeName(uint32_t id) {
  const GgmlTypeInfo* t = FindGgmlType(id);
  return t ? std::string(t->name) : "type " + std::to_string(id);
}

uint32_t GgmlTypeOf(DType d) {
  for (const GgmlTypeInfo& t : kTypes) {
    if (t.dtype == d) return t.id;
  }
  UNICORN_CHECK(false && "every DType has a ggml id");
  return 0;
}

}  // namespace unicorn
