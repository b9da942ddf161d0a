#include "model/gguf.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>

#include "model/ggml_types.h"
#include "model/shape.h"

namespace unicorn {

std::string_view GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kU8:
      return "u8";
    case GgufType::kI8:
      return "i8";
    case GgufType::kU16:
      return "u16";
    case GgufType::kI16:
      return "i16";
    case GgufType::kU32:
      return "u32";
    case GgufType::kI32:
      return "i32";
    case GgufType::kF32:
      return "f32";
    case GgufType::kBool:
      return "bool";
    case GgufType::kString:
      return "string";
    case GgufType::kArray:
      return "array";
    case GgufType::kU64:
      return "u64";
    case GgufType::kI64:
      return "i64";
    case GgufType::kF64:
      return "f64";
  }
  return "?";
}

double CanonicalF32(float f) {
  if (!std::isfinite(f)) return double(f);
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof(buf), f);
  double d = 0;
  std::from_chars(buf, r.ptr, d);
  return d;
}

namespace {

enum class Kind { kUint, kInt, kFloat, kString, kInvalid };

Kind KindOf(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kU16:
    case GgufType::kU32:
    case GgufType::kU64:
    case GgufType::kBool:
      return Kind::kUint;
    case GgufType::kI8:
    case GgufType::kI16:
    case GgufType::kI32:
    case GgufType::kI64:
      return Kind::kInt;
    case GgufType::kF32:
    case GgufType::kF64:
      return Kind::kFloat;
    case GgufType::kString:
      return Kind::kString;
    case GgufType::kArray:
      break;
  }
  return Kind::kInvalid;
}

// Bytes of one element in the file (for strings: the length prefix only).
size_t ElemBytes(GgufType t) {
  switch (t) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
    case GgufType::kString:
      return 8;
    case GgufType::kArray:
      break;
  }
  return 0;
}

}  // namespace

size_t GgufValue::size() const {
  switch (KindOf(type)) {
    case Kind::kUint:
      return u.size();
    case Kind::kInt:
      return i.size();
    case Kind::kFloat:
      return f.size();
    case Kind::kString:
      return s.size();
    case Kind::kInvalid:
      break;
  }
  return 0;
}

GgufValue GgufValue::Str(std::string v) {
  GgufValue x;
  x.type = GgufType::kString;
  x.s.push_back(std::move(v));
  return x;
}
GgufValue GgufValue::Uint(GgufType t, uint64_t v) {
  GgufValue x;
  x.type = t;
  x.u.push_back(v);
  return x;
}
GgufValue GgufValue::Int(GgufType t, int64_t v) {
  GgufValue x;
  x.type = t;
  x.i.push_back(v);
  return x;
}
GgufValue GgufValue::Float(GgufType t, double v) {
  GgufValue x;
  x.type = t;
  x.f.push_back(t == GgufType::kF32 ? CanonicalF32(float(v)) : v);
  return x;
}
GgufValue GgufValue::UintArray(GgufType t, std::vector<uint64_t> v) {
  GgufValue x;
  x.type = t;
  x.is_array = true;
  x.u = std::move(v);
  return x;
}
GgufValue GgufValue::IntArray(GgufType t, std::vector<int64_t> v) {
  GgufValue x;
  x.type = t;
  x.is_array = true;
  x.i = std::move(v);
  return x;
}
GgufValue GgufValue::FloatArray(GgufType t, std::vector<double> v) {
  GgufValue x;
  x.type = t;
  x.is_array = true;
  x.f = std::move(v);
  if (t == GgufType::kF32) {
    for (double& d : x.f) d = CanonicalF32(float(d));
  }
  return x;
}
GgufValue GgufValue::StrArray(std::vector<std::string> v) {
  GgufValue x;
  x.type = GgufType::kString;
  x.is_array = true;
  x.s = std::move(v);
  return x;
}

// --- GgufMetadata -----------------------------------------------------------

void GgufMetadata::Set(std::string key, GgufValue v) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    entries_[it->second].second = std::move(v);
    return;
  }
  index_.emplace(key, entries_.size());
  entries_.emplace_back(std::move(key), std::move(v));
}

const GgufValue* GgufMetadata::Find(std::string_view key) const {
  auto it = index_.find(key);
  return it == index_.end() ? nullptr : &entries_[it->second].second;
}

namespace {

Status Missing(std::string_view key) {
  return absl::NotFoundError(absl::StrCat("missing metadata key ", std::string(key)));
}
Status WrongType(std::string_view key, const GgufValue& v, std::string_view want) {
  return absl::InvalidArgumentError(
      absl::StrCat("metadata key ", std::string(key), ": expected ", std::string(want), ", got ",
                   v.is_array ? "array of " : "", std::string(GgufTypeName(v.type))));
}

}  // namespace

