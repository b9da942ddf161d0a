#include "model/model_files.h"

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>

#include "absl/strings/ascii.h"
#include "common/log.h"
#include "model/config_check.h"
#include "model/expected_tensors.h"
#include "model/ggml_types.h"
#include "model/gguf_config.h"
#include "model/hf_config.h"
#include "model/name_map.h"
#include "model/names.h"
#include "model/quant.h"
#include "model/safetensors.h"
#include "model/shape.h"
#include "model/text_file.h"

namespace unicorn {

namespace fs = std::filesystem;

namespace {

Status Bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

// Collects tensors a model file has but Unicorn does not use, for one warning.
struct Ignored {
  std::vector<std::string> names;
  void Warn(const std::string& file) const {
    if (names.empty()) return;
    std::string some;
    for (size_t k = 0; k < names.size() && k < 3; ++k)
      absl::StrAppend(&some, k ? ", " : "", names[k]);
    LOG_WARN("[model] {}: ignoring {} unused tensor(s): {}{}", file, names.size(), some,
             names.size() > 3 ? ", ..." : "");
  }
};

// out[c][r] = in[r][c] for a [rows, cols] matrix of `elem`-byte elements.
void Transpose(const uint8_t* in, uint8_t* out, int64_t rows, int64_t cols, size_t elem) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      std::memcpy(out + (size_t(c) * rows + r) * elem, in + (size_t(r) * cols + c) * elem, elem);
    }
  }
}

std::set<std::string> Names(const std::vector<ExpectedTensor>& v) {
  std::set<std::string> s;
  for (const ExpectedTensor& e : v) s.insert(e.name);
  return s;
}

}  // namespace

void ModelFiles::FreeDeleter::operator()(uint8_t* p) const { std::free(p); }

ModelFiles::~ModelFiles() = default;

uint8_t* ModelFiles::Allocate(size_t nbytes) {
  const size_t n = (std::max<size_t>(nbytes, 1) + 63) / 64 * 64;
  uint8_t* p = static_cast<uint8_t*>(std::aligned_alloc(64, n));
  UNICORN_CHECK(p != nullptr);
  std::memset(p, 0, n);
  owned_.emplace_back(p);
  return p;
}

Status ModelFiles::AddTensor(TensorInfo t) {
  if (index_.count(t.name)) {
    return Bad(absl::StrCat("[model] ", path_, ": tensor ", t.name, " appears twice"));
  }
  index_.emplace(t.name, tensors_.size());
  tensors_.push_back(std::move(t));
  return absl::OkStatus();
}

const TensorInfo* ModelFiles::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

StatusOr<const TensorInfo*> ModelFiles::Get(std::string_view name) const {
  const TensorInfo* t = Find(name);
  if (t == nullptr) {
    return absl::NotFoundError(absl::StrCat("[model] ", path_, ": no tensor ", std::string(name)));
  }
  return t;
}

std::string ModelFiles::dir() const {
  if (format_ == Format::kSafetensors) return path_;
  fs::path parent = fs::path(path_).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

void ModelFiles::WillNeed(const TensorInfo& t) const {
  for (const auto& f : files_) {
    if (t.data >= f->data() && t.data < f->data() + f->size()) {
      f->WillNeed(size_t(t.data - f->data()), t.nbytes);
      return;
    }
  }
}

void ModelFiles::DontNeed(const TensorInfo& t) const {
  for (const auto& f : files_) {
    if (t.data >= f->data() && t.data < f->data() + f->size()) {
      f->DontNeed(size_t(t.data - f->data()), t.nbytes);
      return;
    }
  }
}

StatusOr<std::unique_ptr<ModelFiles>> ModelFiles::Open(const std::string& path,
                                                       const std::string& mmproj) {
  std::unique_ptr<ModelFiles> m(new ModelFiles());
  m->path_ = path;
  m->mmproj_path_ = mmproj;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) {
    return absl::NotFoundError(absl::StrCat("[model] ", path, ": no such file or folder"));
  }
  if (fs::is_directory(st)) {
    if (!mmproj.empty()) {
      return Bad(absl::StrCat("[model] ", path,
                              ": an mmproj goes with a GGUF model; a Hugging Face folder "
                              "carries its own vision tower"));
    }
    m->format_ = Format::kSafetensors;
    UNICORN_RETURN_IF_ERROR(m->OpenHf(path));
  } else {
    m->format_ = Format::kGguf;
    UNICORN_RETURN_IF_ERROR(m->OpenGguf(path));
    if (!mmproj.empty()) UNICORN_RETURN_IF_ERROR(m->OpenMmproj(mmproj));
  }
  UNICORN_RETURN_IF_ERROR(m->Validate());
  return m;
}

