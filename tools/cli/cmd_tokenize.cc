// `unicorn tokenize`, `unicorn detokenize`, `unicorn template`: the model
// folder's tokenizer and chat template from the command line (equal to
// Hugging Face's; see model/tokenizer.h and model/chat_template.h).
//
//   unicorn tokenize --model DIR --text "Hello"        -> 2,9259
//   unicorn tokenize --model DIR --jsonl in.jsonl      {"text": ...} -> {"ids": [...]}
//   unicorn detokenize --model DIR --ids 2,9259        -> <bos>Hello
//   unicorn detokenize --model DIR --jsonl ids.jsonl   {"ids": [...]} -> {"text": ...}
//   unicorn template --model DIR --messages chat.json --add-generation-prompt
//
// Ids are printed comma-separated without spaces on one line, the form that
// --ids reads back. BOS follows tokenizer_config.json's add_bos_token, as
// Hugging Face's tokenizer(text).input_ids does; --no-bos drops it. --jsonl
// reads a file ("-" for standard input), skips blank lines, and stops at the
// first bad line, naming it. Exit code 1 on any error.
#include <climits>
#include <fstream>
#include <functional>
#include <iostream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "model/chat_template.h"
#include "model/tokenizer.h"
#include "model/tokenizer_loader.h"
#include "nlohmann/json.hpp"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

using json = nlohmann::json;

StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& model) {
  return LoadTokenizer(model);
}

// Runs `per_line` on each non-blank line of `path` ("-": stdin).
Status ForEachLine(const std::string& path,
                   const std::function<Status(const std::string&)>& per_line) {
  std::ifstream file;
  std::istream* in = &std::cin;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
    in = &file;
  }
  size_t n = 0;
  for (std::string line; std::getline(*in, line);) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Status s = per_line(line);
    if (!s.ok()) return Annotate(s, absl::StrCat(path, ":", n));
  }
  return absl::OkStatus();
}

StatusOr<json> ParseObject(const std::string& line) {
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  return j;
}

// "2,818, 3" or "2 818 3" -> ids.
StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view s : absl::StrSplit(text, absl::ByAnyChar(", \t\n"), absl::SkipEmpty())) {
    int32_t id;
    if (!absl::SimpleAtoi(s, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("\"", s, "\" is not an id"));
    }
    ids.push_back(id);
  }
  return ids;
}

