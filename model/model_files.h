// ModelFiles: an opened Gemma 3 model (a Hugging Face folder or a GGUF, plus
// an optional vision mmproj GGUF) as a config and a table of tensors under
// their internal names (model/names.h). Every backend reads weights through
// this class.
//
// Opening maps the files and reads only headers: tensor bytes stay on disk
// until a backend touches them, so a worker that runs layers 10..19 makes
// only those pages resident (call WillNeed() to prefetch them). The few
// tensors that need converting are converted at open into owned buffers:
//   - GGUF Gemma RMSNorm weights: GGUF stores 1 + w, we hold w, as f32
//     (convert_hf_to_gguf.py, Gemma3Model.modify_tensors / norm_shift and
//     Gemma3VisionModel.modify_tensors for mm.soft_emb_norm);
//   - mm.input_projection.weight: stored [v_hidden, hidden] by both HF and
//     llama.cpp (which transposes it at run time in tools/mtmd/models/
//     siglip.cpp, clip_graph_siglip::build); held [hidden, v_hidden]. A
//     quantized one is dequantized to f32 first;
//   - a fused GGUF blk.N.attn_qkv.weight (convert --fuse-qkv: rows of Q,
//     then K, then V) is presented as attn_q/attn_k/attn_v views, no copy;
//   - a safetensors tensor whose bytes are misaligned for its element type
//     is copied to an aligned buffer.
// After opening, the model is validated: every tensor the config needs
// exists with the expected shape (model/expected_tensors.h).
//
// Thread-safety: immutable after Open(); all const methods may be called
// concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/mapped_file.h"
#include "common/status.h"
#include "model/gemma3_config.h"
#include "model/gguf.h"
#include "model/gguf_vocab.h"
#include "model/tensor.h"

namespace unicorn {

class ModelFiles {
 public:
  enum class Format { kSafetensors, kGguf };

  // path: a Hugging Face model folder (config.json + model.safetensors or
  // model.safetensors.index.json) or a .gguf file. mmproj: an optional
  // vision GGUF for a GGUF text model. Errors start with "[model] <path>: ".
  static StatusOr<std::unique_ptr<ModelFiles>> Open(const std::string& path,
                                                    const std::string& mmproj = "");
  ~ModelFiles();
  ModelFiles(const ModelFiles&) = delete;
  ModelFiles& operator=(const ModelFiles&) = delete;

  const Gemma3Config& config() const { return config_; }

  // The tensor with this internal name, or nullptr. O(1).
  const TensorInfo* Find(std::string_view internal_name) const;
  // Like Find(), but a missing tensor is an error naming it and the model.
  StatusOr<const TensorInfo*> Get(std::string_view internal_name) const;
  // Every tensor, in file order (text, then vision).
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  // The folder holding tokenizer files: the HF folder, or the GGUF's folder.
  std::string dir() const;
  const std::string& path() const { return path_; }
  const std::string& mmproj_path() const { return mmproj_path_; }
  Format format() const { return format_; }

  // Asks the kernel to read this tensor's pages ahead (madvise WILLNEED).
  void WillNeed(const TensorInfo& t) const;
  // Drops this tensor's mapped pages from the resident set (streaming
  // readers such as `unicorn quantize` call it after each tensor).
  void DontNeed(const TensorInfo& t) const;

  // The GGUF's tokenizer data, or nullptr (HF folders: read tokenizer.json
  // from dir()).
  const GgufVocab* vocab() const { return vocab_ ? &*vocab_ : nullptr; }
  // GGUF metadata of the text model / mmproj (empty for HF folders).
  const GgufMetadata& gguf_metadata() const { return metadata_; }
  const GgufMetadata& mmproj_metadata() const { return mmproj_metadata_; }

 private:
  ModelFiles() = default;
  Status OpenHf(const std::string& dir);
  Status OpenGguf(const std::string& path);
  Status OpenMmproj(const std::string& path);
  Status Validate() const;
  Status AddTensor(TensorInfo t);
  // A new zeroed 64-byte-aligned buffer, owned by this object.
  uint8_t* Allocate(size_t nbytes);

  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct FreeDeleter {
    void operator()(uint8_t* p) const;
  };

  std::string path_, mmproj_path_;
  Format format_ = Format::kSafetensors;
  Gemma3Config config_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::vector<std::unique_ptr<uint8_t, FreeDeleter>> owned_;
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t, Hash, std::equal_to<>> index_;
  std::optional<GgufVocab> vocab_;
  GgufMetadata metadata_, mmproj_metadata_;
};

}  // namespace unicorn