// --- Hugging Face folders -----------------------------------------------------

Status ModelFiles::OpenHf(const std::string& dir) {
  UNICORN_ASSIGN_OR_RETURN(config_, LoadHfConfig(dir));

  // The shard files, and which tensors the index says each one holds.
  std::vector<std::string> shards;
  std::map<std::string, std::string> weight_map;
  const std::string single = dir + "/model.safetensors";
  const std::string index = dir + "/model.safetensors.index.json";
  if (fs::exists(single)) {
    shards.push_back("model.safetensors");
  } else if (fs::exists(index)) {
    UNICORN_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(index, "safetensors"));
    UNICORN_ASSIGN_OR_RETURN(weight_map, ParseSafetensorsIndex(text, index));
    std::set<std::string> unique;
    for (const auto& [t, f] : weight_map) unique.insert(f);
    shards.assign(unique.begin(), unique.end());
  } else {
    return absl::NotFoundError(absl::StrCat("[model] ", dir,
                                            ": no model.safetensors or "
                                            "model.safetensors.index.json"));
  }

  Ignored ignored;
  std::map<std::string, std::string> found;          // HF name -> shard
  std::map<std::string, std::string> internal_from;  // internal name -> HF name
  for (const std::string& shard : shards) {
    const std::string file = dir + "/" + shard;
    UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mf, MappedFile::Open(file));
    UNICORN_ASSIGN_OR_RETURN(SafetensorsFile sf, ParseSafetensors(mf->bytes(), file));
    for (const SafetensorsTensor& st : sf.tensors) {
      if (!found.emplace(st.name, shard).second) {
        return Bad(absl::StrCat("[model] ", dir, ": tensor ", st.name, " is in both ",
                                found[st.name], " and ", shard));
      }
      std::optional<HfNameMapping> m = MapHfName(st.name);
      if (!m || (m->internal == kOutputWeight && config_.tie_word_embeddings) ||
          (!config_.has_vision &&
           (m->internal.rfind("v.", 0) == 0 || m->internal.rfind("mm.", 0) == 0))) {
        if (!m) ignored.names.push_back(st.name);
        continue;
      }
      if (auto [it, fresh] = internal_from.emplace(m->internal, st.name); !fresh) {
        return Bad(absl::StrCat("[model] ", dir, ": tensors ", it->second, " and ", st.name,
                                " both map to ", m->internal));
      }
      TensorInfo t{m->internal, st.dtype, st.shape, st.data, st.nbytes, file};
      const size_t elem = size_t(Traits(st.dtype).block_bytes);
      if (m->transpose) {
        if (t.shape.size() != 2) {
          return Bad(absl::StrCat("[model] ", file, ": ", st.name, ": shape ", ShapeString(t.shape),
                                  " is not a matrix"));
        }
        uint8_t* buf = Allocate(t.nbytes);
        Transpose(st.data, buf, t.shape[0], t.shape[1], elem);
        t.shape = {t.shape[1], t.shape[0]};
        t.data = buf;
      } else if (reinterpret_cast<uintptr_t>(t.data) % elem != 0) {
        uint8_t* buf = Allocate(t.nbytes);
        std::memcpy(buf, t.data, t.nbytes);
        t.data = buf;
      }
      UNICORN_RETURN_IF_ERROR(AddTensor(std::move(t)));
    }
    files_.push_back(std::move(mf));
  }
  for (const auto& [tensor, shard] : weight_map) {
    auto it = found.find(tensor);
    if (it == found.end() || it->second != shard) {
      return Bad(absl::StrCat("[model] ", index, ": weight_map puts ", tensor, " in ", shard,
                              ", but it is not there"));
    }
  }
  ignored.Warn(dir);
  return absl::OkStatus();
}

// --- GGUF ---------------------------------------------------------------------

