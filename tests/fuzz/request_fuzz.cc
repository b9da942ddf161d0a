// libFuzzer target: client request validation, the translation of a gRPC
// GenerateRequest or ChatRequest (protobuf bytes; the first byte picks which)
// into an engine request (coordinator/request_translate.h), with the demo
// model's tokenizer. Accepted requests must respect the limits.
// Built and run by tools/fuzz.sh.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "coordinator/request_translate.h"

namespace {

const unicorn::Tokenizer& Demo() {
  static auto t = unicorn::Tokenizer::FromFolder(UNICORN_SOURCE_DIR "/models/demo");
  if (!t.ok()) abort();
  return **t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace unicorn;
  if (size == 0) return 0;
  ServiceLimits limits;
  limits.max_prompt_bytes = 4096;  // keeps each run fast; the checks are the same
  StatusOr<EngineRequest> r = absl::InvalidArgumentError("");
  if (data[0] & 1) {
    v1::ChatRequest req;
    if (!req.ParseFromArray(data + 1, int(size - 1))) return 0;
    r = TranslateChat(req, Demo(), VisionSupport{}, limits);
  } else {
    v1::GenerateRequest req;
    if (!req.ParseFromArray(data + 1, int(size - 1))) return 0;
    r = TranslateGenerate(req, Demo(), VisionSupport{}, limits);
  }
  if (!r.ok()) return 0;
  if (r->max_tokens <= 0 || r->max_tokens > limits.max_tokens) abort();
  if (!(r->sampling.top_p > 0 && r->sampling.top_p <= 1)) abort();
  if (r->stop.size() > 16) abort();
  return 0;
}
