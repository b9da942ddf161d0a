#include "model/safetensors.h"

#include <algorithm>
#include <cstring>

#include "model/shape.h"
#include "nlohmann/json.hpp"

namespace unicorn {
namespace {

using nlohmann::json;

Status Bad(const std::string& msg) { return absl::InvalidArgumentError(msg); }

StatusOr<DType> DTypeOf(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  return Bad(absl::StrCat("unsupported dtype ", s, " (F32, F16 and BF16 are supported)"));
}

// A non-negative JSON integer no larger than `max`.
bool GetCount(const json& j, uint64_t max, uint64_t* out) {
  if (!j.is_number_unsigned()) return false;
  *out = j.get<uint64_t>();
  return *out <= max;
}

Status ParseEntry(const std::string& key, const json& v, uint64_t data_size, const uint8_t* data,
                  SafetensorsTensor* t) {
  t->name = key;
  if (!v.is_object()) return Bad("entry is not an object");
  auto dt = v.find("dtype");
  auto sh = v.find("shape");
  auto off = v.find("data_offsets");
  if (dt == v.end() || !dt->is_string()) return Bad("missing or non-string \"dtype\"");
  if (sh == v.end() || !sh->is_array()) return Bad("missing or non-array \"shape\"");
  if (off == v.end() || !off->is_array() || off->size() != 2) {
    return Bad("\"data_offsets\" must be [begin, end]");
  }
  UNICORN_ASSIGN_OR_RETURN(t->dtype, DTypeOf(dt->get<std::string>()));
  if (sh->size() > 8) return Bad(absl::StrCat(sh->size(), " dimensions"));
  uint64_t numel = 1;
  for (const json& d : *sh) {
    uint64_t x = 0;
    if (!GetCount(d, uint64_t(1) << 50, &x)) return Bad("shape has a bad dimension");
    t->shape.push_back(int64_t(x));
    if (x != 0 && numel > (uint64_t(1) << 60) / x) return Bad("absurd element count");
    numel *= x;
  }
  uint64_t begin = 0, end = 0;
  if (!GetCount((*off)[0], UINT64_MAX, &begin) || !GetCount((*off)[1], UINT64_MAX, &end) ||
      begin > end) {
    return Bad("\"data_offsets\" must be non-negative integers with begin <= end");
  }
  if (end > data_size) {
    return Bad(absl::StrCat("data [", begin, ", ", end, ") out of the data section (", data_size,
                            " bytes)"));
  }
  const uint64_t want = numel * Traits(t->dtype).block_bytes;
  if (end - begin != want) {
    return Bad(absl::StrCat("shape ", ShapeString(t->shape), " x ",
                            std::string(Traits(t->dtype).name), " is ", want,
                            " bytes but data_offsets span ", end - begin));
  }
  t->data = data + begin;
  t->nbytes = size_t(end - begin);
  return absl::OkStatus();
}

StatusOr<SafetensorsFile> ParseImpl(std::span<const uint8_t> bytes) {
  if (bytes.size() < 8) return Bad("truncated file: no header length");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kSafetensorsMaxHeader) {
    return Bad(absl::StrCat("header length ", n, " is absurd (limit ", kSafetensorsMaxHeader, ")"));
  }
  if (n > bytes.size() - 8) {
    return Bad(absl::StrCat("truncated file: header length ", n, " runs past the end (",
                            bytes.size(), " bytes)"));
  }
  const char* text = reinterpret_cast<const char*>(bytes.data() + 8);
  json header = json::parse(text, text + n, nullptr, /*allow_exceptions=*/false);
  if (header.is_discarded()) return Bad("header is not valid JSON");
  if (!header.is_object()) return Bad("header is not a JSON object");

  SafetensorsFile f;
  f.data_start = 8 + n;
  const uint64_t data_size = bytes.size() - f.data_start;
  const uint8_t* data = bytes.data() + f.data_start;
  for (const auto& [key, v] : header.items()) {
    if (key == "__metadata__") {
      if (!v.is_object()) return Bad("__metadata__ is not an object");
      for (const auto& [mk, mv] : v.items()) {
        if (!mv.is_string()) return Bad(absl::StrCat("__metadata__.", mk, " is not a string"));
        f.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    SafetensorsTensor t;
    Status s = ParseEntry(key, v, data_size, data, &t);
    if (!s.ok()) return Annotate(s, absl::StrCat("tensor ", key));
    f.tensors.push_back(std::move(t));
  }
  std::sort(f.tensors.begin(), f.tensors.end(),
            [](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.data < b.data; });
  for (size_t k = 1; k < f.tensors.size(); ++k) {
    const SafetensorsTensor& a = f.tensors[k - 1];
    const SafetensorsTensor& b = f.tensors[k];
    if (a.nbytes > 0 && b.nbytes > 0 && a.data + a.nbytes > b.data) {
      return Bad(absl::StrCat("tensor ", b.name, ": data overlap tensor ", a.name));
    }
  }
  return f;
}

}  // namespace

StatusOr<SafetensorsFile> ParseSafetensors(std::span<const uint8_t> bytes,
                                           const std::string& name) {
  StatusOr<SafetensorsFile> f;
  try {
    f = ParseImpl(bytes);
  } catch (const json::exception& e) {  // defensive: every access above is type-checked
    f = Bad(e.what());
  }
  if (!f.ok()) return Annotate(f.status(), absl::StrCat("[safetensors] ", name));
  return f;
}

StatusOr<std::map<std::string, std::string>> ParseSafetensorsIndex(std::string_view text,
                                                                   const std::string& name) {
  const std::string ctx = absl::StrCat("[safetensors] ", name);
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Bad(absl::StrCat(ctx, ": not a JSON object"));
  auto wm = j.find("weight_map");
  if (wm == j.end() || !wm->is_object()) {
    return Bad(absl::StrCat(ctx, ": missing \"weight_map\" object"));
  }
  std::map<std::string, std::string> out;
  for (const auto& [tensor, file] : wm->items()) {
    if (!file.is_string()) return Bad(absl::StrCat(ctx, ": weight_map.", tensor, " not a string"));
    std::string f = file.get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..") {
      return Bad(absl::StrCat(ctx, ": weight_map.", tensor, ": bad shard file name \"", f, "\""));
    }
    out[tensor] = std::move(f);
  }
  return out;
}

}  // namespace unicorn
