// Client requests -> engine requests, shared by every API the coordinator
// serves (gRPC in grpc_service.cc, OpenAI-compatible HTTP in openai_*.cc), so
// limits, defaults and error messages are the same whichever way a request
// comes in. Errors are INVALID_ARGUMENT with a message for the client, or
// UNIMPLEMENTED for what the pipeline cannot do yet (images).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "coordinator/engine.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"

namespace unicorn {

struct ServiceLimits {
  int max_prompt_bytes = 1 << 20;  // 1 MiB of prompt text
  int max_tokens = 8192;           // per request
  int default_max_tokens = 256;
  int max_stop = 16;  // stop strings per request, each 1..256 bytes
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
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

// Validates `p` into an engine request without a prompt; stop tokens are the
// tokenizer's end-of-turn ids.
StatusOr<EngineRequest> ToEngineRequest(const GenerationParams& p, const ServiceLimits& limits,
                                        const Tokenizer& tokenizer);

// The status every API returns for an image it is given (the pipeline has no
// vision stage yet).
Status ImagesNotSupported();

// A raw prompt (no template): its ids, or an error for an empty or oversized
// prompt or any images.
StatusOr<std::vector<int>> EncodeRawPrompt(const std::string& prompt, int n_images,
                                           const ServiceLimits& limits, const Tokenizer& tokenizer);

// A conversation through Gemma 3's chat template with the generation prompt
// added. Image parts (ChatPart::Kind::kImage) give ImagesNotSupported().
StatusOr<std::vector<int>> EncodeConversation(const std::vector<ChatMessage>& messages,
                                              const ServiceLimits& limits,
                                              const Tokenizer& tokenizer, int mm_tokens_per_image);

}  // namespace unicorn
