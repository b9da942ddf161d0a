#include "model/chat_template.h"

#include "model/utf8.h"
#include "nlohmann/json.hpp"

namespace unicorn {
namespace {

using json = nlohmann::json;

constexpr absl::string_view kStartOfTurn = "<start_of_turn>";
constexpr absl::string_view kEndOfTurn = "<end_of_turn>\n";
constexpr absl::string_view kStartOfImage = "<start_of_image>";
constexpr absl::string_view kEndOfImage = "<end_of_image>";
constexpr absl::string_view kImageSoftToken = "<image_soft_token>";
constexpr char kAlternate[] = "Conversation roles must alternate user/assistant/user/assistant/...";

// FNV-1a 64 of Gemma 3's chat_template (tokenizer_config.json, 1532 bytes).
constexpr uint64_t kGemma3TemplateHash = 0xc90dea00b85c935dull;

void Append(std::string& out, absl::string_view s) { out.append(s.data(), s.size()); }

std::string Where(size_t index, const ChatMessage& m) {
  return absl::StrCat("[chat] messages[", index, "] (", m.role, "): ");
}

size_t CountImageParts(absl::Span<const ChatMessage> messages) {
  size_t n = 0;
  for (const ChatMessage& m : messages) {
    if (const auto* parts = std::get_if<std::vector<ChatPart>>(&m.content)) {
      for (const ChatPart& p : *parts) n += p.kind == ChatPart::Kind::kImage;
    }
  }
  return n;
}

size_t Count(absl::string_view s, absl::string_view what) {
  size_t n = 0;
  for (size_t i = s.find(what); i != absl::string_view::npos; i = s.find(what, i + what.size()))
    ++n;
  return n;
}

}  // namespace

StatusOr<std::string> RenderGemma3Chat(absl::Span<const ChatMessage> messages,
                                       const ChatOptions& options) {
  if (messages.empty()) {
    return absl::InvalidArgumentError(
        "[chat] Cannot apply chat template to an empty conversation. Provide at least one "
        "message.");
  }
  std::string out = options.bos_token;
  std::string first_user_prefix;
  size_t first = 0;
  if (messages[0].role == "system") {
    if (const auto* s = std::get_if<std::string>(&messages[0].content)) {
      first_user_prefix = *s + "\n\n";
    } else {
      const auto& parts = std::get<std::vector<ChatPart>>(messages[0].content);
      if (parts.empty() || parts[0].kind != ChatPart::Kind::kText) {
        return absl::InvalidArgumentError(
            Where(0, messages[0]) + "the first content part of a system message must be text");
      }
      first_user_prefix = parts[0].text + "\n\n";
    }
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    const size_t turn = i - first;
    if (m.role != "user" && m.role != "assistant" && m.role != "model" && m.role != "system") {
      return absl::InvalidArgumentError(Where(i, m) +
                                        "unknown role (expected user, assistant, model or system)");
    }
    if ((m.role == "user") != (turn % 2 == 0)) {
      return absl::InvalidArgumentError(Where(i, m) + kAlternate);
    }
    Append(out, kStartOfTurn);
    out += m.role == "assistant" ? "model" : m.role;
    out += '\n';
    if (turn == 0) out += first_user_prefix;
    if (const auto* s = std::get_if<std::string>(&m.content)) {
      Append(out, utf8::PyStrip(*s));
    } else {
      for (const ChatPart& p : std::get<std::vector<ChatPart>>(m.content)) {
        if (p.kind == ChatPart::Kind::kImage) {
          Append(out, kStartOfImage);
        } else {
          Append(out, utf8::PyStrip(p.text));
        }
      }
    }
    Append(out, kEndOfTurn);
  }
  if (options.add_generation_prompt) {
    Append(out, kStartOfTurn);
    out += "model\n";
  }
  return out;
}

std::string ExpandImageTokens(absl::string_view prompt, int mm_tokens_per_image) {
  std::string full = "\n\n";
  Append(full, kStartOfImage);
  for (int i = 0; i < mm_tokens_per_image; ++i) Append(full, kImageSoftToken);
  Append(full, kEndOfImage);
  full += "\n\n";
  std::string out;
  size_t from = 0;
  for (size_t i = prompt.find(kStartOfImage); i != absl::string_view::npos;
       i = prompt.find(kStartOfImage, from)) {
    Append(out, prompt.substr(from, i - from));
    out += full;
    from = i + kStartOfImage.size();
  }
  Append(out, prompt.substr(from));
  return out;
}

StatusOr<std::vector<int32_t>> EncodeChatPrompt(const Tokenizer& tokenizer,
                                                absl::Span<const ChatMessage> messages,
                                                const ChatOptions& options,
                                                int mm_tokens_per_image) {
  UNICORN_ASSIGN_OR_RETURN(std::string prompt, RenderGemma3Chat(messages, options));
  const size_t in_text = Count(prompt, kStartOfImage);
  const size_t images = CountImageParts(messages);
  if (in_text != images) {
    return absl::InvalidArgumentError(absl::StrCat(
        "[chat] the prompt holds ", in_text, " <start_of_image> markers but the messages hold ",
        images, " images (is the marker written in a text?)"));
  }
  return tokenizer.Encode(ExpandImageTokens(prompt, mm_tokens_per_image), /*add_bos=*/false);
}

StatusOr<std::vector<ChatMessage>> ParseChatMessages(absl::string_view json_text) {
  json root = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (root.is_discarded()) return absl::InvalidArgumentError("[chat] messages: not valid JSON");
  if (root.is_object() && root.contains("messages")) root = root["messages"];
  if (!root.is_array()) {
    return absl::InvalidArgumentError(
        "[chat] messages: expected an array of messages or {\"messages\": [...]}");
  }
  std::vector<ChatMessage> messages;
  for (size_t i = 0; i < root.size(); ++i) {
    const json& m = root[i];
    const std::string where = absl::StrCat("[chat] messages[", i, "]: ");
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      return absl::InvalidArgumentError(where + "expected an object with a string \"role\"");
    }
    ChatMessage msg;
    msg.role = m["role"].get<std::string>();
    const json content = m.value("content", json());
    if (content.is_string()) {
      msg.content = content.get<std::string>();
    } else if (content.is_array()) {
      std::vector<ChatPart> parts;
      for (size_t k = 0; k < content.size(); ++k) {
        const json& p = content[k];
        const std::string pwhere = absl::StrCat(where, "content[", k, "]: ");
        const std::string type = p.is_object() && p.contains("type") && p["type"].is_string()
                                     ? p["type"].get<std::string>()
                                     : "";
        ChatPart part;
        if (type == "text") {
          if (!p.contains("text") || !p["text"].is_string()) {
            return absl::InvalidArgumentError(pwhere + "a text part needs a string \"text\"");
          }
          part.text = p["text"].get<std::string>();
        } else if (type == "image") {
          part.kind = ChatPart::Kind::kImage;
          for (const char* key : {"image", "url", "path"}) {
            if (p.contains(key) && p[key].is_string()) {
              part.image = p[key].get<std::string>();
              break;
            }
          }
        } else {
          return absl::InvalidArgumentError(pwhere + "unsupported content part type \"" + type +
                                            "\" (expected text or image)");
        }
        parts.push_back(std::move(part));
      }
      msg.content = std::move(parts);
    } else {
      return absl::InvalidArgumentError(where +
                                        "Invalid content type (expected a string or a list "
                                        "of parts)");
    }
    messages.push_back(std::move(msg));
  }
  return messages;
}

bool IsGemma3ChatTemplate(absl::string_view jinja) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : jinja) h = (h ^ uint8_t(c)) * 0x100000001b3ull;
  return h == kGemma3TemplateHash && jinja.size() == 1532;
}

}  // namespace unicorn
