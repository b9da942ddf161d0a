#include "model/gguf_model_writer.h"

#include <algorithm>
#include <memory>

#include "model/gguf_config.h"
#include "model/gguf_writer.h"
#include "model/name_map.h"
#include "model/quant.h"

namespace unicorn {
namespace {

constexpr size_t kChunkBytes = 4 << 20;

// llama.cpp's LlamaFileType for general.file_type.
uint32_t FileType(DType matrix_type) {
  switch (matrix_type) {
    case DType::kF32:
      return 0;
    case DType::kF16:
      return 1;
    case DType::kQ4_0:
      return 2;
    case DType::kQ8_0:
      return 7;
    case DType::kBF16:
      return 32;
    case DType::kQ2_K:
      return 10;
    case DType::kQ3_K:
      return 12;  // Q3_K_M
    case DType::kQ4_K:
      return 15;  // Q4_K_M
    case DType::kQ5_K:
      return 17;  // Q5_K_M
    case DType::kQ6_K:
      return 18;
    case DType::kNF4:
      return 0;  // no llama.cpp file type: "all f32" is the neutral answer
  }
  return 0;
}

bool Quantized(DType t) { return Traits(t).block_elems > 1; }

Status WriteAll(const std::string& path, const GgufMetadata& md,
                const std::vector<GgufTensorPlan>& plan, const GgufModelOptions& o,
                const GgufTensorFiller& fill) {
  GgufWriter::Options wo;
  wo.alignment = o.alignment;
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<GgufWriter> w, GgufWriter::Create(path, wo));
  for (const auto& [k, v] : md.entries()) w->SetKv(k, v);
  for (const GgufTensorPlan& t : plan) {
    UNICORN_RETURN_IF_ERROR(w->AddTensor(t.name, t.type, t.file_shape));
  }
  UNICORN_RETURN_IF_ERROR(w->WriteHeader());
  std::vector<uint8_t> buf;
  for (const GgufTensorPlan& t : plan) {
    const size_t row_bytes = RowBytes(t.type, t.row_elems());
    const int64_t rows = t.rows();
    const int64_t chunk =
        std::max<int64_t>(1, int64_t(kChunkBytes / std::max<size_t>(row_bytes, 1)));
    for (int64_t r = 0; r < rows; r += chunk) {
      const int64_t n = std::min(chunk, rows - r);
      buf.resize(size_t(n) * row_bytes);
      UNICORN_RETURN_IF_ERROR(fill(t, r, n, buf.data()));
      UNICORN_RETURN_IF_ERROR(w->Write(buf.data(), buf.size()));
    }
  }
  return w->Finish();
}

GgufTensorPlan Plan(const ExpectedTensor& e, DType type) {
  GgufTensorPlan p{e.name, e.shape, e.role, type};
  if (e.name == "mm.input_projection.weight") p.file_shape = {e.shape[1], e.shape[0]};
  return p;
}

}  // namespace

int64_t GgufTensorPlan::rows() const {
  int64_t n = 1;
  for (int64_t d : file_shape) n *= d;
  return row_elems() ? n / row_elems() : 0;
}

std::vector<GgufTensorPlan> PlanTextGguf(const Gemma3Config& c, const GgufModelOptions& o) {
  std::vector<GgufTensorPlan> plan;
  for (const ExpectedTensor& e : ExpectedTextTensors(c)) {
    DType t = DType::kF32;  // norms: convert_hf_to_gguf.py keeps 1-D tensors in f32
    if (e.role == TensorRole::kEmbedding) t = o.embedding_type;
    if (e.role == TensorRole::kMatrix) t = o.matrix_type;
    GgufTensorPlan p = Plan(e, t);
    if (o.text_type && (e.role == TensorRole::kMatrix || e.role == TensorRole::kEmbedding)) {
      p.type = o.text_type(p);
    }
    plan.push_back(std::move(p));
  }
  return plan;
}

