// Gemma 3's chat template and image expansion against Hugging Face's
// apply_chat_template and Gemma3Processor (tests/data/tokenizer/chat_refs.json,
// recorded by tools/refs/tokenizer_refs.py).
#include "model/chat_template.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "tests/model/tokenizer_test_util.h"

namespace unicorn {
namespace {

using nlohmann::json;
using testing::ReadJson;

// The part of a Hugging Face error that Unicorn's message must contain.
std::string ExpectedErrorText(const std::string& hf_error) {
  for (const char* s :
       {"Conversation roles must alternate user/assistant/user/assistant/...",
        "Invalid content type", "Cannot apply chat template to an empty conversation"}) {
    if (hf_error.find(s) != std::string::npos) return s;
  }
  return hf_error;
}

TEST(Gemma3ChatTemplate, RendersEveryRecordedConversationLikeHuggingFace) {
  const json refs = ReadJson("chat_refs.json");
  ASSERT_GE(refs["cases"].size(), 20u);
  for (const json& c : refs["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    ChatOptions options;
    options.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    auto messages = ParseChatMessages(c["messages"].dump());
    StatusOr<std::string> rendered = messages.ok() ? RenderGemma3Chat(*messages, options)
                                                   : StatusOr<std::string>(messages.status());
    if (c["unicorn"] == "error") {  // accepted by the template, rejected by Unicorn on purpose
      ASSERT_TRUE(c.contains("rendered"));
      EXPECT_FALSE(rendered.ok());
      continue;
    }
    if (c.contains("error")) {
      ASSERT_FALSE(rendered.ok()) << "Hugging Face raised: " << c["error"];
      EXPECT_NE(rendered.status().message().find(ExpectedErrorText(c["error"].get<std::string>())),
                absl::string_view::npos)
          << rendered.status();
      continue;
    }
    ASSERT_TRUE(rendered.ok()) << rendered.status();
    EXPECT_EQ(*rendered, c["rendered"].get<std::string>());
  }
}

TEST(Gemma3ChatTemplate, PromptIdsAndImageExpansionEqualTheProcessor) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok);
  const json refs = ReadJson("chat_refs.json");
  const int mm_tokens = refs["mm_tokens_per_image"].get<int>();
  EXPECT_EQ(ExpandImageTokens("<start_of_image>", mm_tokens),
            ReadJson("meta.json")["full_image_sequence"].get<std::string>());
  int image_cases = 0;
  for (const json& c : refs["cases"]) {
    if (!c.contains("ids") || c["unicorn"] == "error") continue;
    SCOPED_TRACE(c["name"].get<std::string>());
    // apply_chat_template(tokenize=True) encodes the rendered prompt without
    // adding a BOS: the prompt starts with "<bos>" text.
    EXPECT_EQ(tok->Encode(c["rendered"].get<std::string>(), /*add_bos=*/false),
              c["ids"].get<std::vector<int32_t>>());
    ChatOptions options;
    options.add_generation_prompt = c["add_generation_prompt"].get<bool>();
    auto messages = ParseChatMessages(c["messages"].dump());
    ASSERT_TRUE(messages.ok()) << messages.status();
    auto ids = EncodeChatPrompt(*tok, *messages, options, mm_tokens);
    ASSERT_TRUE(ids.ok()) << ids.status();
    if (c["n_images"].get<int>() == 0) {
      EXPECT_EQ(*ids, c["ids"].get<std::vector<int32_t>>());
      continue;
    }
    ++image_cases;
    // Gemma3Processor(text=prompt, images, add_special_tokens=False) and
    // processor.apply_chat_template(tokenize=True) agree; we equal both.
    EXPECT_EQ(*ids, c["processor_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(*ids, c["processor_chat_ids"].get<std::vector<int32_t>>());
    // Called with default add_special_tokens, the processor adds a second BOS.
    std::vector<int32_t> twice = *ids;
    twice.insert(twice.begin(), tok->special().bos);
    EXPECT_EQ(twice, c["processor_ids_default_special"].get<std::vector<int32_t>>());
    EXPECT_EQ(std::count(ids->begin(), ids->end(), tok->special().image_soft_token),
              c["n_images"].get<int>() * mm_tokens);
  }
  EXPECT_GE(image_cases, 5);
  EXPECT_TRUE(IsGemma3ChatTemplate(tok->chat_template_source()));
  EXPECT_FALSE(IsGemma3ChatTemplate(tok->chat_template_source() + " "));
}

ChatMessage Msg(std::string role, std::string text) { return {std::move(role), std::move(text)}; }

TEST(Gemma3ChatTemplate, ErrorsAreClear) {
  ChatOptions o;
  auto err = [&](std::vector<ChatMessage> m) {
    auto r = RenderGemma3Chat(m, o);
    return r.ok() ? std::string("ok: ") + *r : std::string(r.status().message());
  };
  EXPECT_EQ(err({Msg("user", "a"), Msg("user", "b")}),
            "[chat] messages[1] (user): Conversation roles must alternate "
            "user/assistant/user/assistant/...");
  EXPECT_EQ(err({Msg("user", "a"), Msg("tool", "b")}),
            "[chat] messages[1] (tool): unknown role (expected user, assistant, model or system)");
  EXPECT_EQ(err({Msg("system", "s"), Msg("assistant", "a")}),
            "[chat] messages[1] (assistant): Conversation roles must alternate "
            "user/assistant/user/assistant/...");
  ChatMessage image_system{"system", std::vector<ChatPart>{{ChatPart::Kind::kImage, "", "x.png"}}};
  EXPECT_EQ(err({image_system, Msg("user", "a")}),
            "[chat] messages[0] (system): the first content part of a system message must be text");

  auto parse = [](const std::string& j) {
    auto r = ParseChatMessages(j);
    return r.ok() ? std::string("ok") : std::string(r.status().message());
  };
  EXPECT_EQ(parse("[{\"role\": \"user\", \"content\": null}]"),
            "[chat] messages[0]: Invalid content type (expected a string or a list of parts)");
  EXPECT_EQ(parse("[{\"role\": \"user\", \"content\": [{\"type\": \"video\"}]}]"),
            "[chat] messages[0]: content[0]: unsupported content part type \"video\" (expected "
            "text or image)");
  EXPECT_EQ(parse("[{\"role\": \"user\", \"content\": [{\"type\": \"text\"}]}]"),
            "[chat] messages[0]: content[0]: a text part needs a string \"text\"");
  EXPECT_EQ(parse("[{\"content\": \"x\"}]"),
            "[chat] messages[0]: expected an object with a string \"role\"");
  EXPECT_EQ(parse("{\"messages\": 3}"),
            "[chat] messages: expected an array of messages or {\"messages\": [...]}");
  EXPECT_EQ(parse("[{"), "[chat] messages: not valid JSON");
  EXPECT_EQ(parse("{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}"), "ok");
}

TEST(Gemma3ChatTemplate, ImageMarkersTypedInTextAreRejected) {
  UNICORN_REAL_TOKENIZER_OR_SKIP(tok);
  std::vector<ChatMessage> m = {Msg("user", "look <start_of_image> here")};
  auto ids = EncodeChatPrompt(*tok, m, ChatOptions{}, 256);
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().message(),
            "[chat] the prompt holds 1 <start_of_image> markers but the messages hold 0 images "
            "(is the marker written in a text?)");
}

TEST(Gemma3ChatTemplate, ExpandsEveryMarker) {
  EXPECT_EQ(ExpandImageTokens("a<start_of_image>b<start_of_image>", 2),
            "a\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\nb"
            "\n\n<start_of_image><image_soft_token><image_soft_token><end_of_image>\n\n");
  EXPECT_EQ(ExpandImageTokens("no images", 256), "no images");
}

}  // namespace
}  // namespace unicorn
