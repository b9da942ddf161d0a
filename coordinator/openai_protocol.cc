#include "coordinator/openai_protocol.h"

#include <cmath>

#include "absl/strings/cord.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "model/image.h"

namespace unicorn::openai {
namespace {

using nlohmann::json;
constexpr char kParamPayload[] = "unicorn.openai.param";

// Optional number in [lo, hi] at body[key].
Status GetNumber(const json& body, const char* key, double lo, double hi, double* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number()) return ParamError(key, absl::StrCat(key, " must be a number"));
  double v = it->get<double>();
  if (!(v >= lo && v <= hi)) {
    return ParamError(key, absl::StrCat(key, " ", v, " is outside [", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

Status GetInt(const json& body, const char* key, int64_t lo, int64_t hi, int64_t* out) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number_integer()) return ParamError(key, absl::StrCat(key, " must be an integer"));
  int64_t v = it->get<int64_t>();
  if (v < lo || v > hi) {
    return ParamError(key, absl::StrCat(key, " ", v, " is outside [", lo, ", ", hi, "]"));
  }
  *out = v;
  return absl::OkStatus();
}

// The fields /v1/chat/completions and /v1/completions share.
Status ParseCommon(const json& body, ApiRequest* r) {
  auto model = body.find("model");
  if (model == body.end() || !model->is_string() || model->get<std::string>().empty()) {
    return ParamError("model", "model is required (see GET /v1/models)");
  }
  r->model = model->get<std::string>();
  GenerationParams& p = r->params;
  double temperature = 1, top_p = 1, min_p = 0, rep = 1;
  UNICORN_RETURN_IF_ERROR(GetNumber(body, "temperature", 0, 2, &temperature));
  UNICORN_RETURN_IF_ERROR(GetNumber(body, "top_p", 0, 1, &top_p));
  UNICORN_RETURN_IF_ERROR(GetNumber(body, "min_p", 0, 1, &min_p));
  UNICORN_RETURN_IF_ERROR(GetNumber(body, "repetition_penalty", 0, 10, &rep));
  p.temperature = float(temperature);
  p.top_p = float(top_p);
  p.min_p = float(min_p);
  p.repetition_penalty = float(rep);
  int64_t top_k = 0, n = 1, max_tokens = 0;
  UNICORN_RETURN_IF_ERROR(GetInt(body, "top_k", 0, 1 << 20, &top_k));
  p.top_k = int(top_k);
  UNICORN_RETURN_IF_ERROR(GetInt(body, "n", 1, 1, &n));
  UNICORN_RETURN_IF_ERROR(GetInt(body, "max_tokens", 1, 1 << 30, &max_tokens));
  UNICORN_RETURN_IF_ERROR(GetInt(body, "max_completion_tokens", 1, 1 << 30, &max_tokens));
  p.max_tokens = int(max_tokens);
  if (auto it = body.find("seed"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer()) return ParamError("seed", "seed must be an integer");
    p.seed = it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t(it->get<int64_t>());
    p.has_seed = true;
  }
  if (auto it = body.find("stop"); it != body.end() && !it->is_null()) {
    if (it->is_string()) {
      p.stop.push_back(it->get<std::string>());
    } else if (it->is_array()) {
      for (const json& s : *it) {
        if (!s.is_string()) return ParamError("stop", "stop must be a string or strings");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      return ParamError("stop", "stop must be a string or an array of strings");
    }
  }
  if (auto it = body.find("ignore_eos"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return ParamError("ignore_eos", "ignore_eos must be a boolean");
    p.ignore_eos = it->get<bool>();
  }
  if (auto it = body.find("stream"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) return ParamError("stream", "stream must be a boolean");
    r->stream = it->get<bool>();
  }
  if (auto it = body.find("stream_options"); it != body.end() && it->is_object()) {
    auto u = it->find("include_usage");
    r->include_usage = u != it->end() && u->is_boolean() && u->get<bool>();
  }
  return absl::OkStatus();
}

// "data:image/png;base64,...": checks that it is a PNG or JPEG that decodes;
// its bytes go to *bytes.
Status CheckImageUrl(const json& part, const std::string& where, std::string* bytes_out) {
  const json* url = nullptr;
  if (auto it = part.find("image_url"); it != part.end()) {
    if (it->is_string()) {
      url = &*it;
    } else if (it->is_object() && it->contains("url") && (*it)["url"].is_string()) {
      url = &(*it)["url"];
    }
  }
  if (url == nullptr) return ParamError(where, absl::StrCat(where, ": image_url.url is required"));
  const std::string& u = url->get_ref<const std::string&>();
  if (!absl::StartsWith(u, "data:")) {
    return ParamError(where, absl::StrCat(where,
                                          ": only data: URLs are accepted "
                                          "(data:image/png;base64,... or data:image/jpeg;...); "
                                          "the server fetches nothing"));
  }
  size_t comma = u.find(',');
  std::string header = u.substr(0, comma == std::string::npos ? 0 : comma);
  if (comma == std::string::npos || !absl::EndsWith(header, ";base64") ||
      !(absl::StartsWith(header, "data:image/png") || absl::StartsWith(header, "data:image/jpeg") ||
        absl::StartsWith(header, "data:image/jpg"))) {
    return ParamError(where, absl::StrCat(where, ": expected a base64 PNG or JPEG data URL, got \"",
                                          header.substr(0, 64), "\""));
  }
  std::string bytes;
  if (!absl::Base64Unescape(absl::string_view(u).substr(comma + 1), &bytes) || bytes.empty()) {
    return ParamError(where, absl::StrCat(where, ": the data URL is not valid base64"));
  }
  auto img = DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), where);
  if (!img.ok()) return ParamError(where, std::string(img.status().message()));
  *bytes_out = std::move(bytes);
  return absl::OkStatus();
}

StatusOr<ChatMessage> ParseMessage(const json& m, size_t i, std::vector<std::string>* images) {
  std::string where = absl::StrCat("messages[", i, "]");
  if (!m.is_object()) return ParamError(where, absl::StrCat(where, " must be an object"));
  auto role = m.find("role");
  if (role == m.end() || !role->is_string()) {
    return ParamError(where, absl::StrCat(where, ".role is required"));
  }
  ChatMessage cm;
  cm.role = role->get<std::string>();
  if (cm.role == "developer") cm.role = "system";
  if (cm.role != "system" && cm.role != "user" && cm.role != "assistant") {
    return ParamError(where, absl::StrCat(where, ".role \"", cm.role,
                                          "\" is not supported (system, developer, user, "
                                          "assistant)"));
  }
  auto content = m.find("content");
  if (content == m.end() || content->is_null()) {
    cm.content = std::string();
  } else if (content->is_string()) {
    cm.content = content->get<std::string>();
  } else if (content->is_array()) {
    std::vector<ChatPart> parts;
    for (size_t j = 0; j < content->size(); ++j) {
      const json& part = (*content)[j];
      std::string pw = absl::StrCat(where, ".content[", j, "]");
      std::string type = part.is_object() && part.contains("type") && part["type"].is_string()
                             ? part["type"].get<std::string>()
                             : "";
      if (type == "text" && part.contains("text") && part["text"].is_string()) {
        parts.push_back(ChatPart{ChatPart::Kind::kText, part["text"].get<std::string>(), ""});
      } else if (type == "image_url") {
        std::string bytes;
        UNICORN_RETURN_IF_ERROR(CheckImageUrl(part, pw, &bytes));
        parts.push_back(ChatPart{ChatPart::Kind::kImage, "", "data-url"});
        images->push_back(std::move(bytes));
      } else {
        return ParamError(pw, absl::StrCat(pw,
                                           ": expected {\"type\": \"text\", \"text\": ...} or "
                                           "{\"type\": \"image_url\", \"image_url\": {\"url\": "
                                           "\"data:...\"}}"));
      }
    }
    cm.content = std::move(parts);
  } else {
    return ParamError(where, absl::StrCat(where, ".content must be a string or an array"));
  }
  return cm;
}

StatusOr<json> ParseBody(absl::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the request body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the request body must be a JSON object");
  return j;
}

}  // namespace

Status ParamError(const std::string& param, const std::string& message) {
  Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kParamPayload, absl::Cord(param));
  return s;
}

std::string ErrorParam(const Status& s) {
  auto p = s.GetPayload(kParamPayload);
  return p ? std::string(*p) : std::string();
}

StatusOr<ApiRequest> ParseChatRequest(absl::string_view body) {
  UNICORN_ASSIGN_OR_RETURN(json j, ParseBody(body));
  ApiRequest r;
  UNICORN_RETURN_IF_ERROR(ParseCommon(j, &r));
  auto messages = j.find("messages");
  if (messages == j.end() || !messages->is_array() || messages->empty()) {
    return ParamError("messages", "messages must be a non-empty array");
  }
  for (size_t i = 0; i < messages->size(); ++i) {
    UNICORN_ASSIGN_OR_RETURN(ChatMessage m, ParseMessage((*messages)[i], i, &r.images));
    r.messages.push_back(std::move(m));
  }
  return r;
}

StatusOr<ApiRequest> ParseCompletionRequest(absl::string_view body) {
  UNICORN_ASSIGN_OR_RETURN(json j, ParseBody(body));
  ApiRequest r;
  UNICORN_RETURN_IF_ERROR(ParseCommon(j, &r));
  auto prompt = j.find("prompt");
  if (prompt != j.end() && prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt = (*prompt)[0].get<std::string>();
  } else if (prompt != j.end() && prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else {
    return ParamError("prompt", "prompt must be a string (one prompt per request)");
  }
  return r;
}

ApiError ToApiError(const Status& s) {
  ApiError e;
  std::string type = "server_error";
  json code = nullptr;
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:
      e.http_status = 400;
      type = "invalid_request_error";
      break;
    case absl::StatusCode::kUnimplemented:  // e.g. images: a request we cannot serve
      e.http_status = 400;
      type = "invalid_request_error";
      code = "unsupported";
      break;
    case absl::StatusCode::kNotFound:
      e.http_status = 404;
      type = "invalid_request_error";
      code = "not_found";
      break;
    case absl::StatusCode::kResourceExhausted:
      e.http_status = 429;
      type = "rate_limit_error";
      code = "queue_full";
      break;
    case absl::StatusCode::kUnavailable:
      e.http_status = 503;
      break;
    case absl::StatusCode::kDeadlineExceeded:
      e.http_status = 504;
      break;
    default:
      e.http_status = 500;
  }
  std::string param = ErrorParam(s);
  e.body = {{"error",
             {{"message", std::string(s.message())},
              {"type", type},
              {"param", param.empty() ? json(nullptr) : json(param)},
              {"code", code}}}};
  return e;
}

const char* FinishReasonName(FinishReason r) {
  return r == FinishReason::kLength ? "length" : "stop";
}

json UsageJson(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json ChatCompletion(const ResponseMeta& m, const std::string& text, FinishReason r,
                    const Usage& u) {
  return {{"id", m.id},
          {"object", "chat.completion"},
          {"created", m.created},
          {"model", m.model},
          {"choices", json::array({{{"index", 0},
                                    {"message", {{"role", "assistant"}, {"content", text}}},
                                    {"logprobs", nullptr},
                                    {"finish_reason", FinishReasonName(r)}}})},
          {"usage", UsageJson(u)}};
}

json ChatChunk(const ResponseMeta& m, const std::string* role, const std::string* content,
               const FinishReason* finish) {
  json delta = json::object();
  if (role != nullptr) delta["role"] = *role;
  if (content != nullptr) delta["content"] = *content;
  return {{"id", m.id},
          {"object", "chat.completion.chunk"},
          {"created", m.created},
          {"model", m.model},
          {"choices",
           json::array({{{"index", 0},
                         {"delta", delta},
                         {"logprobs", nullptr},
                         {"finish_reason",
                          finish != nullptr ? json(FinishReasonName(*finish)) : json(nullptr)}}})}};
}

json UsageChunk(const ResponseMeta& m, bool chat, const Usage& u) {
  return {{"id", m.id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", m.created},
          {"model", m.model},
          {"choices", json::array()},
          {"usage", UsageJson(u)}};
}

json Completion(const ResponseMeta& m, const std::string& text, FinishReason r, const Usage& u) {
  return {{"id", m.id},
          {"object", "text_completion"},
          {"created", m.created},
          {"model", m.model},
          {"choices", json::array({{{"index", 0},
                                    {"text", text},
                                    {"logprobs", nullptr},
                                    {"finish_reason", FinishReasonName(r)}}})},
          {"usage", UsageJson(u)}};
}

json CompletionChunk(const ResponseMeta& m, const std::string& text, const FinishReason* finish) {
  return {{"id", m.id},
          {"object", "text_completion"},
          {"created", m.created},
          {"model", m.model},
          {"choices",
           json::array({{{"index", 0},
                         {"text", text},
                         {"logprobs", nullptr},
                         {"finish_reason",
                          finish != nullptr ? json(FinishReasonName(*finish)) : json(nullptr)}}})}};
}

json ModelObject(const std::string& id, int64_t created) {
  return {{"id", id}, {"object", "model"}, {"created", created}, {"owned_by", "unicorn"}};
}

std::string SseEvent(const json& j) {
  return absl::StrCat("data: ", j.dump(-1, ' ', false, json::error_handler_t::replace), "\n\n");
}

}  // namespace unicorn::openai
