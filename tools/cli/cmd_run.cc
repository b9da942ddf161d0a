// `unicorn run`: generate from a prompt in this process (no daemons), streaming
// the text to stdout and the prompt and generation speeds to stderr.
#include <chrono>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "model/chat_template.h"
#include "model/sampler.h"
#include "tools/cli/commands.h"
#include "tools/cli/model_cli.h"

namespace unicorn::cli {
namespace {

struct RunArgs {
  ModelOptions model;
  std::string prompt;
  std::vector<std::string> images;
  int n = 128;
  SamplingParams sampling;
  std::vector<std::string> stop;
  bool chat = false;
  int context = 0;
};

constexpr char kImageMarker[] = "<start_of_image>";

int CountMarkers(const std::string& s) {
  int n = 0;
  for (size_t p = s.find(kImageMarker); p != std::string::npos; p = s.find(kImageMarker, p + 1)) {
    ++n;
  }
  return n;
}

// Prompt ids as Hugging Face's Gemma3Processor makes them.
StatusOr<std::vector<int>> PromptIds(const RunArgs& a, const Tokenizer& tok, int mm_tokens) {
  std::vector<int32_t> ids;
  if (a.chat) {
    ChatMessage m;
    m.role = "user";
    std::vector<ChatPart> parts;
    for (const std::string& img : a.images) {
      parts.push_back({ChatPart::Kind::kImage, "", img});
    }
    parts.push_back({ChatPart::Kind::kText, a.prompt, ""});
    m.content = std::move(parts);
    ChatOptions o;
    o.add_generation_prompt = true;
    UNICORN_ASSIGN_OR_RETURN(ids, EncodeChatPrompt(tok, {m}, o, mm_tokens));
  } else {
    std::string prompt = a.prompt;
    const int markers = CountMarkers(prompt);
    if (markers == 0 && !a.images.empty()) {
      std::string prefix;
      for (size_t i = 0; i < a.images.size(); ++i) prefix += kImageMarker;
      prompt = prefix + prompt;
    } else if (markers != int(a.images.size())) {
      return absl::InvalidArgumentError(absl::StrCat("the prompt has ", markers, " ", kImageMarker,
                                                     " markers for ", a.images.size(), " images"));
    }
    if (!a.images.empty()) prompt = ExpandImageTokens(prompt, mm_tokens);
    ids = tok.Encode(prompt);
  }
  return std::vector<int>(ids.begin(), ids.end());
}

Status Run(const RunArgs& a) {
  UNICORN_ASSIGN_OR_RETURN(auto engine, OpenEngine(a.model));
  UNICORN_ASSIGN_OR_RETURN(auto tok, engine->LoadTokenizer());
  const Gemma3Config& c = engine->config();
  if (!a.images.empty() && !engine->has_vision()) {
    return absl::FailedPreconditionError("--image needs a model with a vision tower (--mmproj)");
  }
  UNICORN_ASSIGN_OR_RETURN(std::vector<int> ids, PromptIds(a, *tok, c.vision.mm_tokens_per_image));
  using Clock = std::chrono::steady_clock;
  const auto t_img = Clock::now();
  std::vector<float> embeds;
  for (const std::string& img : a.images) {
    UNICORN_ASSIGN_OR_RETURN(std::vector<float> e, engine->EmbedImageFile(img));
    embeds.insert(embeds.end(), e.begin(), e.end());
  }
  const double img_s = std::chrono::duration<double>(Clock::now() - t_img).count();

  SessionOptions so;
  so.max_context = a.context > 0 ? a.context : int(ids.size()) + a.n;
  so.max_chunk = std::max(256, c.vision.mm_tokens_per_image + 1);
  UNICORN_ASSIGN_OR_RETURN(auto session, Gemma3Session::Create(engine->model(), so));

  std::vector<int> eos(tok->stop_ids().begin(), tok->stop_ids().end());
  eos.insert(eos.end(), c.eos_token_ids.begin(), c.eos_token_ids.end());
  eos.push_back(c.eos_token_id);
  StopMatcher stop(eos, a.stop);
  Sampler sampler(a.sampling);
  StreamDecoder decoder(*tok, /*skip_special=*/true);

  std::vector<float> logits;
  const auto t0 = Clock::now();
  UNICORN_RETURN_IF_ERROR(session->Prefill(ids, embeds, LogitsMode::kLast, &logits));
  const auto t1 = Clock::now();
  std::vector<int> history = ids;
  history.reserve(ids.size() + size_t(a.n));
  int generated = 0;
  while (generated < a.n) {
    const int next = sampler.Sample(logits, history);
    if (stop.IsEos(next)) break;
    ++generated;
    history.push_back(next);
    std::cout << stop.Feed(decoder.Push(next)) << std::flush;
    if (stop.stopped() || generated == a.n) break;
    UNICORN_RETURN_IF_ERROR(session->Decode(next, &logits));
  }
  const auto t2 = Clock::now();
  if (!stop.stopped()) std::cout << stop.Feed(decoder.Finish()) << stop.Flush();
  std::cout << "\n";
  const double pp = std::chrono::duration<double>(t1 - t0).count();
  const double tg = std::chrono::duration<double>(t2 - t1).count();
  std::cerr << absl::StrFormat(
      "[run] %s | prompt %d tokens, %.2f s, %.1f tok/s | generation %d tokens, %.2f s, %.2f "
      "tok/s%s\n",
      engine->ops().Describe(), ids.size(), pp, ids.size() / pp, generated, tg,
      generated > 1 ? (generated - 1) / tg : 0.0,
      a.images.empty() ? std::string()
                       : absl::StrFormat(" | %d images, %.2f s", a.images.size(), img_s));
  return absl::OkStatus();
}

}  // namespace

void AddRunCommands(CLI::App& app) {
  static RunArgs a;
  auto* cmd = app.add_subcommand("run", "generate from a prompt in this process (no daemons)");
  AddModelOptions(cmd, &a.model);
  cmd->add_option("-p,--prompt", a.prompt, "prompt text")->required();
  cmd->add_option("--image", a.images, "image files (the prompt's <start_of_image> markers)");
  cmd->add_option("-n,--max-tokens", a.n, "tokens to generate");
  cmd->add_option("--temp", a.sampling.temperature, "temperature (0 = greedy)");
  cmd->add_option("--top-k", a.sampling.top_k, "top-k (0 = off)");
  cmd->add_option("--top-p", a.sampling.top_p, "top-p (1 = off)");
  cmd->add_option("--min-p", a.sampling.min_p, "min-p (0 = off)");
  cmd->add_option("--repeat-penalty", a.sampling.repeat_penalty, "repetition penalty (1 = off)");
  cmd->add_option("--seed", a.sampling.seed, "sampling seed");
  cmd->add_option("--stop", a.stop, "stop strings");
  cmd->add_option("--ctx", a.context, "context size (default: prompt + max tokens)");
  cmd->add_flag("--chat", a.chat, "wrap the prompt in Gemma 3's chat template");
  cmd->callback([] {
    Status s = Run(a);
    if (!s.ok()) {
      std::cerr << "unicorn run: " << s.message() << "\n";
      ExitCode() = 1;
    }
  });
}

}  // namespace unicorn::cli
