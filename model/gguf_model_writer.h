// Writes a Gemma 3 model as GGUF files that llama.cpp loads: the text model
// (gemma3.* metadata, tokenizer, the tensors of ExpectedTextTensors) and the
// vision mmproj (clip.* metadata, ExpectedVisionTensors). Tensor bytes come
// from a caller's filler, a chunk of rows at a time, so a 27B model streams
// to disk with a few MB of memory.
//
// Files follow llama.cpp's conventions (see model/gguf_config.h and
// model/model_files.h): Gemma RMSNorm weights are stored as 1 + w in f32,
// mm.input_projection.weight is stored [v_hidden, hidden].
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/dtype.h"
#include "model/expected_tensors.h"
#include "model/gemma3_config.h"
#include "model/gguf_vocab.h"

namespace unicorn {

struct GgufTensorPlan;

struct GgufModelOptions {
  DType matrix_type = DType::kQ4_0;        // text projections
  DType embedding_type = DType::kQ8_0;     // token_embd
  DType vision_matrix_type = DType::kF16;  // SigLIP projections (convert's default)
  DType projection_type = DType::kF16;     // mm.input_projection (convert forces F16)
  uint32_t alignment = 32;
  // Allow Unicorn's extension metadata keys (model/gguf_config.h).
  bool unicorn_extensions = false;
  // When set, the type of each text matrix and of token_embd (given its
  // plan with the type above); mixes such as Q4_K_M use it.
  std::function<DType(const GgufTensorPlan&)> text_type;
  std::string name = "gemma3";  // general.name
};

// One tensor as it goes to the file.
struct GgufTensorPlan {
  std::string name;                 // internal name
  std::vector<int64_t> file_shape;  // PyTorch order, as stored in the file
  TensorRole role;
  DType type;
  int64_t rows() const;  // numel / file_shape.back()
  int64_t row_elems() const { return file_shape.empty() ? 1 : file_shape.back(); }
};

// Writes rows [row_begin, row_begin + n_rows) of `t` into `out`, encoded as
// t.type (n_rows * RowBytes(t.type, t.row_elems()) bytes), in file layout.
using GgufTensorFiller =
    std::function<Status(const GgufTensorPlan& t, int64_t row_begin, int64_t n_rows, uint8_t* out)>;

// The tensors of the text model / the mmproj with their file shapes and
// types under `o`.
std::vector<GgufTensorPlan> PlanTextGguf(const Gemma3Config& c, const GgufModelOptions& o);
std::vector<GgufTensorPlan> PlanMmprojGguf(const Gemma3Config& c, const GgufModelOptions& o);

// `vocab` may be null (no tokenizer metadata; llama.cpp needs one).
Status WriteTextGguf(const std::string& path, const Gemma3Config& c, const GgufVocab* vocab,
                     const GgufModelOptions& o, const GgufTensorFiller& fill);
Status WriteMmprojGguf(const std::string& path, const Gemma3Config& c, const GgufModelOptions& o,
                       const GgufTensorFiller& fill);

// A filler from f32 weights in internal conventions (w for norms,
// [hidden, v_hidden] for the projection): applies the GGUF conventions and
// quantizes. `weights(name)` returns the internal tensor's numel floats.
GgufTensorFiller FillerFromF32(std::function<const float*(const std::string& name)> weights);

}  // namespace unicorn
