#include "model/npy.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "model/quant.h"

namespace unicorn {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

// Finds the value text of 'key' in a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }.
bool DictValue(const std::string& dict, const std::string& key, std::string* value) {
  size_t k = dict.find("'" + key + "'");
  if (k == std::string::npos) return false;
  size_t colon = dict.find(':', k);
  if (colon == std::string::npos) return false;
  size_t b = colon + 1;
  while (b < dict.size() && dict[b] == ' ') ++b;
  if (b >= dict.size()) return false;
  size_t e;
  if (dict[b] == '\'') {
    e = dict.find('\'', b + 1);
    if (e == std::string::npos) return false;
    *value = dict.substr(b + 1, e - b - 1);
  } else if (dict[b] == '(') {
    e = dict.find(')', b);
    if (e == std::string::npos) return false;
    *value = dict.substr(b + 1, e - b - 1);
  } else {
    e = dict.find_first_of(",}", b);
    if (e == std::string::npos) return false;
    *value = dict.substr(b, e - b);
  }
  return true;
}

struct ElemType {
  char kind;  // 'f', 'i', 'u', 'b'
  int size;
};

StatusOr<ElemType> ParseDescr(const std::string& descr) {
  if (descr.size() < 3 || (descr[0] != '<' && descr[0] != '|' && descr[0] != '=')) {
    return absl::InvalidArgumentError(absl::StrCat("unsupported dtype '", descr, "'"));
  }
  ElemType t{descr[1], std::atoi(descr.c_str() + 2)};
  bool ok = (t.kind == 'f' && (t.size == 2 || t.size == 4 || t.size == 8)) ||
            ((t.kind == 'i' || t.kind == 'u') &&
             (t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8)) ||
            (t.kind == 'b' && t.size == 1);
  if (!ok) return absl::InvalidArgumentError(absl::StrCat("unsupported dtype '", descr, "'"));
  return t;
}

template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

double ElemAsDouble(ElemType t, const uint8_t* p) {
  switch (t.kind) {
    case 'f':
      if (t.size == 2) return F16ToF32(Load<uint16_t>(p));
      if (t.size == 4) return Load<float>(p);
      return Load<double>(p);
    case 'i':
      if (t.size == 1) return Load<int8_t>(p);
      if (t.size == 2) return Load<int16_t>(p);
      if (t.size == 4) return Load<int32_t>(p);
      return double(Load<int64_t>(p));
    default:  // 'u', 'b'
      if (t.size == 1) return Load<uint8_t>(p);
      if (t.size == 2) return Load<uint16_t>(p);
      if (t.size == 4) return Load<uint32_t>(p);
      return double(Load<uint64_t>(p));
  }
}

int64_t ElemAsInt(ElemType t, const uint8_t* p) {
  if (t.kind == 'i' && t.size == 8) return Load<int64_t>(p);
  if (t.kind == 'u' && t.size == 8) return int64_t(Load<uint64_t>(p));
  return int64_t(ElemAsDouble(t, p));
}

}  // namespace

int64_t NpyArray::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

StatusOr<std::vector<float>> NpyArray::ToFloat() const {
  UNICORN_ASSIGN_OR_RETURN(ElemType t, ParseDescr(descr));
  std::vector<float> out(static_cast<size_t>(numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = float(ElemAsDouble(t, &data[i * t.size]));
  return out;
}

StatusOr<std::vector<int64_t>> NpyArray::ToInt64() const {
  UNICORN_ASSIGN_OR_RETURN(ElemType t, ParseDescr(descr));
  std::vector<int64_t> out(static_cast<size_t>(numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = ElemAsInt(t, &data[i * t.size]);
  return out;
}

StatusOr<NpyArray> ParseNpy(const uint8_t* bytes, size_t size, const std::string& what) {
  auto err = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat("[npy] ", what, ": ", msg));
  };
  if (size < 10 || std::memcmp(bytes, kMagic, 6) != 0) return err("not a .npy file (bad magic)");
  int major = bytes[6];
  size_t header_len, header_start;
  if (major == 1) {
    header_len = bytes[8] | size_t(bytes[9]) << 8;
    header_start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) return err("truncated header");
    header_len = Load<uint32_t>(bytes + 8);
    header_start = 12;
  } else {
    return err(absl::StrCat("unsupported format version ", major));
  }
  if (header_start + header_len > size) return err("truncated header");
  std::string dict(reinterpret_cast<const char*>(bytes + header_start), header_len);

  NpyArray a;
  std::string fortran, shape;
  if (!DictValue(dict, "descr", &a.descr) || !DictValue(dict, "fortran_order", &fortran) ||
      !DictValue(dict, "shape", &shape)) {
    return err(absl::StrCat("malformed header: ", dict));
  }
  if (fortran.find("True") != std::string::npos) return err("Fortran order is not supported");
  auto type = ParseDescr(a.descr);
  if (!type.ok()) return err(std::string(type.status().message()));
  std::stringstream ss(shape);
  std::string item;
  while (std::getline(ss, item, ',')) {
    size_t b = item.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    char* end = nullptr;
    long long d = std::strtoll(item.c_str() + b, &end, 10);
    if (d < 0 || end == item.c_str() + b) return err(absl::StrCat("bad shape (", shape, ")"));
    a.shape.push_back(d);
  }
  size_t data_bytes = size_t(a.numel()) * size_t(type->size);
  size_t data_start = header_start + header_len;
  if (size - data_start < data_bytes) {
    return err(
        absl::StrCat("data truncated: need ", data_bytes, " bytes, have ", size - data_start));
  }
  a.data.assign(bytes + data_start, bytes + data_start + data_bytes);
  return a;
}

StatusOr<NpyArray> ReadNpy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat("[npy] cannot open ", path));
  std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  return ParseNpy(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), path);
}

std::string EncodeNpyF32(const float* data, const std::vector<int64_t>& shape) {
  std::string dims;
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    absl::StrAppend(&dims, i ? ", " : "", shape[i]);
    n *= shape[i];
  }
  if (shape.size() == 1) dims += ",";  // a Python 1-tuple: (5,)
  std::string dict =
      absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (", dims, "), }");
  // Pad with spaces so that magic + 2 + 2 + header is a multiple of 64; end with '\n'.
  size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out(kMagic, 6);
  out.push_back('\x01');
  out.push_back('\x00');
  out.push_back(char(dict.size() & 0xff));
  out.push_back(char(dict.size() >> 8));
  out += dict;
  out.append(reinterpret_cast<const char*>(data), size_t(n) * 4);
  return out;
}

Status WriteNpyF32(const std::string& path, const float* data, const std::vector<int64_t>& shape) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return ErrnoError(absl::StrCat("[npy] open ", path, " for writing"), errno);
  std::string bytes = EncodeNpyF32(data, shape);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.close();
  if (!f) return ErrnoError(absl::StrCat("[npy] write ", path), errno);
  return absl::OkStatus();
}

}  // namespace unicorn