namespace {

StatusOr<DType> SupportedType(const GgufTensor& t, const std::string& file) {
  const GgmlTypeInfo* ti = FindGgmlType(t.ggml_type);
  if (ti == nullptr || !ti->dtype) {
    return absl::UnimplementedError(absl::StrCat("[gguf] ", file, ": unsupported tensor type ",
                                                 absl::AsciiStrToUpper(GgmlTypeName(t.ggml_type)),
                                                 " in tensor ", t.name,
                                                 " (supported: F32, F16, BF16, Q8_0, Q4_0, Q2_K, Q3_K, Q4_K, Q5_K, "
                                                 "Q6_K, UNICORN_NF4)"));
  }
  return *ti->dtype;
}

// blk.N.attn_qkv.weight -> N, or -1.
int FusedQkvLayer(const std::string& name) {
  constexpr std::string_view kSuffix = ".attn_qkv.weight";
  if (name.rfind("blk.", 0) != 0 || name.size() <= 4 + kSuffix.size() ||
      name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0) {
    return -1;
  }
  const std::string digits = name.substr(4, name.size() - 4 - kSuffix.size());
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return -1;
  }
  return std::stoi(digits);
}

// Converts GGUF tensors to the internal conventions (see the header comment)
// and adds the ones in `wanted`.
Status ConvertGgufTensors(const GgufFile& f, const std::string& file,
                          const std::set<std::string>& wanted, const Gemma3Config& c,
                          const std::function<uint8_t*(size_t)>& allocate,
                          const std::function<Status(TensorInfo)>& add, Ignored* ignored) {
  for (const GgufTensor& g : f.tensors) {
    const int qkv_layer = FusedQkvLayer(g.name);
    if (!wanted.count(g.name) && qkv_layer < 0) {
      ignored->names.push_back(g.name);
      continue;
    }
    UNICORN_ASSIGN_OR_RETURN(DType dtype, SupportedType(g, file));
    TensorInfo t{g.name, dtype, g.shape, g.data, g.nbytes, file};
    if (qkv_layer >= 0) {
      // Rows of Q, then K, then V (conversion/base.py, ModelBase.modify_tensors, fuse_qkv).
      const int64_t q = int64_t(c.num_heads) * c.head_dim,
                    kv = int64_t(c.num_kv_heads) * c.head_dim;
      if (t.shape.size() != 2 || t.shape[0] != q + 2 * kv) {
        return Bad(absl::StrCat("[model] ", file, ": ", g.name, ": shape ", ShapeString(t.shape),
                                " but the config needs [", q + 2 * kv, ", ", c.hidden_size, "]"));
      }
      const size_t row = RowBytes(dtype, t.shape[1]);
      int64_t first = 0;
      for (auto [what, rows] :
           {std::pair{"attn_q", q}, std::pair{"attn_k", kv}, std::pair{"attn_v", kv}}) {
        TensorInfo part{names::Blk(qkv_layer, what), dtype,
                        {rows, t.shape[1]},          g.data + size_t(first) * row,
                        size_t(rows) * row,          file};
        UNICORN_RETURN_IF_ERROR(add(std::move(part)));
        first += rows;
      }
      continue;
    }
    if (IsGemmaRmsNorm(g.name)) {  // 1 + w -> w, as f32
      const int64_t n = t.numel();
      const int64_t row = t.shape.empty() ? 1 : t.shape.back();
      float* out = reinterpret_cast<float*>(allocate(size_t(n) * 4));
      const size_t row_bytes = RowBytes(dtype, row);
      for (int64_t r = 0; r < (row ? n / row : 0); ++r) {
        DequantizeRow(dtype, g.data + size_t(r) * row_bytes, out + r * row, row);
      }
      for (int64_t k = 0; k < n; ++k) out[k] -= 1.0f;
      t.dtype = DType::kF32;
      t.data = reinterpret_cast<const uint8_t*>(out);
      t.nbytes = size_t(n) * 4;
    } else if (g.name ==
               "mm.input_projection.weight") {  // [v_hidden, hidden] -> [hidden, v_hidden]
      if (t.shape.size() != 2) {
        return Bad(absl::StrCat("[model] ", file, ": ", g.name, ": shape ", ShapeString(t.shape),
                                " is not a matrix"));
      }
      const int64_t rows = t.shape[0], cols = t.shape[1];
      const uint8_t* src = g.data;
      size_t elem = size_t(Traits(dtype).block_bytes);
      if (Traits(dtype).block_elems != 1) {  // quantized: dequantize first
        float* deq = reinterpret_cast<float*>(allocate(size_t(rows * cols) * 4));
        for (int64_t r = 0; r < rows; ++r) {
          DequantizeRow(dtype, g.data + size_t(r) * RowBytes(dtype, cols), deq + r * cols, cols);
        }
        src = reinterpret_cast<const uint8_t*>(deq);
        elem = 4;
        t.dtype = DType::kF32;
      }
      uint8_t* out = allocate(size_t(rows * cols) * elem);
      Transpose(src, out, rows, cols, elem);
      t.shape = {cols, rows};
      t.data = out;
      t.nbytes = size_t(rows * cols) * elem;
    }
    UNICORN_RETURN_IF_ERROR(add(std::move(t)));
  }
  return absl::OkStatus();
}

}  // namespace

