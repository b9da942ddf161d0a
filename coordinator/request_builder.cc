#include "coordinator/request_builder.h"

#include "absl/strings/str_cat.h"

namespace unicorn {

StatusOr<EngineRequest> ToEngineRequest(const GenerationParams& p, const ServiceLimits& limits,
                                        const Tokenizer& tokenizer) {
  EngineRequest r;
  if (p.max_tokens < 0 || p.max_tokens > limits.max_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens ", p.max_tokens, " outside 0..", limits.max_tokens));
  }
  r.max_tokens = p.max_tokens == 0 ? limits.default_max_tokens : p.max_tokens;
  if (!(p.temperature >= 0 && p.temperature <= 100)) {
    return absl::InvalidArgumentError("sampling.temperature must be in [0, 100]");
  }
  if (p.top_k < 0) return absl::InvalidArgumentError("sampling.top_k must be >= 0");
  if (!(p.top_p >= 0 && p.top_p <= 1)) {
    return absl::InvalidArgumentError("sampling.top_p must be in [0, 1]");
  }
  if (!(p.min_p >= 0 && p.min_p <= 1)) {
    return absl::InvalidArgumentError("sampling.min_p must be in [0, 1]");
  }
  if (!(p.repetition_penalty >= 0 && p.repetition_penalty <= 10)) {
    return absl::InvalidArgumentError("sampling.repetition_penalty must be in [0, 10]");
  }
  r.sampling.temperature = p.temperature;
  r.sampling.top_k = p.top_k;
  r.sampling.top_p = p.top_p == 0 ? 1 : p.top_p;
  r.sampling.min_p = p.min_p;
  r.sampling.repetition_penalty = p.repetition_penalty == 0 ? 1 : p.repetition_penalty;
  r.sampling.seed = p.seed;
  r.sampling.has_seed = p.has_seed;
  if (int(p.stop.size()) > limits.max_stop) {
    return absl::InvalidArgumentError(absl::StrCat("at most ", limits.max_stop, " stop strings"));
  }
  for (const auto& st : p.stop) {
    if (st.empty() || st.size() > 256) {
      return absl::InvalidArgumentError("stop strings must have 1..256 bytes");
    }
    r.stop.push_back(st);
  }
  r.stop_tokens.assign(tokenizer.stop_ids().begin(), tokenizer.stop_ids().end());
  r.deadline = p.deadline;
  return r;
}

Status ImagesNotSupported() {
  return absl::UnimplementedError(
      "images through the pipeline are not supported yet (the coordinator has no vision stage); "
      "send text only");
}

StatusOr<std::vector<int>> EncodeRawPrompt(const std::string& prompt, int n_images,
                                           const ServiceLimits& limits,
                                           const Tokenizer& tokenizer) {
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt");
  if (int64_t(prompt.size()) > limits.max_prompt_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt of ", prompt.size(), " bytes exceeds ", limits.max_prompt_bytes));
  }
  if (n_images > 0) return ImagesNotSupported();
  std::vector<int32_t> ids = tokenizer.Encode(prompt);
  return std::vector<int>(ids.begin(), ids.end());
}

StatusOr<std::vector<int>> EncodeConversation(const std::vector<ChatMessage>& messages,
                                              const ServiceLimits& limits,
                                              const Tokenizer& tokenizer, int mm_tokens_per_image) {
  if (messages.empty()) return absl::InvalidArgumentError("no messages");
  size_t bytes = 0;
  for (const ChatMessage& m : messages) {
    if (const auto* s = std::get_if<std::string>(&m.content)) {
      bytes += s->size();
      continue;
    }
    for (const ChatPart& p : std::get<std::vector<ChatPart>>(m.content)) {
      if (p.kind == ChatPart::Kind::kImage) return ImagesNotSupported();
      bytes += p.text.size();
    }
  }
  if (int64_t(bytes) > limits.max_prompt_bytes) {
    return absl::InvalidArgumentError("conversation exceeds the prompt limit");
  }
  ChatOptions opt;
  opt.add_generation_prompt = true;
  auto ids = EncodeChatPrompt(tokenizer, messages, opt, mm_tokens_per_image);
  if (!ids.ok()) return absl::InvalidArgumentError(ids.status().message());
  return std::vector<int>(ids->begin(), ids->end());
}

}  // namespace unicorn
