// OpenAI's HTTP API as plain data: request bodies -> the coordinator's
// request types (request_builder.h), engine results -> response bodies, and
// Unicorn statuses -> OpenAI's error shape
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}.
// No sockets here (openai_server.cc serves these).
//
// Defaults follow OpenAI's API reference: temperature 1, top_p 1, n 1.
// Accepted beyond it (as llama-server does): top_k, min_p,
// repetition_penalty. Ignored: fields that do not change the text
// (user, logprobs, presence/frequency penalties of 0...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/status.h"
#include "coordinator/engine.h"
#include "coordinator/request_builder.h"
#include "model/chat_template.h"
#include "nlohmann/json.hpp"

namespace unicorn::openai {

// A parsed /v1/chat/completions or /v1/completions body.
struct ApiRequest {
  std::string model;
  std::vector<ChatMessage> messages;  // chat
  std::vector<std::string> images;    // the image parts' bytes (PNG/JPEG from data: URLs), in order
  std::string prompt;                 // completions
  GenerationParams params;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Errors are INVALID_ARGUMENT naming the field ("messages[1].content[0]:
// ..."), with the field in the "param" payload (ErrorParam).
StatusOr<ApiRequest> ParseChatRequest(absl::string_view body);
StatusOr<ApiRequest> ParseCompletionRequest(absl::string_view body);

// An OpenAI error for `s`: its HTTP status and JSON body.
struct ApiError {
  int http_status = 500;
  nlohmann::json body;
};
ApiError ToApiError(const Status& s);
// The "param" a parse error names, or "" (set by ParseChatRequest & co.).
std::string ErrorParam(const Status& s);
Status ParamError(const std::string& param, const std::string& message);

// "stop" or "length" (OpenAI's finish_reason) for an engine reason.
const char* FinishReasonName(FinishReason r);

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
};
nlohmann::json UsageJson(const Usage& u);

// Identity of one response: id ("chatcmpl-..."/"cmpl-..."), created (unix s), model.
struct ResponseMeta {
  std::string id;
  int64_t created = 0;
  std::string model;
};

nlohmann::json ChatCompletion(const ResponseMeta& m, const std::string& text, FinishReason r,
                              const Usage& u);
// A chat.completion.chunk; `role` only on the first, `finish` only on the last.
nlohmann::json ChatChunk(const ResponseMeta& m, const std::string* role, const std::string* content,
                         const FinishReason* finish);
// The trailing chunk with empty choices and usage (stream_options.include_usage).
nlohmann::json UsageChunk(const ResponseMeta& m, bool chat, const Usage& u);
nlohmann::json Completion(const ResponseMeta& m, const std::string& text, FinishReason r,
                          const Usage& u);
nlohmann::json CompletionChunk(const ResponseMeta& m, const std::string& text,
                               const FinishReason* finish);
// /v1/models/{id} entry.
nlohmann::json ModelObject(const std::string& id, int64_t created);

// "data: <json>\n\n" (one server-sent event).
std::string SseEvent(const nlohmann::json& j);

}  // namespace unicorn::openai
