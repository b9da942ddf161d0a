#include "model/gguf_writer.h"

#include <cerrno>
#include <cstring>

#include "model/ggml_types.h"

namespace unicorn {

namespace {
constexpr size_t kBufferBytes = 8 << 20;
constexpr char kZeros[256] = {};
}  // namespace

StatusOr<std::unique_ptr<GgufWriter>> GgufWriter::Create(const std::string& path, Options options) {
  if (options.version != 2 && options.version != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("[gguf] ", path, ": cannot write GGUF version ", options.version));
  }
  const uint32_t al = options.alignment;
  if (al == 0 || (al & (al - 1)) != 0 || al > sizeof(kZeros)) {
    return absl::InvalidArgumentError(absl::StrCat("[gguf] ", path, ": alignment ", al,
                                                   " must be a power of two <= ", sizeof(kZeros)));
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return ErrnoError(absl::StrCat("[gguf] fopen(", path, ")"), errno);
  std::unique_ptr<GgufWriter> w(new GgufWriter(path, f, options));
  w->buffer_ = std::make_unique<char[]>(kBufferBytes);
  std::setvbuf(f, w->buffer_.get(), _IOFBF, kBufferBytes);
  return w;
}

GgufWriter::~GgufWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

void GgufWriter::SetKv(std::string key, GgufValue value) {
  UNICORN_CHECK(!header_written_);
  metadata_.Set(std::move(key), std::move(value));
}

Status GgufWriter::AddTensor(std::string name, DType type, std::vector<int64_t> shape) {
  return AddTensor(std::move(name), GgmlTypeOf(type), std::move(shape));
}

Status GgufWriter::AddTensor(std::string name, uint32_t ggml_type, std::vector<int64_t> shape) {
  UNICORN_CHECK(!header_written_);
  const std::string ctx = absl::StrCat("[gguf] ", path_, ": tensor ", name);
  const GgmlTypeInfo* ti = FindGgmlType(ggml_type);
  if (ti == nullptr) return absl::InvalidArgumentError(absl::StrCat(ctx, ": unknown type"));
  if (name.empty() || name.size() > kGgufMaxName) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx, ": name must have 1..", kGgufMaxName, " bytes"));
  }
  if (shape.size() > size_t(kGgufMaxDims)) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": more than 4 dimensions"));
  }
  for (const Tensor& t : tensors_) {
    if (t.name == name) return absl::InvalidArgumentError(absl::StrCat(ctx, ": declared twice"));
  }
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) return absl::InvalidArgumentError(absl::StrCat(ctx, ": negative dimension"));
    numel *= d;
  }
  const int64_t row = shape.empty() ? 1 : shape.back();
  if (row % ti->block_elems != 0) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": rows of ", row,
                                                   " are not a multiple of the ", ti->name,
                                                   " block size ", ti->block_elems));
  }
  Tensor t{std::move(name), ggml_type, std::move(shape),
           size_t(numel / ti->block_elems) * size_t(ti->block_bytes), 0};
  if (!tensors_.empty()) {
    const Tensor& prev = tensors_.back();
    const uint64_t al = options_.alignment;
    t.offset = (prev.offset + prev.nbytes + al - 1) / al * al;
  }
  tensors_.push_back(std::move(t));
  return absl::OkStatus();
}

Status GgufWriter::Put(const void* data, size_t n) {
  if (n == 0) return absl::OkStatus();
  if (std::fwrite(data, 1, n, file_) != n) {
    return ErrnoError(absl::StrCat("[gguf] write(", path_, ")"), errno);
  }
  written_ += n;
  return absl::OkStatus();
}

Status GgufWriter::PutString(const std::string& s) {
  const uint64_t n = s.size();
  UNICORN_RETURN_IF_ERROR(Put(&n, 8));
  return Put(s.data(), s.size());
}

Status GgufWriter::PutValue(const GgufValue& v) {
  // Each element narrowed to its stored width.
  auto put_all = [this](const auto& values, auto stored) -> Status {
    for (const auto& x : values) {
      const decltype(stored) y = decltype(stored)(x);
      UNICORN_RETURN_IF_ERROR(Put(&y, sizeof(y)));
    }
    return absl::OkStatus();
  };
  switch (v.type) {
    case GgufType::kU8:
    case GgufType::kBool:
      return put_all(v.u, uint8_t());
    case GgufType::kU16:
      return put_all(v.u, uint16_t());
    case GgufType::kU32:
      return put_all(v.u, uint32_t());
    case GgufType::kU64:
      return put_all(v.u, uint64_t());
    case GgufType::kI8:
      return put_all(v.i, int8_t());
    case GgufType::kI16:
      return put_all(v.i, int16_t());
    case GgufType::kI32:
      return put_all(v.i, int32_t());
    case GgufType::kI64:
      return put_all(v.i, int64_t());
    case GgufType::kF32:
      return put_all(v.f, float());
    case GgufType::kF64:
      return put_all(v.f, double());
    case GgufType::kString:
      for (const std::string& x : v.s) UNICORN_RETURN_IF_ERROR(PutString(x));
      return absl::OkStatus();
    case GgufType::kArray:
      break;
  }
  return absl::InvalidArgumentError("nested arrays are not supported");
}

