// Streaming GGUF writer: metadata of every value type, tensors of every type
// in model/ggml_types.h, any power-of-two alignment. Tensor data are written
// tensor by tensor, in the order the tensors were declared, so a 15 GB model
// never has to be held in memory:
//
//   UNICORN_ASSIGN_OR_RETURN(auto w, GgufWriter::Create("out.gguf"));
//   w->SetKv("general.architecture", GgufValue::Str("gemma3"));
//   UNICORN_RETURN_IF_ERROR(w->AddTensor("token_embd.weight", DType::kQ8_0, {vocab, hidden}));
//   ...
//   UNICORN_RETURN_IF_ERROR(w->WriteHeader());
//   UNICORN_RETURN_IF_ERROR(w->Write(bytes, n));  // any chunking; padding is automatic
//   UNICORN_RETURN_IF_ERROR(w->Finish());
//
// The layout is the one llama.cpp's gguf_write_to_file produces: tensors
// packed in declaration order, each padded to the alignment.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "model/dtype.h"
#include "model/gguf.h"

namespace unicorn {

class GgufWriter {
 public:
  struct Options {
    uint32_t version = 3;                        // 2 or 3 (same layout)
    uint32_t alignment = kGgufDefaultAlignment;  // written as general.alignment if not 32
  };

  static StatusOr<std::unique_ptr<GgufWriter>> Create(const std::string& path, Options options);
  static StatusOr<std::unique_ptr<GgufWriter>> Create(const std::string& path) {
    return Create(path, Options());
  }
  ~GgufWriter();
  GgufWriter(const GgufWriter&) = delete;
  GgufWriter& operator=(const GgufWriter&) = delete;

  // Metadata; only before WriteHeader(). Setting a key again replaces it.
  void SetKv(std::string key, GgufValue value);
  GgufMetadata& metadata() { return metadata_; }

  // Declares the next tensor. shape is PyTorch order ([out, in]); its last
  // (innermost) dimension must be a multiple of the type's block size.
  Status AddTensor(std::string name, DType type, std::vector<int64_t> shape);
  Status AddTensor(std::string name, uint32_t ggml_type, std::vector<int64_t> shape);

  // Writes header, metadata and tensor infos, then the padding before data.
  Status WriteHeader();

  // Appends data of the current tensor (spilling into the following ones);
  // pads after each completed tensor. Writing past the last tensor fails.
  Status Write(const void* data, size_t n);

  // Bytes the current tensor still expects (0 when all are written).
  size_t CurrentTensorRemaining() const;
  // Index of the tensor that Write() appends to.
  size_t current_tensor() const { return current_; }
  size_t tensor_nbytes(size_t i) const { return tensors_[i].nbytes; }

  // Checks every tensor was written completely, flushes and closes the file.
  Status Finish();

  uint64_t bytes_written() const { return written_; }

 private:
  struct Tensor {
    std::string name;
    uint32_t ggml_type;
    std::vector<int64_t> shape;
    size_t nbytes;
    uint64_t offset;
  };
  GgufWriter(std::string path, std::FILE* f, Options o)
      : path_(std::move(path)), file_(f), options_(o) {}
  Status Put(const void* data, size_t n);
  Status PutString(const std::string& s);
  Status PutValue(const GgufValue& v);
  Status Pad();

  std::string path_;
  std::FILE* file_;
  Options options_;
  GgufMetadata metadata_;
  std::vector<Tensor> tensors_;
  bool header_written_ = false;
  size_t current_ = 0;     // tensor being written
  size_t in_current_ = 0;  // bytes of it written so far
  uint64_t written_ = 0;
  std::unique_ptr<char[]> buffer_;
};

}  // namespace unicorn
