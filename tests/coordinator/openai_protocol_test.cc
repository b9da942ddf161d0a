// OpenAI request parsing, defaults, validation errors and response shapes.
#include "coordinator/openai_protocol.h"

#include <gtest/gtest.h>

namespace unicorn::openai {
namespace {

TEST(OpenAiProtocol, ChatDefaultsAndFields) {
  auto r = ParseChatRequest(R"({"model":"demo","messages":[
      {"role":"developer","content":"Be brief."},
      {"role":"user","content":[{"type":"text","text":"Hi"}]}],
      "max_tokens":5,"stop":"\n","seed":-1,"top_p":0.5,"stream":true,
      "stream_options":{"include_usage":true},"ignore_eos":true})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->model, "demo");
  ASSERT_EQ(r->messages.size(), 2u);
  EXPECT_EQ(r->messages[0].role, "system");   // "developer" is OpenAI's new name
  EXPECT_FLOAT_EQ(r->params.temperature, 1);  // OpenAI's default
  EXPECT_FLOAT_EQ(r->params.top_p, 0.5);
  EXPECT_EQ(r->params.max_tokens, 5);
  EXPECT_EQ(r->params.stop, std::vector<std::string>{"\n"});
  EXPECT_TRUE(r->params.has_seed);
  EXPECT_TRUE(r->stream);
  EXPECT_TRUE(r->include_usage);
  EXPECT_TRUE(r->params.ignore_eos);
}

TEST(OpenAiProtocol, ErrorsNameTheParam) {
  struct Case {
    const char* body;
    const char* param;
  } cases[] = {
      {R"({"messages":[{"role":"user","content":"x"}]})", "model"},
      {R"({"model":"m","messages":[]})", "messages"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"temperature":3})",
       "temperature"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"n":2})", "n"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"stop":[1]})", "stop"},
      {R"({"model":"m","messages":[{"role":"user","content":"x"}],"ignore_eos":1})", "ignore_eos"},
      {R"({"model":"m","messages":[{"role":"user","content":[{"type":"image_url",
          "image_url":{"url":"https://example.com/a.png"}}]}]})",
       "messages[0].content[0]"},
  };
  for (const Case& c : cases) {
    auto r = ParseChatRequest(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(ErrorParam(r.status()), c.param) << r.status();
    ApiError e = ToApiError(r.status());
    EXPECT_EQ(e.http_status, 400);
    EXPECT_EQ(e.body["error"]["type"], "invalid_request_error");
    EXPECT_EQ(e.body["error"]["param"], c.param);
    EXPECT_TRUE(e.body["error"]["message"].is_string());
    EXPECT_TRUE(e.body["error"].contains("code"));
  }
  EXPECT_FALSE(ParseChatRequest("{not json").ok());
  EXPECT_EQ(ToApiError(absl::ResourceExhaustedError("full")).http_status, 429);
  EXPECT_EQ(ToApiError(absl::UnavailableError("down")).http_status, 503);
}

TEST(OpenAiProtocol, ImageDataUrlsKeepTheirBytesInOrder) {
  const std::string png =
      "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/"
      "x0F8jngAAAABJRU5ErkJggg==";
  auto r = ParseChatRequest(R"({"model":"m","messages":[{"role":"user","content":[
      {"type":"image_url","image_url":{"url":"data:image/png;base64,)" +
                            png + R"("}},
      {"type":"text","text":"and"},
      {"type":"image_url","image_url":"data:image/png;base64,)" +
                            png + R"("}]}]})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->images.size(), 2u);
  EXPECT_EQ(r->images[0].substr(1, 3), "PNG");
  EXPECT_EQ(r->images[0], r->images[1]);
}

TEST(OpenAiProtocol, CompletionPromptAndShapes) {
  auto r = ParseCompletionRequest(R"({"model":"m","prompt":["Once"]})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->prompt, "Once");
  EXPECT_FALSE(ParseCompletionRequest(R"({"model":"m","prompt":["a","b"]})").ok());

  ResponseMeta m{"cmpl-1", 7, "demo"};
  auto c = Completion(m, "text", FinishReason::kLength, {3, 4});
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(c["usage"]["total_tokens"], 7);
  std::string role = "assistant", content = "";
  auto chunk = ChatChunk(m, &role, &content, nullptr);
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(SseEvent({{"a", 1}}), "data: {\"a\":1}\n\n");
}

}  // namespace
}  // namespace unicorn::openai