Status GgufWriter::Pad() {
  const uint64_t al = options_.alignment;
  return Put(kZeros, size_t((al - written_ % al) % al));
}

Status GgufWriter::WriteHeader() {
  UNICORN_CHECK(!header_written_);
  if (options_.alignment != kGgufDefaultAlignment && !metadata_.Has("general.alignment")) {
    metadata_.Set("general.alignment", GgufValue::U32(options_.alignment));
  }
  if (const GgufValue* a = metadata_.Find("general.alignment");
      a && (a->type != GgufType::kU32 || a->is_array || a->u[0] != options_.alignment)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[gguf] ", path_, ": general.alignment disagrees with the writer's alignment"));
  }
  header_written_ = true;
  const uint32_t version = options_.version;
  const uint64_t n_tensors = tensors_.size(), n_kv = metadata_.entries().size();
  UNICORN_RETURN_IF_ERROR(Put("GGUF", 4));
  UNICORN_RETURN_IF_ERROR(Put(&version, 4));
  UNICORN_RETURN_IF_ERROR(Put(&n_tensors, 8));
  UNICORN_RETURN_IF_ERROR(Put(&n_kv, 8));
  for (const auto& [key, v] : metadata_.entries()) {
    UNICORN_RETURN_IF_ERROR(PutString(key));
    if (v.is_array) {
      const uint32_t arr = uint32_t(GgufType::kArray), et = uint32_t(v.type);
      const uint64_t n = v.size();
      UNICORN_RETURN_IF_ERROR(Put(&arr, 4));
      UNICORN_RETURN_IF_ERROR(Put(&et, 4));
      UNICORN_RETURN_IF_ERROR(Put(&n, 8));
    } else {
      if (v.size() != 1) {
        return absl::InvalidArgumentError(
            absl::StrCat("[gguf] ", path_, ": scalar key ", key, " holds ", v.size(), " values"));
      }
      const uint32_t t = uint32_t(v.type);
      UNICORN_RETURN_IF_ERROR(Put(&t, 4));
    }
    Status s = PutValue(v);
    if (!s.ok()) return Annotate(s, absl::StrCat("[gguf] ", path_, ": key ", key));
  }
  for (const Tensor& t : tensors_) {
    UNICORN_RETURN_IF_ERROR(PutString(t.name));
    const uint32_t n_dims = uint32_t(t.shape.size());
    UNICORN_RETURN_IF_ERROR(Put(&n_dims, 4));
    for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) {  // ne: innermost first
      const uint64_t d = uint64_t(*it);
      UNICORN_RETURN_IF_ERROR(Put(&d, 8));
    }
    UNICORN_RETURN_IF_ERROR(Put(&t.ggml_type, 4));
    UNICORN_RETURN_IF_ERROR(Put(&t.offset, 8));
  }
  UNICORN_RETURN_IF_ERROR(Pad());
  current_ = 0;
  in_current_ = 0;
  // Skip leading empty tensors so that Write() always appends to a live one.
  while (current_ < tensors_.size() && tensors_[current_].nbytes == 0) ++current_;
  return absl::OkStatus();
}

size_t GgufWriter::CurrentTensorRemaining() const {
  if (current_ >= tensors_.size()) return 0;
  return tensors_[current_].nbytes - in_current_;
}

Status GgufWriter::Write(const void* data, size_t n) {
  UNICORN_CHECK(header_written_);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (current_ >= tensors_.size()) {
      return absl::FailedPreconditionError(
          absl::StrCat("[gguf] ", path_, ": ", n, " bytes written past the last tensor"));
    }
    const size_t take = std::min(n, CurrentTensorRemaining());
    UNICORN_RETURN_IF_ERROR(Put(p, take));
    p += take;
    n -= take;
    in_current_ += take;
    if (CurrentTensorRemaining() == 0) {
      UNICORN_RETURN_IF_ERROR(Pad());
      in_current_ = 0;
      do {
        ++current_;
      } while (current_ < tensors_.size() && tensors_[current_].nbytes == 0);
    }
  }
  return absl::OkStatus();
}

Status GgufWriter::Finish() {
  if (!header_written_) UNICORN_RETURN_IF_ERROR(WriteHeader());
  if (current_ < tensors_.size()) {
    return absl::FailedPreconditionError(
        absl::StrCat("[gguf] ", path_, ": tensor ", tensors_[current_].name, " got ", in_current_,
                     " of its ", tensors_[current_].nbytes, " bytes"));
  }
  std::FILE* f = file_;
  file_ = nullptr;
  if (std::fflush(f) != 0) {
    int err = errno;
    std::fclose(f);
    return ErrnoError(absl::StrCat("[gguf] fflush(", path_, ")"), err);
  }
  if (std::fclose(f) != 0) return ErrnoError(absl::StrCat("[gguf] fclose(", path_, ")"), errno);
  return absl::OkStatus();
}

}  // namespace unicorn