StatusOr<int64_t> GgufMetadata::Int(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (!v->is_array && v->u.size() == 1 && v->type != GgufType::kBool) {
    if (v->u[0] > uint64_t(std::numeric_limits<int64_t>::max())) {
      return absl::OutOfRangeError(
          absl::StrCat("metadata key ", std::string(key), ": ", v->u[0], " is out of range"));
    }
    return int64_t(v->u[0]);
  }
  if (!v->is_array && v->i.size() == 1) return v->i[0];
  return WrongType(key, *v, "an integer");
}

StatusOr<int64_t> GgufMetadata::Int(std::string_view key, int64_t dflt) const {
  if (!Has(key)) return dflt;
  return Int(key);
}

StatusOr<double> GgufMetadata::Float(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (!v->is_array && v->f.size() == 1) return v->f[0];
  if (!v->is_array && (v->i.size() == 1 || (v->u.size() == 1 && v->type != GgufType::kBool))) {
    UNICORN_ASSIGN_OR_RETURN(int64_t x, Int(key));
    return double(x);
  }
  return WrongType(key, *v, "a number");
}

StatusOr<double> GgufMetadata::Float(std::string_view key, double dflt) const {
  if (!Has(key)) return dflt;
  return Float(key);
}

StatusOr<std::string> GgufMetadata::String(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return Missing(key);
  if (!v->is_array && v->s.size() == 1) return v->s[0];
  return WrongType(key, *v, "a string");
}

StatusOr<std::string> GgufMetadata::String(std::string_view key, std::string dflt) const {
  if (!Has(key)) return dflt;
  return String(key);
}

StatusOr<bool> GgufMetadata::Bool(std::string_view key, bool dflt) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return dflt;
  if (!v->is_array && v->type == GgufType::kBool && v->u.size() == 1) return v->u[0] != 0;
  return WrongType(key, *v, "a bool");
}

// --- Parser -----------------------------------------------------------------

namespace {

// Bounds-checked little-endian cursor over the file image.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : b_(b) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return b_.size() - pos_; }

