#include "coordinator/request_translate.h"

#include "model/chat_template.h"

namespace unicorn {

StatusOr<EngineRequest> TranslateOptions(
    int max_tokens, const v1::SamplingParams& s,
    const google::protobuf::RepeatedPtrField<std::string>& stop, const Tokenizer& tokenizer,
    const ServiceLimits& limits) {
  EngineRequest r;
  if (max_tokens < 0 || max_tokens > limits.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens ", max_tokens, " outside 0..", limits.max_tokens));
  }
  r.max_tokens = max_tokens == 0 ? limits.default_max_tokens : max_tokens;
  if (!(s.temperature() >= 0 && s.temperature() <= 100)) {
    return absl::InvalidArgumentError("sampling.temperature must be in [0, 100]");
  }
  if (s.top_k() < 0) return absl::InvalidArgumentError("sampling.top_k must be >= 0");
  if (!(s.top_p() >= 0 && s.top_p() <= 1)) {
    return absl::InvalidArgumentError("sampling.top_p must be in [0, 1]");
  }
  if (!(s.min_p() >= 0 && s.min_p() <= 1)) {
    return absl::InvalidArgumentError("sampling.min_p must be in [0, 1]");
  }
  if (!(s.repetition_penalty() >= 0 && s.repetition_penalty() <= 10)) {
    return absl::InvalidArgumentError("sampling.repetition_penalty must be in [0, 10]");
  }
  r.sampling.temperature = s.temperature();
  r.sampling.top_k = s.top_k();
  r.sampling.top_p = s.top_p() == 0 ? 1 : s.top_p();
  r.sampling.min_p = s.min_p();
  r.sampling.repetition_penalty = s.repetition_penalty() == 0 ? 1 : s.repetition_penalty();
  r.sampling.seed = s.seed();
  r.sampling.has_seed = s.has_seed();
  if (stop.size() > 16) return absl::InvalidArgumentError("at most 16 stop strings");
  for (const auto& st : stop) {
    if (st.empty() || st.size() > 256) {
      return absl::InvalidArgumentError("stop strings must have 1..256 bytes");
    }
    r.stop.push_back(st);
  }
  r.stop_tokens.assign(tokenizer.stop_ids().begin(), tokenizer.stop_ids().end());
  return r;
}

StatusOr<EngineRequest> TranslateGenerate(const v1::GenerateRequest& req,
                                          const Tokenizer& tokenizer, const ServiceLimits& limits) {
  if (req.prompt().empty()) return absl::InvalidArgumentError("empty prompt");
  if (int64_t(req.prompt().size()) > limits.max_prompt_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("prompt of ", req.prompt().size(),
                                                   " bytes exceeds ", limits.max_prompt_bytes));
  }
  if (req.images_size() > 0) {
    return absl::UnimplementedError("images through the pipeline are not supported yet");
  }
  UNICORN_ASSIGN_OR_RETURN(EngineRequest r, TranslateOptions(req.max_tokens(), req.sampling(),
                                                             req.stop(), tokenizer, limits));
  std::vector<int32_t> ids = tokenizer.Encode(req.prompt());
  r.prompt.assign(ids.begin(), ids.end());
  return r;
}

StatusOr<EngineRequest> TranslateChat(const v1::ChatRequest& req, const Tokenizer& tokenizer,
                                      int mm_tokens_per_image, const ServiceLimits& limits) {
  if (req.messages_size() == 0) return absl::InvalidArgumentError("no messages");
  std::vector<ChatMessage> messages;
  size_t bytes = 0;
  for (const auto& m : req.messages()) {
    ChatMessage cm;
    cm.role = m.role();
    std::vector<ChatPart> parts;
    for (const auto& p : m.parts()) {
      if (p.has_image()) {
        return absl::UnimplementedError("images through the pipeline are not supported yet");
      }
      bytes += p.text().size();
      parts.push_back(ChatPart{ChatPart::Kind::kText, p.text(), ""});
    }
    cm.content = std::move(parts);
    messages.push_back(std::move(cm));
  }
  if (int64_t(bytes) > limits.max_prompt_bytes) {
    return absl::InvalidArgumentError("conversation exceeds the prompt limit");
  }
  UNICORN_ASSIGN_OR_RETURN(EngineRequest r, TranslateOptions(req.max_tokens(), req.sampling(),
                                                             req.stop(), tokenizer, limits));
  ChatOptions opt;
  opt.add_generation_prompt = true;
  auto ids = EncodeChatPrompt(tokenizer, messages, opt, mm_tokens_per_image);
  if (!ids.ok()) return absl::InvalidArgumentError(ids.status().message());
  r.prompt.assign(ids->begin(), ids->end());
  return r;
}

}  // namespace unicorn