Status CheckIds(const std::vector<int32_t>& ids, int32_t vocab_size) {
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size) {
      return absl::OutOfRangeError(absl::StrCat("id ", id, " outside [0, ", vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

struct TokenizeArgs {
  std::string model, text, jsonl;
  bool no_bos = false;
};

Status Tokenize(const TokenizeArgs& a) {
  UNICORN_ASSIGN_OR_RETURN(auto tok, Load(a.model));
  const bool bos = tok->add_bos() && !a.no_bos;
  if (a.jsonl.empty()) {
    std::cout << absl::StrJoin(tok->Encode(a.text, bos), ",") << "\n";
    return absl::OkStatus();
  }
  return ForEachLine(a.jsonl, [&](const std::string& line) -> Status {
    UNICORN_ASSIGN_OR_RETURN(json j, ParseObject(line));
    if (!j.contains("text") || !j["text"].is_string()) {
      return absl::InvalidArgumentError("expected {\"text\": \"...\"}");
    }
    std::cout << json{{"ids", tok->Encode(j["text"].get<std::string>(), bos)}}.dump() << "\n";
    return absl::OkStatus();
  });
}

struct DetokenizeArgs {
  std::string model, ids, jsonl;
  bool skip_special = false;
};

Status Detokenize(const DetokenizeArgs& a) {
  UNICORN_ASSIGN_OR_RETURN(auto tok, Load(a.model));
  if (a.jsonl.empty()) {
    UNICORN_ASSIGN_OR_RETURN(auto ids, ParseIds(a.ids));
    UNICORN_RETURN_IF_ERROR(CheckIds(ids, tok->vocab_size()));
    std::cout << tok->Decode(ids, a.skip_special) << "\n";
    return absl::OkStatus();
  }
  return ForEachLine(a.jsonl, [&](const std::string& line) -> Status {
    UNICORN_ASSIGN_OR_RETURN(json j, ParseObject(line));
    std::vector<int32_t> ids;
    bool ok = j.contains("ids") && j["ids"].is_array();
    for (size_t i = 0; ok && i < j["ids"].size(); ++i) {
      const json& v = j["ids"][i];
      ok = v.is_number_integer() && v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX;
      if (ok) ids.push_back(int32_t(v.get<int64_t>()));
    }
    if (!ok) return absl::InvalidArgumentError("expected {\"ids\": [integers]}");
    UNICORN_RETURN_IF_ERROR(CheckIds(ids, tok->vocab_size()));
    std::cout << json{{"text", tok->Decode(ids, a.skip_special)}}.dump() << "\n";
    return absl::OkStatus();
  });
}

struct TemplateArgs {
  std::string model, messages;
  bool add_generation_prompt = false;
  int image_tokens = 0;
};

Status Template(const TemplateArgs& a) {
  UNICORN_ASSIGN_OR_RETURN(auto tok, Load(a.model));
  if (!tok->chat_template_source().empty() && !IsGemma3ChatTemplate(tok->chat_template_source())) {
    std::cerr << "unicorn template: warning: the folder's chat_template differs from Gemma 3's; "
                 "rendering Gemma 3's\n";
  }
  std::ifstream in(a.messages, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(a.messages, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  auto messages = ParseChatMessages(ss.str());
  if (!messages.ok()) return Annotate(messages.status(), a.messages);
  ChatOptions options;
  options.add_generation_prompt = a.add_generation_prompt;
  const absl::string_view bos = tok->IdToPiece(tok->special().bos);
  options.bos_token = std::string(bos);
  UNICORN_ASSIGN_OR_RETURN(std::string prompt, RenderGemma3Chat(*messages, options));
  if (a.image_tokens > 0) prompt = ExpandImageTokens(prompt, a.image_tokens);
  std::cout << prompt << std::flush;
  return absl::OkStatus();
}

int Report(const char* command, const Status& s) {
  if (s.ok()) return 0;
  std::cerr << "unicorn " << command << ": " << s.message() << "\n";
  return 1;
}

}  // namespace

void AddTokenizeCommands(CLI::App& app) {
  static TokenizeArgs t;
  auto* tokenize = app.add_subcommand(
      "tokenize", "print the token ids of a text (comma-separated), as Hugging Face's tokenizer");
  tokenize->add_option("--model", t.model, "model folder holding tokenizer.json")->required();
  auto* text = tokenize->add_option("--text", t.text, "the text to tokenize");
  auto* jsonl = tokenize->add_option(
      "--jsonl", t.jsonl, "lines {\"text\": ...} -> lines {\"ids\": [...]} ('-': stdin)");
  text->excludes(jsonl);
  tokenize->add_flag("--no-bos", t.no_bos, "do not put <bos> first");
  tokenize->callback([text, jsonl] {
    if (text->count() + jsonl->count() != 1) {
      std::cerr << "unicorn tokenize: give exactly one of --text or --jsonl\n";
      ExitCode() = 2;
      return;
    }
    ExitCode() = Report("tokenize", Tokenize(t));
  });

  static DetokenizeArgs d;
  auto* detok = app.add_subcommand("detokenize", "print the text of token ids (the inverse)");
  detok->add_option("--model", d.model, "model folder holding tokenizer.json")->required();
  auto* ids = detok->add_option("--ids", d.ids, "ids separated by commas or spaces: 2,818,...");
  auto* djsonl = detok->add_option("--jsonl", d.jsonl,
                                   "lines {\"ids\": [...]} -> lines {\"text\": ...} ('-': stdin)");
  ids->excludes(djsonl);
  detok->add_flag("--skip-special", d.skip_special, "leave out special tokens (<bos>, ...)");
  detok->callback([ids, djsonl] {
    if (ids->count() + djsonl->count() != 1) {
      std::cerr << "unicorn detokenize: give exactly one of --ids or --jsonl\n";
      ExitCode() = 2;
      return;
    }
    ExitCode() = Report("detokenize", Detokenize(d));
  });

  static TemplateArgs m;
  auto* tmpl = app.add_subcommand("template", "print the Gemma 3 chat prompt of a conversation");
  tmpl->add_option("--model", m.model, "model folder holding tokenizer.json")->required();
  tmpl->add_option("--messages", m.messages,
                   "JSON file: [{\"role\": \"user\", \"content\": ...}, ...]")
      ->required();
  tmpl->add_flag("--add-generation-prompt", m.add_generation_prompt,
                 "end with <start_of_turn>model\\n");
  tmpl->add_option("--image-tokens", m.image_tokens,
                   "expand each <start_of_image> as the processor does, with N soft tokens "
                   "(Gemma 3: 256)");
  tmpl->callback([] { ExitCode() = Report("template", Template(m)); });
}

}  // namespace unicorn::cli
