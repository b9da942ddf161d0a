// libFuzzer target: safetensors headers, the shard index and the Hugging
// Face name map. Built and run by tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/name_map.h"
#include "model/safetensors.h"

namespace {
volatile uint8_t g_sink;  // keeps the reads of tensor bytes
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unicorn;
  StatusOr<SafetensorsFile> f = ParseSafetensors({data, size}, "fuzz.safetensors");
  if (f.ok()) {
    for (const SafetensorsTensor& t : f->tensors) {
      if (t.nbytes) g_sink = uint8_t(g_sink ^ t.data[0] ^ t.data[t.nbytes - 1]);
      if (auto m = MapHfName(t.name)) (void)IsGemmaRmsNorm(m->internal);
    }
  }
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)ParseSafetensorsIndex(text, "fuzz.index.json");
  (void)MapHfName(text);
  return 0;
}