  template <typename T>
  Status Read(T* out, const char* what) {
    if (remaining() < sizeof(T)) return Truncated(what);
    std::memcpy(out, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  Status ReadString(std::string* out, const char* what) {
    uint64_t n = 0;
    UNICORN_RETURN_IF_ERROR(Read(&n, what));
    if (n > remaining()) {
      return absl::InvalidArgumentError(absl::StrCat("string length ", n, " of ", what,
                                                     " at offset ", pos_ - 8, " exceeds the file (",
                                                     remaining(), " bytes left)"));
    }
    out->assign(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return absl::OkStatus();
  }

  Status Truncated(const char* what) const {
    return absl::InvalidArgumentError(absl::StrCat("truncated file: ", what, " at offset ", pos_,
                                                   " runs past the end (", b_.size(), " bytes)"));
  }

 private:
  std::span<const uint8_t> b_;
  size_t pos_ = 0;
};

// n elements stored as `Stored`, held widened in `out`.
template <typename Stored, typename Held>
Status ReadAll(Reader& r, uint64_t n, std::vector<Held>* out) {
  out->resize(n);
  for (uint64_t k = 0; k < n; ++k) {
    Stored x{};
    UNICORN_RETURN_IF_ERROR(r.Read(&x, "value"));
    (*out)[k] = Held(x);
  }
  return absl::OkStatus();
}

Status ReadElements(Reader& r, GgufType t, uint64_t n, GgufValue* v) {
  const size_t eb = ElemBytes(t);
  if (eb == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(t == GgufType::kArray ? "nested arrays are not supported"
                                           : "unknown value type " + std::to_string(uint32_t(t))));
  }
  if (n > r.remaining() / eb) {
    return absl::InvalidArgumentError(
        absl::StrCat("array of ", n, " ", std::string(GgufTypeName(t)), " cannot fit in the ",
                     r.remaining(), " bytes left"));
  }
  v->type = t;
  switch (t) {
    case GgufType::kU8:
      return ReadAll<uint8_t>(r, n, &v->u);
    case GgufType::kU16:
      return ReadAll<uint16_t>(r, n, &v->u);
    case GgufType::kU32:
      return ReadAll<uint32_t>(r, n, &v->u);
    case GgufType::kU64:
      return ReadAll<uint64_t>(r, n, &v->u);
    case GgufType::kI8:
      return ReadAll<int8_t>(r, n, &v->i);
    case GgufType::kI16:
      return ReadAll<int16_t>(r, n, &v->i);
    case GgufType::kI32:
      return ReadAll<int32_t>(r, n, &v->i);
    case GgufType::kI64:
      return ReadAll<int64_t>(r, n, &v->i);
    case GgufType::kF64:
      return ReadAll<double>(r, n, &v->f);
    case GgufType::kBool: {
      UNICORN_RETURN_IF_ERROR(ReadAll<uint8_t>(r, n, &v->u));
      for (uint64_t& x : v->u) x = x != 0;
      return absl::OkStatus();
    }
    case GgufType::kF32: {
      std::vector<float> f;
      UNICORN_RETURN_IF_ERROR(ReadAll<float>(r, n, &f));
      v->f.resize(n);
      for (uint64_t k = 0; k < n; ++k) v->f[k] = CanonicalF32(f[k]);
      return absl::OkStatus();
    }
    case GgufType::kString:
      v->s.resize(n);
      for (uint64_t k = 0; k < n; ++k) UNICORN_RETURN_IF_ERROR(r.ReadString(&v->s[k], "string"));
      return absl::OkStatus();
    case GgufType::kArray:
      break;
  }
  return absl::OkStatus();
}

Status ReadKv(Reader& r, GgufMetadata* md) {
  std::string key;
  UNICORN_RETURN_IF_ERROR(r.ReadString(&key, "metadata key"));
  if (key.empty()) return absl::InvalidArgumentError("empty metadata key");
  if (md->Has(key)) return absl::InvalidArgumentError(absl::StrCat("duplicate metadata key ", key));
  uint32_t type = 0;
  UNICORN_RETURN_IF_ERROR(r.Read(&type, "value type"));
  GgufValue v;
  uint64_t n = 1;
  if (type == uint32_t(GgufType::kArray)) {
    v.is_array = true;
    UNICORN_RETURN_IF_ERROR(r.Read(&type, "array element type"));
    UNICORN_RETURN_IF_ERROR(r.Read(&n, "array length"));
  }
  Status s = ReadElements(r, GgufType(type), n, &v);
  if (!s.ok()) return Annotate(s, absl::StrCat("metadata key ", key));
  md->Set(std::move(key), std::move(v));
  return absl::OkStatus();
}

Status ReadTensorInfo(Reader& r, GgufTensor* t) {
  UNICORN_RETURN_IF_ERROR(r.ReadString(&t->name, "tensor name"));
  const std::string ctx = absl::StrCat("tensor ", t->name);
  if (t->name.empty()) return absl::InvalidArgumentError("empty tensor name");
  if (t->name.size() > kGgufMaxName) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx, ": name longer than ", kGgufMaxName, " bytes"));
  }
  uint32_t n_dims = 0;
  UNICORN_RETURN_IF_ERROR(r.Read(&n_dims, "tensor n_dims"));
  if (n_dims > uint32_t(kGgufMaxDims)) {
    return absl::InvalidArgumentError(
        absl::StrCat(ctx, ": ", n_dims, " dimensions (at most ", kGgufMaxDims, ")"));
  }
  std::vector<int64_t> ne(n_dims);
  uint64_t numel = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    uint64_t x = 0;
    UNICORN_RETURN_IF_ERROR(r.Read(&x, "tensor dimension"));
    // 2^50 elements per dimension and 2^60 in all are far beyond any model
    // and keep every later product from overflowing.
    if (x > (uint64_t(1) << 50)) {
      return absl::InvalidArgumentError(absl::StrCat(ctx, ": absurd dimension ", x));
    }
    ne[d] = int64_t(x);
    if (x != 0 && numel > (uint64_t(1) << 60) / x) {
      return absl::InvalidArgumentError(absl::StrCat(ctx, ": absurd element count"));
    }
    numel *= x;
  }
  t->shape.assign(ne.rbegin(), ne.rend());
  UNICORN_RETURN_IF_ERROR(r.Read(&t->ggml_type, "tensor type"));
  const GgmlTypeInfo* ti = FindGgmlType(t->ggml_type);
  if (ti == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": unknown tensor type ", t->ggml_type));
  }
  const int64_t row = n_dims == 0 ? 1 : ne[0];
  if (row % ti->block_elems != 0) {
    return absl::InvalidArgumentError(absl::StrCat(ctx, ": rows of ", row, " ", ti->name,
                                                   " elements are not a multiple of the block "
                                                   "size ",
                                                   ti->block_elems));
  }
  t->nbytes = size_t(numel / ti->block_elems) * size_t(ti->block_bytes);
  UNICORN_RETURN_IF_ERROR(r.Read(&t->offset, "tensor offset"));
  return absl::OkStatus();
}

