// Translation of the gRPC client messages (proto/unicorn/service.proto) into
// engine requests, on top of the checks every API shares
// (coordinator/request_builder.h). No gRPC server types, so tests and the
// request fuzzer (tests/fuzz/request_fuzz.cc) reach it directly. The caller
// sets the deadline.
//
// Errors are InvalidArgument with a message that names the field or the
// problem. Images are decoded and normalized here (PreprocessImages).
#pragma once

#include "common/status.h"
#include "coordinator/engine.h"
#include "coordinator/request_builder.h"
#include "model/tokenizer.h"
#include "proto/unicorn/service.pb.h"

namespace unicorn {

// max_tokens, sampling and stop strings into an engine request (no prompt).
StatusOr<EngineRequest> TranslateOptions(
    int max_tokens, const v1::SamplingParams& sampling,
    const google::protobuf::RepeatedPtrField<std::string>& stop, const Tokenizer& tokenizer,
    const ServiceLimits& limits);

// A Generate request: the prompt text is tokenized.
StatusOr<EngineRequest> TranslateGenerate(const v1::GenerateRequest& req,
                                          const Tokenizer& tokenizer, const VisionSupport& vision,
                                          const ServiceLimits& limits);

// A Chat request: the messages go through the Gemma 3 chat template.
StatusOr<EngineRequest> TranslateChat(const v1::ChatRequest& req, const Tokenizer& tokenizer,
                                      const VisionSupport& vision, const ServiceLimits& limits);

}  // namespace unicorn
