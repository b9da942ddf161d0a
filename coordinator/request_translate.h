// Translation of client requests (proto/unicorn/service.proto) into engine
// requests: every limit and range check on what a client sends lives here, in
// plain functions with no gRPC server types, so tests and the request fuzzer
// (tests/fuzz/request_fuzz.cc) reach it directly.
//
// Errors are InvalidArgument (or Unimplemented for images through the
// pipeline) with a message that names the field.
#pragma once

#include "common/status.h"
#include "coordinator/engine.h"
#include "model/tokenizer.h"
#include "proto/unicorn/service.pb.h"

namespace unicorn {

struct ServiceLimits {
  int max_prompt_bytes = 1 << 20;  // 1 MiB of prompt text
  int max_tokens = 8192;           // per request
  int default_max_tokens = 256;
};

// max_tokens, sampling and stop strings into an engine request (no prompt, no
// deadline: the caller sets those).
StatusOr<EngineRequest> TranslateOptions(
    int max_tokens, const v1::SamplingParams& sampling,
    const google::protobuf::RepeatedPtrField<std::string>& stop, const Tokenizer& tokenizer,
    const ServiceLimits& limits);

// A Generate request: the prompt text is tokenized.
StatusOr<EngineRequest> TranslateGenerate(const v1::GenerateRequest& req,
                                          const Tokenizer& tokenizer, const ServiceLimits& limits);

// A Chat request: the messages go through the Gemma 3 chat template.
StatusOr<EngineRequest> TranslateChat(const v1::ChatRequest& req, const Tokenizer& tokenizer,
                                      int mm_tokens_per_image, const ServiceLimits& limits);

}  // namespace unicorn