Status ModelFiles::OpenGguf(const std::string& path) {
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mf, MappedFile::Open(path));
  UNICORN_ASSIGN_OR_RETURN(GgufFile f, ParseGguf(mf->bytes(), path));
  int64_t embd_rows = -1;
  bool has_output = false;
  for (const GgufTensor& t : f.tensors) {
    if (t.name == names::kTokenEmbd && !t.shape.empty()) embd_rows = t.shape[0];
    has_output |= t.name == kOutputWeight;
  }
  StatusOr<Gemma3Config> c = TextConfigFromGguf(f.metadata, embd_rows);
  if (!c.ok()) return Annotate(c.status(), absl::StrCat("[gguf] ", path));
  config_ = std::move(*c);
  config_.tie_word_embeddings = !has_output;
  StatusOr<std::optional<GgufVocab>> v = VocabFromGguf(f.metadata);
  if (!v.ok()) return Annotate(v.status(), absl::StrCat("[gguf] ", path));
  vocab_ = std::move(*v);

  Ignored ignored;
  UNICORN_RETURN_IF_ERROR(ConvertGgufTensors(
      f, path, Names(ExpectedTextTensors(config_)), config_,
      [this](size_t n) { return Allocate(n); },
      [this](TensorInfo t) { return AddTensor(std::move(t)); }, &ignored));
  ignored.Warn(path);
  metadata_ = std::move(f.metadata);
  files_.push_back(std::move(mf));
  return absl::OkStatus();
}

Status ModelFiles::OpenMmproj(const std::string& path) {
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> mf, MappedFile::Open(path));
  UNICORN_ASSIGN_OR_RETURN(GgufFile f, ParseGguf(mf->bytes(), path));
  Status s = VisionConfigFromGguf(f.metadata, &config_);
  if (!s.ok()) return Annotate(s, absl::StrCat("[gguf] ", path));
  Ignored ignored;
  UNICORN_RETURN_IF_ERROR(ConvertGgufTensors(
      f, path, Names(ExpectedVisionTensors(config_)), config_,
      [this](size_t n) { return Allocate(n); },
      [this](TensorInfo t) { return AddTensor(std::move(t)); }, &ignored));
  ignored.Warn(path);
  mmproj_metadata_ = std::move(f.metadata);
  files_.push_back(std::move(mf));
  return absl::OkStatus();
}

// --- Validation ---------------------------------------------------------------

Status ModelFiles::Validate() const {
  const std::string ctx = absl::StrCat("[model] ", path_);
  UNICORN_RETURN_IF_ERROR(Annotate(ValidateConfig(config_), ctx));
  std::vector<ExpectedTensor> want = ExpectedTextTensors(config_);
  std::vector<ExpectedTensor> vision = ExpectedVisionTensors(config_);
  want.insert(want.end(), vision.begin(), vision.end());
  for (const ExpectedTensor& e : want) {
    const TensorInfo* t = Find(e.name);
    if (t == nullptr) {
      return absl::NotFoundError(absl::StrCat(ctx, ": missing tensor ", e.name,
                                              " (the config needs ", ShapeString(e.shape), ")"));
    }
    if (t->shape != e.shape) {
      return Bad(absl::StrCat(ctx, ": ", e.name, ": shape ", ShapeString(t->shape),
                              " but the config needs ", ShapeString(e.shape)));
    }
  }
  return absl::OkStatus();
}

}  // namespace unicorn