std::vector<GgufTensorPlan> PlanMmprojGguf(const Gemma3Config& c, const GgufModelOptions& o) {
  std::vector<GgufTensorPlan> plan;
  for (const ExpectedTensor& e : ExpectedVisionTensors(c)) {
    DType t = DType::kF32;  // 1-D, patch and position embeddings: f32
    if (e.role == TensorRole::kMatrix) t = o.vision_matrix_type;
    if (e.name == "mm.input_projection.weight") t = o.projection_type;
    plan.push_back(Plan(e, t));
  }
  return plan;
}

Status WriteTextGguf(const std::string& path, const Gemma3Config& c, const GgufVocab* vocab,
                     const GgufModelOptions& o, const GgufTensorFiller& fill) {
  GgufMetadata md;
  md.Set("general.architecture", GgufValue::Str("gemma3"));
  md.Set("general.name", GgufValue::Str(o.name));
  md.Set("general.file_type", GgufValue::U32(FileType(o.matrix_type)));
  if (Quantized(o.matrix_type) || Quantized(o.embedding_type)) {
    md.Set("general.quantization_version", GgufValue::U32(2));
  }
  Status s = TextConfigToGguf(c, &md, o.unicorn_extensions);
  if (!s.ok()) return Annotate(s, absl::StrCat("[gguf] ", path));
  if (vocab != nullptr) {
    if (vocab->tokens.size() != size_t(c.vocab_size)) {
      return absl::InvalidArgumentError(absl::StrCat("[gguf] ", path, ": ", vocab->tokens.size(),
                                                     " tokens for a vocab of ", c.vocab_size));
    }
    VocabToGguf(*vocab, &md);
  }
  return WriteAll(path, md, PlanTextGguf(c, o), o, fill);
}

Status WriteMmprojGguf(const std::string& path, const Gemma3Config& c, const GgufModelOptions& o,
                       const GgufTensorFiller& fill) {
  if (!c.has_vision) {
    return absl::InvalidArgumentError(absl::StrCat("[gguf] ", path, ": the config has no vision"));
  }
  GgufMetadata md;
  md.Set("general.architecture", GgufValue::Str("clip"));
  md.Set("general.name", GgufValue::Str(o.name));
  md.Set("general.file_type", GgufValue::U32(FileType(o.vision_matrix_type)));
  Status s = VisionConfigToGguf(c, &md);
  if (!s.ok()) return Annotate(s, absl::StrCat("[gguf] ", path));
  return WriteAll(path, md, PlanMmprojGguf(c, o), o, fill);
}

GgufTensorFiller FillerFromF32(std::function<const float*(const std::string& name)> weights) {
  return [weights = std::move(weights)](const GgufTensorPlan& t, int64_t row_begin, int64_t n_rows,
                                        uint8_t* out) -> Status {
    const float* w = weights(t.name);
    if (w == nullptr) return absl::NotFoundError(absl::StrCat("no weights for ", t.name));
    const int64_t n = t.row_elems();
    const size_t row_bytes = RowBytes(t.type, n);
    std::vector<float> row(static_cast<size_t>(n));
    for (int64_t r = row_begin; r < row_begin + n_rows; ++r) {
      if (t.name == "mm.input_projection.weight") {
        // File row r is column r of the internal [hidden, v_hidden] matrix.
        const int64_t internal_cols = t.file_shape[0];
        for (int64_t k = 0; k < n; ++k) row[k] = w[k * internal_cols + r];
      } else {
        std::copy(w + r * n, w + (r + 1) * n, row.begin());
        if (IsGemmaRmsNorm(t.name)) {
          for (float& x : row) x += 1.0f;  // GGUF stores 1 + w
        }
      }
      QuantizeRow(t.type, row.data(), out + size_t(r - row_begin) * row_bytes, n);
    }
    return absl::OkStatus();
  };
}

}  // namespace unicorn
