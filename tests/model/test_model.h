// Test helpers: temporary folders, safetensors files written by hand, and a
// tiny random Gemma 3 model that can be saved as a Hugging Face folder (every
// naming and config dialect) or as GGUF, to check that all of them open to
// the same config and tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/dtype.h"
#include "model/gemma3_config.h"
#include "model/gguf_model_writer.h"
#include "model/tensor.h"

namespace unicorn::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void WriteFile(const std::string& path, const std::string& bytes);
std::string ReadFile(const std::string& path);

struct StTensor {
  std::string name;
  std::string dtype;  // "F32", "BF16", "F16", or anything (for bad files)
  std::vector<int64_t> shape;
  std::string bytes;
};
// A safetensors image: header padded with spaces to 8 bytes, as the
// reference writer does; tensors packed in order.
std::string SafetensorsBytes(const std::vector<StTensor>& tensors);
std::string F32Bytes(const std::vector<float>& v);

// hidden 64, 7 layers (layer 5 global), 2 heads, 1 kv head, head_dim 32,
// ffn 128, vocab 300; vision: 32x32 images, 8x8 patches, width 32, 2 layers,
// 4 image tokens.
Gemma3Config TinyConfig(bool vision);

// Random f32 weights in internal conventions (norms as w, projection
// [hidden, v_hidden]), by internal name.
struct TinyModel {
  Gemma3Config config;
  std::map<std::string, std::vector<float>> w;
};
TinyModel MakeTinyModel(bool vision, uint32_t seed = 1);
// The same for any config (e.g. widths that are whole k-quant super-blocks).
TinyModel MakeTinyModel(const Gemma3Config& config, uint32_t seed);

enum class HfDialect { kGoogle, kTransformers5 };
enum class HfPrefix {
  kCausalLm,  // model.*
  kGoogle,    // language_model.model.*, vision_tower.vision_model.*, multi_modal_projector.*
  kTf452,     // model.language_model.*, model.vision_tower.vision_model.*,
              // model.multi_modal_projector.*
  kTf5,       // model.language_model.*, model.vision_tower.*, model.multi_modal_projector.*
};

std::string HfConfigJson(const Gemma3Config& c, HfDialect dialect);
// The Hugging Face name of an internal tensor under `prefix`.
std::string HfName(const std::string& internal, HfPrefix prefix);
// config.json + model.safetensors (or `shards` shards and an index).
void WriteHfFolder(const TinyModel& m, const std::string& dir, HfDialect dialect, HfPrefix prefix,
                   DType dtype = DType::kF32, int shards = 1);
// The text GGUF (synthetic vocabulary) and, for vision models, the mmproj.
void WriteGgufModel(const TinyModel& m, const std::string& text_path,
                    const std::string& mmproj_path, const GgufModelOptions& o);
GgufModelOptions AllF32();

// A tensor's values as f32 (dequantized row by row).
std::vector<float> TensorToF32(const TensorInfo& t);

}  // namespace unicorn::testing
