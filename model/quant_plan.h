// Which type each tensor gets when `unicorn quantize` writes a GGUF.
//
// Schemes (--type):
//   q8_0, q4_0, nf4: every text matrix in that type; token_embd (which Gemma
//     ties to the output projection) in q8_0.
//   q4_k_m: llama.cpp's Q4_K_M pattern: token_embd (= output) q6_k;
//     attn_v and ffn_down q6_k in the layers where llama.cpp's use_more_bits
//     holds (the first and last eighth, and every third layer in between:
//     i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2), q4_k elsewhere; all other
//     matrices q4_k.
//   q2_k: every matrix q2_k, token_embd q6_k (as llama.cpp's Q2_K output).
//   q3_k, q4_k, q5_k, q6_k: every matrix in that type, token_embd q6_k.
// 1-D tensors stay f32 and vision tensors are untouched (F16 matrices, as
// convert_hf_to_gguf.py writes the mmproj).
//
// Fallback (as llama.cpp does): k-quants need rows that are whole 256-weight
// super-blocks; a tensor whose rows are not (e.g. hidden 1152 of Gemma 3 1B,
// or the demo model's 192) takes the nearest legacy type Unicorn has:
// q2_k/q3_k/q4_k -> q4_0, q5_k/q6_k -> q8_0 (llama.cpp would pick
// iq4_nl / q5_0 / q5_1 / q8_0; Unicorn has no q5_0 / q5_1 / iq4_nl).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "model/dtype.h"
#include "model/expected_tensors.h"

namespace unicorn {

// "q4_k" -> kQ4_K, ... (f32, f16, bf16, q8_0, q4_0, q2_k..q6_k, nf4).
StatusOr<DType> ParseQuantType(std::string_view name);

// True for the scheme names above.
bool IsQuantScheme(std::string_view scheme);

// The scheme's type for a text tensor (role kMatrix or kEmbedding), before
// fallback. `layer` is the N of blk.N (-1 if none).
DType SchemeType(std::string_view scheme, const std::string& name, TensorRole role, int layer,
                 int n_layers);

// `want`, or its fallback when rows of `row_elems` are not whole blocks.
DType WithFallback(DType want, int64_t row_elems);

// blk.N.* -> N, else -1.
int LayerOf(const std::string& name);

// llama.cpp's use_more_bits(i_layer, n_layers).
bool UseMoreBits(int layer, int n_layers);

}  // namespace unicorn
