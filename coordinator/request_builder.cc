#include "coordinator/request_builder.h"

#include "absl/strings/str_cat.h"
#include "common/trace.h"
#include "model/image.h"

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
  if (!p.ignore_eos) {
    r.stop_tokens.assign(tokenizer.stop_ids().begin(), tokenizer.stop_ids().end());
  }
  r.deadline = p.deadline;
  return r;
}

Status PreprocessImages(const std::vector<std::string>& images, const VisionSupport& vision,
                        const ServiceLimits& limits, EngineRequest* r) {
  if (images.empty()) return absl::OkStatus();
  if (int(images.size()) > limits.max_images) {
    return absl::InvalidArgumentError(absl::StrCat(images.size(), " images exceed the limit of ",
                                                   limits.max_images, " per request"));
  }
  if (!vision.has_vision) {
    return absl::InvalidArgumentError(
        absl::StrCat("model ", vision.model_name,
                     " has no vision tower: it cannot take images (send text only, or serve a "
                     "Gemma 3 model with vision; a GGUF needs its mmproj file)"));
  }
  if (!vision.has_worker) {
    return absl::InvalidArgumentError(
        "the plan names no vision worker (config plan.vision): images cannot be served");
  }
  const int64_t start = trace::NowNs();
  r->images.clear();
  for (size_t i = 0; i < images.size(); ++i) {
    const std::string& bytes = images[i];
    if (int64_t(bytes.size()) > limits.max_image_bytes) {
      return absl::InvalidArgumentError(absl::StrCat("image ", i, ": ", bytes.size(),
                                                     " bytes exceed the limit of ",
                                                     limits.max_image_bytes, " per image"));
    }
    auto img = DecodeImage(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                           absl::StrCat("image ", i), int64_t(1) << 26);
    if (!img.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("cannot decode the image (PNG or JPEG expected): ", img.status().message()));
    }
    r->images.push_back(PixelValues(*img, vision.config));  // [3, size, size]
  }
  r->preprocess_start_ns = start;
  r->preprocess_end_ns = trace::NowNs();
  return absl::OkStatus();
}

StatusOr<std::vector<int>> EncodeRawPrompt(const std::string& prompt, int n_images,
                                           const ServiceLimits& limits, const Tokenizer& tokenizer,
                                           int mm_tokens_per_image) {
  if (prompt.empty()) return absl::InvalidArgumentError("empty prompt");
  if (int64_t(prompt.size()) > limits.max_prompt_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("prompt of ", prompt.size(), " bytes exceeds ", limits.max_prompt_bytes));
  }
  std::string text = prompt;
  if (n_images > 0) {
    constexpr absl::string_view kMarker = "<start_of_image>";
    int markers = 0;
    for (size_t p = text.find(kMarker.data()); p != std::string::npos;
         p = text.find(kMarker.data(), p + 1)) {
      ++markers;
    }
    if (markers == 0) {
      std::string prefix;
      for (int i = 0; i < n_images; ++i) absl::StrAppend(&prefix, kMarker);
      text = prefix + text;
    } else if (markers != n_images) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the prompt has ", markers, " <start_of_image> markers for ", n_images, " images"));
    }
    text = ExpandImageTokens(text, mm_tokens_per_image);
  }
  std::vector<int32_t> ids = tokenizer.Encode(text);
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
    for (const ChatPart& p : std::get<std::vector<ChatPart>>(m.content)) bytes += p.text.size();
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
