// Gemma 3's chat template, native (no Jinja engine): what Hugging Face's
// apply_chat_template renders from Gemma 3's tokenizer_config.json, and the
// image expansion of Gemma3Processor.
//
// The template, in words:
//   "<bos>"
//   if messages[0] is a system message, its content (a string, or the text of
//   its first part; NOT trimmed) + "\n\n" is put before the first user turn's
//   content, and it is not rendered as a turn of its own;
//   for each remaining message i (from 0): the role must be "user" exactly
//   when i is even, else "Conversation roles must alternate
//   user/assistant/user/assistant/..."; "assistant" is written "model":
//     "<start_of_turn>" role "\n" [system prefix if i == 0]
//     content: a string, trimmed (Python's str.strip()); or parts in order:
//       text -> its text trimmed, image -> "<start_of_image>"
//     "<end_of_turn>\n"
//   add_generation_prompt: "<start_of_turn>model\n".
// Unicorn is stricter than the template where the template silently renders
// nonsense: roles other than user/assistant/model/system, content parts other
// than text/image, and text parts without text are errors.
//
// Images: Gemma3Processor replaces every "<start_of_image>" of the rendered
// prompt with "\n\n<start_of_image>" + mm_tokens_per_image x
// "<image_soft_token>" + "<end_of_image>\n\n" and tokenizes the result without
// adding a BOS (the prompt has one): EncodeChatPrompt does the same.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "common/status.h"
#include "model/tokenizer.h"

namespace unicorn {

struct ChatPart {
  enum class Kind { kText, kImage };
  Kind kind = Kind::kText;
  std::string text;   // kText
  std::string image;  // kImage: where the image comes from (path, URL); not rendered
};

struct ChatMessage {
  std::string role;  // "user", "assistant" (= "model") or "system"
  std::variant<std::string, std::vector<ChatPart>> content;
};

struct ChatOptions {
  bool add_generation_prompt = false;
  std::string bos_token = "<bos>";
};

// The rendered prompt text, or the template's error ("[chat] messages[1]
// (user): Conversation roles must alternate user/assistant/user/assistant/...").
StatusOr<std::string> RenderGemma3Chat(absl::Span<const ChatMessage> messages,
                                       const ChatOptions& options);

// Gemma3Processor's expansion of every "<start_of_image>" in `prompt`.
std::string ExpandImageTokens(absl::string_view prompt, int mm_tokens_per_image);

// Render + expand + encode without an added BOS: the input_ids of Hugging
// Face's processor.apply_chat_template(messages, tokenize=True). Errors when
// the prompt's "<start_of_image>" count differs from the number of image parts
// (e.g. a user typed the marker), as the processor does.
StatusOr<std::vector<int32_t>> EncodeChatPrompt(const Tokenizer& tokenizer,
                                                absl::Span<const ChatMessage> messages,
                                                const ChatOptions& options,
                                                int mm_tokens_per_image);

// Messages from Hugging Face's JSON form: [{"role": ..., "content": "..." |
// [{"type": "text", "text": ...}, {"type": "image", ...}]}, ...], or an
// object {"messages": [...]}. Errors name the message and the problem.
StatusOr<std::vector<ChatMessage>> ParseChatMessages(absl::string_view json_text);

// Whether `jinja` (tokenizer_config.json's chat_template) is the Gemma 3
// template this file implements, byte for byte.
bool IsGemma3ChatTemplate(absl::string_view jinja);

}  // namespace unicorn
