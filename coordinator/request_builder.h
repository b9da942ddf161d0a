// Client requests -> engine requests, shared by every API the coordinator
// serves (gRPC in grpc_service.cc, OpenAI-compatible HTTP in openai_*.cc), so
// limits, defaults and error messages are the same whichever way a request
// comes in. Errors are INVALID_ARGUMENT with a message for the client.
//
// Images: each one is decoded (PNG or JPEG), resized and normalized here, on
// the client's thread, into the pixel_values the vision worker takes
// (model/image.h); the engine runs the vision tower before the prompt.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/engine.h"
#include "model/chat_template.h"
#include "model/gemma3_config.h"
#include "model/tokenizer.h"

namespace unicorn {

struct ServiceLimits {
  int max_prompt_bytes = 1 << 20;  // 1 MiB of prompt text
  int max_tokens = 8192;           // per request
  int default_max_tokens = 256;
  int max_stop = 16;                  // stop strings per request, each 1..256 bytes
  int max_images = 8;                 // per request
  int64_t max_image_bytes = 8 << 20;  // each, encoded
};

// What the served model and plan can do with images.
struct VisionSupport {
  std::string model_name;   // for errors: "model <name> has no vision tower"
  bool has_vision = false;  // the model has a vision tower (HF folder, or GGUF + mmproj)
  bool has_worker = false;  // the plan names a vision worker
  VisionConfig config;      // image_size, normalization, mm_tokens_per_image
};

// Generation parameters as a client sends them (0 means "off" or "default"
// where noted), before validation.
struct GenerationParams {
  int max_tokens = 0;            // 0 = limits.default_max_tokens
  float temperature = 0;         // 0 = greedy; [0, 100]
  int top_k = 0;                 // 0 = off
  float top_p = 0;               // 0 or 1 = off
  float min_p = 0;               // 0 = off
  float repetition_penalty = 0;  // 0 or 1 = off
  uint64_t seed = 0;
  bool has_seed = false;
  std::vector<std::string> stop;
  bool ignore_eos = false;  // true: EOS/end-of-turn tokens do not end the answer
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// Validates `p` into an engine request without a prompt; stop tokens are the
// tokenizer's end-of-turn ids (none with p.ignore_eos).
StatusOr<EngineRequest> ToEngineRequest(const GenerationParams& p, const ServiceLimits& limits,
                                        const Tokenizer& tokenizer);

// Decodes, resizes and normalizes `images` (encoded PNG/JPEG, in prompt
// order) into r->images (pixel_values [3, image_size, image_size] each) and
// times it (r->preprocess_*_ns, the "image preprocess" trace span). Errors
// (INVALID_ARGUMENT): too many or too large images, a model without a vision
// tower or a plan without a vision worker, an image that does not decode.
Status PreprocessImages(const std::vector<std::string>& images, const VisionSupport& vision,
                        const ServiceLimits& limits, EngineRequest* r);

// A raw prompt (no template): its ids, or an error for an empty or oversized
// prompt. With images, every "<start_of_image>" marker of the prompt stands
// for one image (none: the markers are put in front of the prompt, as `unicorn
// run` does) and is expanded as Gemma3Processor does (model/chat_template.h).
StatusOr<std::vector<int>> EncodeRawPrompt(const std::string& prompt, int n_images,
                                           const ServiceLimits& limits, const Tokenizer& tokenizer,
                                           int mm_tokens_per_image);

// A conversation through Gemma 3's chat template with the generation prompt
// added; image parts (ChatPart::Kind::kImage) are expanded into image tokens.
StatusOr<std::vector<int>> EncodeConversation(const std::vector<ChatMessage>& messages,
                                              const ServiceLimits& limits,
                                              const Tokenizer& tokenizer, int mm_tokens_per_image);

}  // namespace unicorn
