#include "coordinator/request_translate.h"

namespace unicorn {

StatusOr<EngineRequest> TranslateOptions(
    int max_tokens, const v1::SamplingParams& s,
    const google::protobuf::RepeatedPtrField<std::string>& stop, const Tokenizer& tokenizer,
    const ServiceLimits& limits) {
  GenerationParams p;
  p.max_tokens = max_tokens;
  p.temperature = s.temperature();
  p.top_k = s.top_k();
  p.top_p = s.top_p();
  p.min_p = s.min_p();
  p.repetition_penalty = s.repetition_penalty();
  p.seed = s.seed();
  p.has_seed = s.has_seed();
  p.ignore_eos = s.ignore_eos();
  p.stop.assign(stop.begin(), stop.end());
  return ToEngineRequest(p, limits, tokenizer);
}

StatusOr<EngineRequest> TranslateGenerate(const v1::GenerateRequest& req,
                                          const Tokenizer& tokenizer, const VisionSupport& vision,
                                          const ServiceLimits& limits) {
  UNICORN_ASSIGN_OR_RETURN(std::vector<int> ids,
                           EncodeRawPrompt(req.prompt(), req.images_size(), limits, tokenizer,
                                           vision.config.mm_tokens_per_image));
  UNICORN_ASSIGN_OR_RETURN(EngineRequest r, TranslateOptions(req.max_tokens(), req.sampling(),
                                                             req.stop(), tokenizer, limits));
  std::vector<std::string> images(req.images().begin(), req.images().end());
  UNICORN_RETURN_IF_ERROR(PreprocessImages(images, vision, limits, &r));
  r.prompt = std::move(ids);
  r.sampling.logprobs = req.logprobs();
  return r;
}

StatusOr<EngineRequest> TranslateChat(const v1::ChatRequest& req, const Tokenizer& tokenizer,
                                      const VisionSupport& vision, const ServiceLimits& limits) {
  std::vector<ChatMessage> messages;
  std::vector<std::string> images;
  for (const auto& m : req.messages()) {
    ChatMessage cm;
    cm.role = m.role();
    std::vector<ChatPart> parts;
    for (const auto& p : m.parts()) {
      if (p.has_image()) {
        parts.push_back(ChatPart{ChatPart::Kind::kImage, "", "image"});
        images.push_back(p.image());
      } else {
        parts.push_back(ChatPart{ChatPart::Kind::kText, p.text(), ""});
      }
    }
    cm.content = std::move(parts);
    messages.push_back(std::move(cm));
  }
  UNICORN_ASSIGN_OR_RETURN(
      std::vector<int> ids,
      EncodeConversation(messages, limits, tokenizer, vision.config.mm_tokens_per_image));
  UNICORN_ASSIGN_OR_RETURN(EngineRequest r, TranslateOptions(req.max_tokens(), req.sampling(),
                                                             req.stop(), tokenizer, limits));
  UNICORN_RETURN_IF_ERROR(PreprocessImages(images, vision, limits, &r));
  r.prompt = std::move(ids);
  r.sampling.logprobs = req.logprobs();
  return r;
}

}  // namespace unicorn
