// `unicorn chat`: an interactive terminal chat against a running coordinator
// (gRPC Chat). Streams answers, keeps the conversation, and takes commands:
//   /image PATH  attach an image to the next message
//   /system TEXT set the system prompt (/system alone clears it)
//   /reset       forget the conversation (keeps the system prompt)
//   /stats       last answer's timings and the server's counters
//   /help, /quit
// Ctrl-C cancels the answer being written; a second Ctrl-C (with no line typed
// in between) quits; Ctrl-D quits. With a non-TTY stdin there is no prompt or
// banner: every line is a message or command and each answer ends with "\n",
// for scripted use.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "model/image.h"
#include "tools/cli/client.h"
#include "tools/cli/commands.h"

namespace unicorn::cli {
namespace {

std::atomic<int> g_interrupts = 0;  // Ctrl-Cs since the last line typed
std::atomic<bool> g_cancel = false;

void OnSigint(int) {
  g_interrupts.fetch_add(1);
  g_cancel.store(true);
}

enum class Read { kLine, kEnd, kInterrupted };

// One line from fd 0 without stdio buffering, so that Ctrl-C (EINTR) is seen
// while waiting. kEnd: end of input (Ctrl-D) or a read error.
Read ReadLine(std::string* line) {
  line->clear();
  char c;
  while (true) {
    ssize_t n = read(0, &c, 1);
    if (n == 1) {
      if (c == '\n') return Read::kLine;
      line->push_back(c);
    } else if (n == 0) {
      return line->empty() ? Read::kEnd : Read::kLine;
    } else if (errno == EINTR) {
      return Read::kInterrupted;
    } else {
      return Read::kEnd;
    }
  }
}

struct ChatOptions {
  ServerFlags server;
  std::string system;
  int max_tokens = 512;
  float temperature = 0.7f;
  float top_p = 0.95f;
  uint64_t seed = 0;
  bool has_seed = false;
  bool ignore_eos = false;
};

struct AnswerStats {
  int prompt_tokens = 0, completion_tokens = 0;
  double ttft_ms = 0, total_ms = 0;
};

class ChatSession {
 public:
  ChatSession(const ChatOptions& o, const Endpoint& e) : o_(o), client_(e), tty_(isatty(0)) {}

  int Run() {
    if (tty_) {
      auto info = client_.ModelInfo();
      if (!info.ok()) {
        std::cerr << "unicorn chat: " << info.status().message() << "\n";
        return 1;
      }
      std::cout << "unicorn chat: " << info->model_path() << " at " << client_.address() << "\n"
                << "/help for commands; Ctrl-C cancels an answer, twice quits; Ctrl-D quits.\n";
    }
    std::string line;
    while (true) {
      if (tty_) std::cout << "> " << std::flush;
      g_cancel = false;
      Read r = ReadLine(&line);
      if (r == Read::kEnd) break;
      if (r == Read::kInterrupted) {
        if (g_interrupts.load() >= 2) break;
        std::cout << "\n(Ctrl-C again to quit)\n";
        continue;
      }
      g_interrupts = 0;
      if (line.empty()) continue;
      if (line[0] == '/') {
        if (!Command(line)) break;
        continue;
      }
      Ask(line);
      if (g_interrupts.load() >= 2) break;
    }
    if (tty_) std::cout << "\n";
    return failed_ ? 1 : 0;
  }

 private:
  // false: quit.
  bool Command(const std::string& line) {
    std::string cmd = line.substr(0, line.find(' '));
    std::string arg = line.size() > cmd.size()
                          ? std::string(absl::StripAsciiWhitespace(line.substr(cmd.size())))
                          : "";
    if (cmd == "/quit" || cmd == "/exit") return false;
    if (cmd == "/reset") {
      history_.clear();
      image_.clear();
      Note("conversation cleared");
    } else if (cmd == "/system") {
      o_.system = arg;
      Note(arg.empty() ? "system prompt cleared" : "system prompt set");
    } else if (cmd == "/image") {
      auto img = DecodeImageFile(arg);
      if (!img.ok()) {
        Note(absl::StrCat("cannot attach: ", img.status().message()));
        return true;
      }
      std::ifstream in(arg, std::ios::binary);
      std::stringstream bytes;
      bytes << in.rdbuf();
      image_ = bytes.str();
      Note(
          absl::StrFormat("attached %s (%dx%d) to the next message", arg, img->width, img->height));
    } else if (cmd == "/stats") {
      Stats();
    } else if (cmd == "/help") {
      Note("/image PATH, /system TEXT, /reset, /stats, /quit; Ctrl-C cancels, twice quits");
    } else {
      Note(absl::StrCat("unknown command ", cmd, " (/help)"));
    }
    return true;
  }

  void Note(const std::string& s) { std::cout << "[" << s << "]\n" << std::flush; }