StatusOr<GgufFile> ParseImpl(std::span<const uint8_t> bytes) {
  Reader r(bytes);
  uint32_t magic = 0;
  if (bytes.size() < 4) return absl::InvalidArgumentError("truncated file: no GGUF magic");
  UNICORN_RETURN_IF_ERROR(r.Read(&magic, "magic"));
  if (std::memcmp(bytes.data(), "GGUF", 4) != 0) {
    return absl::InvalidArgumentError("not a GGUF file (wrong magic)");
  }
  GgufFile f;
  UNICORN_RETURN_IF_ERROR(r.Read(&f.version, "version"));
  if (f.version != 0 && (f.version & 0xffff) == 0) {
    return absl::InvalidArgumentError("big-endian GGUF files are not supported");
  }
  if (f.version == 1) {
    return absl::InvalidArgumentError("GGUF version 1 is not supported (re-convert the model)");
  }
  if (f.version != 2 && f.version != 3) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported GGUF version ", f.version));
  }
  uint64_t n_tensors = 0, n_kv = 0;
  UNICORN_RETURN_IF_ERROR(r.Read(&n_tensors, "tensor count"));
  UNICORN_RETURN_IF_ERROR(r.Read(&n_kv, "metadata count"));
  // Every tensor info takes at least 24 bytes, every key/value pair 13.
  if (n_tensors > r.remaining() / 24) {
    return absl::InvalidArgumentError(
        absl::StrCat("tensor count ", n_tensors, " cannot fit in a ", bytes.size(), "-byte file"));
  }
  if (n_kv > r.remaining() / 13) {
    return absl::InvalidArgumentError(
        absl::StrCat("metadata count ", n_kv, " cannot fit in a ", bytes.size(), "-byte file"));
  }
  for (uint64_t k = 0; k < n_kv; ++k) UNICORN_RETURN_IF_ERROR(ReadKv(r, &f.metadata));

  if (const GgufValue* a = f.metadata.Find("general.alignment")) {
    if (a->is_array || a->type != GgufType::kU32) {
      return absl::InvalidArgumentError("general.alignment must be a u32");
    }
    const uint64_t al = a->u[0];
    if (al == 0 || (al & (al - 1)) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("general.alignment ", al, " is not a power of two"));
    }
    f.alignment = uint32_t(al);
  }

  f.tensors.resize(n_tensors);
  std::unordered_map<std::string_view, size_t> names;
  for (uint64_t k = 0; k < n_tensors; ++k) {
    UNICORN_RETURN_IF_ERROR(ReadTensorInfo(r, &f.tensors[k]));
    if (!names.emplace(f.tensors[k].name, k).second) {
      return absl::InvalidArgumentError(absl::StrCat("duplicate tensor name ", f.tensors[k].name));
    }
  }

  const uint64_t al = f.alignment;
  f.data_start = (uint64_t(r.pos()) + al - 1) / al * al;
  if (n_tensors > 0 && f.data_start > bytes.size()) {
    return absl::InvalidArgumentError(absl::StrCat("truncated file: the data section starts at ",
                                                   f.data_start, ", past the end (", bytes.size(),
                                                   " bytes)"));
  }
  const uint64_t data_size = bytes.size() - std::min<uint64_t>(f.data_start, bytes.size());
  for (GgufTensor& t : f.tensors) {
    if (t.offset % al != 0) {
      return absl::InvalidArgumentError(absl::StrCat("tensor ", t.name, ": data offset ", t.offset,
                                                     " is not a multiple of the alignment ", al));
    }
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor ", t.name, " ", ShapeString(t.shape), ": data [", f.data_start + t.offset, ", ",
          f.data_start + t.offset + t.nbytes, ") out of file bounds (", bytes.size(), " bytes)"));
    }
    t.data = bytes.data() + f.data_start + t.offset;
  }
  std::vector<size_t> order(f.tensors.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return f.tensors[a].offset < f.tensors[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const GgufTensor& prev = f.tensors[order[k - 1]];
    const GgufTensor& cur = f.tensors[order[k]];
    if (prev.nbytes > 0 && cur.nbytes > 0 && prev.offset + prev.nbytes > cur.offset) {
      return absl::InvalidArgumentError(
          absl::StrCat("tensor ", cur.name, ": data at offset ", cur.offset, " overlaps tensor ",
                       prev.name, " [", prev.offset, ", ", prev.offset + prev.nbytes, ")"));
    }
  }
  return f;
}

}  // namespace

StatusOr<GgufFile> ParseGguf(std::span<const uint8_t> bytes, const std::string& name) {
  StatusOr<GgufFile> f = ParseImpl(bytes);
  if (!f.ok()) return Annotate(f.status(), absl::StrCat("[gguf] ", name));
  return f;
}

}  // namespace unicorn
