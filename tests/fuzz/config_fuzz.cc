// libFuzzer target: config.json in both dialects (and
// preprocessor_config.json), then the GGUF metadata a valid config turns
// into and back. Built and run by tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "model/gguf_config.h"
#include "model/hf_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unicorn;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  StatusOr<Gemma3Config> c = ParseHfConfig(text, "fuzz/config.json");
  if (!c.ok()) return 0;
  (void)ApplyHfPreprocessorConfig(text, "fuzz/preprocessor_config.json", &*c);
  GgufMetadata md;
  if (TextConfigToGguf(*c, &md).ok()) {
    StatusOr<Gemma3Config> back = TextConfigFromGguf(md, c->vocab_size);
    if (back.ok() && c->has_vision && VisionConfigToGguf(*c, &md).ok()) {
      md.Set("general.architecture", GgufValue::Str("clip"));
      (void)VisionConfigFromGguf(md, &*back);
    }
  }
  return 0;
}