  void Ask(const std::string& text) {
    v1::ChatMessage user;
    user.set_role("user");
    if (!image_.empty()) user.add_parts()->set_image(image_);
    user.add_parts()->set_text(text);
    image_.clear();

    v1::ChatRequest req;
    if (!o_.system.empty()) {
      auto* s = req.add_messages();
      s->set_role("system");
      s->add_parts()->set_text(o_.system);
    }
    for (const auto& m : history_) *req.add_messages() = m;
    *req.add_messages() = user;
    req.set_max_tokens(o_.max_tokens);
    req.mutable_sampling()->set_temperature(o_.temperature);
    req.mutable_sampling()->set_top_p(o_.top_p);
    req.mutable_sampling()->set_ignore_eos(o_.ignore_eos);
    if (o_.has_seed) {
      req.mutable_sampling()->set_seed(o_.seed + history_.size());
      req.mutable_sampling()->set_has_seed(true);
    }

    std::string answer;
    AnswerStats st;
    auto t0 = std::chrono::steady_clock::now();
    auto ms = [&] {
      return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
          .count();
    };
    Status s = client_.Chat(
        req,
        [&](const v1::GenerateResponse& r) {
          if (r.token_id() >= 0 && st.completion_tokens++ == 0) st.ttft_ms = ms();
          if (r.has_usage()) {
            st.prompt_tokens = r.usage().prompt_tokens();
            st.completion_tokens = r.usage().completion_tokens();
          }
          answer += r.text();
          std::cout << r.text() << std::flush;
        },
        &g_cancel);
    st.total_ms = ms();
    bool cancelled = g_cancel.load() && s.code() == absl::StatusCode::kCancelled;
    if (!s.ok() && !cancelled) {
      std::cout << (answer.empty() ? "" : "\n") << std::flush;
      std::cerr << "unicorn chat: " << s.message() << "\n";
      failed_ = !tty_;
      return;  // the turn is dropped, so roles keep alternating
    }
    std::cout << (cancelled ? " [cancelled]\n" : "\n") << std::flush;
    if (cancelled && answer.empty()) return;
    history_.push_back(user);
    v1::ChatMessage model;
    model.set_role("assistant");
    model.add_parts()->set_text(answer);
    history_.push_back(model);
    last_ = st;
    ++answers_;
  }

  void Stats() {
    double decode_s = (last_.total_ms - last_.ttft_ms) / 1000;
    Note(absl::StrFormat(
        "last answer: %d prompt + %d generated tokens, first token %.0f ms, %.1f tok/s; "
        "%d answers, %d messages in history",
        last_.prompt_tokens, last_.completion_tokens, last_.ttft_ms,
        decode_s > 0 && last_.completion_tokens > 1 ? (last_.completion_tokens - 1) / decode_s
                                                    : 0.0,
        answers_, int(history_.size())));
    auto s = client_.Stats();
    if (s.ok()) {
      Note(
          absl::StrFormat("server: %d requests, %d running, %d waiting, %d prompt + %d generated "
                          "tokens",
                          s->requests_total(), s->requests_running(), s->requests_waiting(),
                          s->prompt_tokens_total(), s->generated_tokens_total()));
    }
  }

  ChatOptions o_;
  Client client_;
  bool tty_;
  std::vector<v1::ChatMessage> history_;  // user/assistant turns
  std::string image_;                     // attached to the next message
  AnswerStats last_;
  int answers_ = 0;
  bool failed_ = false;  // scripted runs exit 1 after an error
};

}  // namespace

void AddChatCommands(CLI::App& app) {
  static ChatOptions o;
  auto* chat = app.add_subcommand("chat", "interactive chat with a running system");
  AddServerFlags(chat, &o.server);
  chat->add_option("--system", o.system, "system prompt");
  chat->add_option("-n,--max-tokens", o.max_tokens, "tokens per answer at most");
  chat->add_option("--temp", o.temperature, "temperature (0 = greedy)");
  chat->add_option("--top-p", o.top_p, "nucleus sampling");
  auto* seed = chat->add_option("--seed", o.seed, "sampling seed");
  chat->add_flag("--ignore-eos", o.ignore_eos, "answer past end-of-turn, up to -n tokens");
  chat->callback([seed] {
    o.has_seed = seed->count() > 0;
    struct sigaction sa {};
    sa.sa_handler = OnSigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: a blocked read returns EINTR
    sigaction(SIGINT, &sa, nullptr);
    auto endpoint = ResolveEndpoint(o.server);
    if (!endpoint.ok()) {
      std::cerr << "unicorn chat: " << endpoint.status().message() << "\n";
      ExitCode() = 2;
      return;
    }
    ChatSession session(o, *endpoint);
    ExitCode() = session.Run();
  });
}

}  // namespace unicorn::cli
