// What users touch, against a real system started with `unicorn up` on the
// demo model: `unicorn chat` scripted (non-TTY stdin) and interactive (driven
// through tmux send-keys / capture-pane), `unicorn models`, `unicorn stats`
// and `unicorn loadtest`.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/integration/test_system.h"

namespace {

using unicorn::testing::Shell;
using unicorn::testing::TestSystem;

constexpr char kDemo[] = UNICORN_SOURCE_DIR "/models/demo";
constexpr char kBody[] =
    "workers:\n  npu: {kind: npu}\n  gpu: {kind: gpu, backend: cpu}\n"
    "plan: {embedding: gpu, lm_head: gpu, layers: [{attention: npu, ffn: gpu}]}\n";

class CliUsers : public ::testing::Test {
 protected:
  void SetUp() override {
    auto up = sys_.Up();
    ASSERT_EQ(up.code, 0) << up.out;
  }
  std::string Bin() const { return std::string(UNICORN_BINARY_DIR) + "/bin/unicorn"; }
  // The greedy answer to one user turn, through `unicorn generate --chat`.
  std::string Generate(const std::string& prompt, int n) {
    auto r = sys_.Cli("generate --chat --server " + sys_.address() + " -n " + std::to_string(n) +
                      " --prompt '" + prompt + "'");
    EXPECT_EQ(r.code, 0) << r.out;
    return r.out;
  }
  TestSystem sys_{"cu", kDemo, kBody};
};

TEST_F(CliUsers, ChatScriptedFromAPipe) {
  std::string expected = Generate("Hello!", 12);  // ends with "\n"
  ASSERT_GT(expected.size(), 1u);
  auto r = Shell("printf 'Hello!\\n/stats\\n/reset\\n/system Answer briefly.\\nHello!\\n' | " +
                 Bin() + " chat --server " + sys_.address() + " --temp 0 -n 12");
  ASSERT_EQ(r.code, 0) << r.out;
  // No banner or prompt without a TTY: the first line is the answer itself,
  // the same greedy text as `generate --chat`.
  EXPECT_EQ(r.out.substr(0, expected.size()), expected) << r.out;
  EXPECT_TRUE(std::regex_search(
      r.out,
      std::regex(R"(\[last answer: \d+ prompt \+ \d+ generated tokens, first token \d+ ms)")))
      << r.out;
  EXPECT_NE(r.out.find("[server: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[conversation cleared]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[system prompt set]"), std::string::npos) << r.out;
}

TEST_F(CliUsers, ChatImageIsAttachedThenRefusedByATextOnlyModel) {
  std::string png = (sys_.dir() / "red.png").string();
  // A 4x4 red PNG.
  Shell(
      "echo "
      "iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAEElEQVR4nGP4z8AARwzEcQCukw/"
      "x0F8jngAAAABJRU5ErkJggg== | base64 -d > " +
      png);
  auto r = Shell("printf '/image " + png + "\\nWhat colour is it?\\n' | " + Bin() +
                 " chat --server " + sys_.address() + " --temp 0 -n 4");
  EXPECT_NE(r.out.find("[attached " + png + " (4x4)"), std::string::npos) << r.out;
  // The demo model is text only: the turn fails naming the missing tower.
  EXPECT_NE(r.out.find("has no vision tower"), std::string::npos) << r.out;
  EXPECT_EQ(r.code, 1) << r.out;  // a scripted run reports the failed turn
}

// The interactive chat in a real terminal (tmux): prompt, streamed answer,
// commands, Ctrl-C cancels an answer, a second Ctrl-C at the prompt quits,
// Ctrl-D quits.
TEST_F(CliUsers, ChatInteractiveThroughTmux) {
  if (Shell("tmux -V").code != 0) GTEST_SKIP() << "tmux is not installed";
  // The demo model's whole greedy answer (about 40 tokens).
  std::string expected = Generate("Hello!", 200);
  expected.pop_back();  // the trailing "\n"
  ASSERT_GT(expected.size(), 40u) << expected;
  std::string tmux = "tmux -L uc" + std::to_string(getpid()) + " ";
  std::string session;
  // The pane's text, trailing blanks of lines and of the screen removed.
  auto pane = [&] {
    std::string raw = Shell(tmux + "capture-pane -p -J -S - -t " + session).out, out;
    std::istringstream in(raw);
    for (std::string line; std::getline(in, line);) {
      line.erase(line.find_last_not_of(' ') + 1);
      out += line + "\n";
    }
    out.erase(out.find_last_not_of('\n') + 1);
    return out;
  };
  auto keys = [&](const std::string& k) { Shell(tmux + "send-keys -t " + session + " " + k); };
  // Polls the pane until `re` matches (up to 20 s).
  auto wait_for = [&](const std::string& re) {
    std::regex r(re);
    for (int i = 0; i < 400; ++i) {
      std::string p = pane();
      if (std::regex_search(p, r)) return p;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "(timed out waiting for /" + re + "/)\n" + pane();
  };
  // Starts `unicorn chat <flags>` in a new session and waits for its prompt.
  auto start = [&](const std::string& name, const std::string& flags) {
    session = name;
    ASSERT_EQ(Shell(tmux + "new-session -d -x 250 -y 50 -s " + session + " '" + Bin() +
                    " chat --server " + sys_.address() + " --temp 0 " + flags + "'")
                  .code,
              0);
    std::string p = wait_for(R"(Ctrl-C cancels[^\n]*\n>$)");
    EXPECT_NE(p.find("unicorn chat: "), std::string::npos) << p;
  };
  auto expect_gone = [&] {
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
      gone = Shell(tmux + "has-session -t " + session).code != 0;
      if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_TRUE(gone) << pane();
  };

  // Ctrl-C while the answer streams cancels it and returns to the prompt.
  // --ignore-eos makes the answer 1,500 tokens, seconds of streaming on any
  // machine, so the key lands mid-answer (the ~40-token natural answer can be
  // over before tmux delivers it). " [cancelled]" is printed only when the
  // stream really ended cancelled.
  ASSERT_NO_FATAL_FAILURE(start("cancel", "--ignore-eos -n 1500"));
  keys("'Hello!' Enter");
  std::string p = wait_for(R"(> Hello!\n\S)");
  keys("C-c");
  p = wait_for(R"( \[cancelled\]\n>$)");
  EXPECT_NE(p.find(" [cancelled]\n>"), std::string::npos) << p;
  keys("C-c");  // the second Ctrl-C with no line typed in between quits
  expect_gone();

  // A whole answer streams on one line; /reset forgets it, so the same
  // question gets the same answer again; /stats; Ctrl-C at the prompt asks
  // for confirmation; Ctrl-D quits even then.
  ASSERT_NO_FATAL_FAILURE(start("answer", "-n 200"));
  keys("'Hello!' Enter");
  p = wait_for(R"(> Hello!\n[^\n]*\n>$)");
  EXPECT_NE(p.find("> Hello!\n" + expected + "\n>"), std::string::npos) << p;
  keys("/reset Enter");
  wait_for(R"(\[conversation cleared\]\n>$)");
  keys("'Hello!' Enter");
  p = wait_for(R"(cleared\]\n> Hello!\n[^\n]*\n>$)");
  EXPECT_NE(p.find("cleared]\n> Hello!\n" + expected + "\n>"), std::string::npos) << p;
  keys("/stats Enter");
  p = wait_for(R"(\[server: [^\n]*\]\n>$)");
  EXPECT_TRUE(std::regex_search(p, std::regex(R"(\[last answer: \d+ prompt \+ \d+ generated)")))
      << p;
  keys("C-c");
  p = wait_for(R"(\(Ctrl-C again to quit\)\n>$)");
  EXPECT_NE(p.find("(Ctrl-C again to quit)"), std::string::npos) << p;
  keys("C-d");
  expect_gone();
  Shell(tmux + "kill-server");
}

// --ignore-eos runs past the end-of-turn token to exactly -n tokens.
TEST_F(CliUsers, GenerateIgnoreEosRunsToMaxTokens) {
  auto natural = sys_.Cli("generate --chat --timings --server " + sys_.address() +
                          " -n 150 --prompt 'Hello!'");
  ASSERT_EQ(natural.code, 0) << natural.out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(natural.out, m, std::regex(R"(generation (\d+) tokens)")))
      << natural.out;
  EXPECT_LT(std::stoi(m[1]), 150) << natural.out;  // the demo answer ends by itself
  auto forced = sys_.Cli("generate --chat --timings --ignore-eos --server " + sys_.address() +
                         " -n 150 --prompt 'Hello!'");
  ASSERT_EQ(forced.code, 0) << forced.out;
  EXPECT_NE(forced.out.find("generation 150 tokens"), std::string::npos) << forced.out;
}

TEST_F(CliUsers, ModelsAndStats) {
  auto m = sys_.Cli("models --server " + sys_.address());
  ASSERT_EQ(m.code, 0) << m.out;
  EXPECT_TRUE(std::regex_search(m.out, std::regex(R"(\ndemo\s+\S+\s+\d+\s+\d+\s+/)"))) << m.out;
  EXPECT_NE(m.out.find("plan: "), std::string::npos) << m.out;
  Generate("Hello!", 5);
  auto s = sys_.Cli("stats --json --server " + sys_.address());
  ASSERT_EQ(s.code, 0) << s.out;
  auto j = nlohmann::json::parse(s.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << s.out;
  EXPECT_GE(j["requests_total"].get<int>(), 1);
  EXPECT_GE(j["generated_tokens_total"].get<int>(), 1);
  // Once the answer is done nothing is reported running (the engine updates
  // its counters right after the step that finished it).
  int running = -1;
  for (int i = 0; i < 20 && running != 0; ++i) {
    auto again = nlohmann::json::parse(sys_.Cli("stats --json --server " + sys_.address()).out,
                                       nullptr, false);
    running = again.is_object() ? again["requests_running"].get<int>() : -1;
    if (running != 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(running, 0);
  EXPECT_EQ(sys_.Cli("stats --server 127.0.0.1:1").code, 1);
}

TEST_F(CliUsers, LoadtestSweepsAndCompares) {
  // --compare against the same server: the run is symmetric, so ratios are
  // near 1; only their presence and sanity are checked (timing is noisy).
  auto r = sys_.Cli("loadtest --server " + sys_.http_url() + " --compare " + sys_.http_url() +
                    " -c 1,3 -r 3 -n 8 --ignore-eos --json");
  ASSERT_EQ(r.code, 0) << r.out;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << r.out;
  EXPECT_EQ(j["model"], "demo");
  ASSERT_EQ(j["levels"].size(), 2u) << r.out;
  for (const auto& l : j["levels"]) {
    EXPECT_EQ(l["errors"], 0) << l.dump();
    EXPECT_EQ(l["requests"], 3);
    EXPECT_GT(l["ttft_ms"]["p50"].get<double>(), 0) << l.dump();
    EXPECT_GE(l["ttft_ms"]["p99"].get<double>(), l["ttft_ms"]["p50"].get<double>());
    EXPECT_GT(l["itl_ms"]["p50"].get<double>(), 0) << l.dump();
    EXPECT_GT(l["requests_per_s"].get<double>(), 0);
    EXPECT_EQ(l["output_tokens"].get<int>(), 3 * 8) << l.dump();  // --ignore-eos: all of -n
    EXPECT_GT(l["ratio"]["output_tokens_per_s"].get<double>(), 0) << l.dump();
  }
  // The table (no TTY here, so no progress bar in the output).
  auto t = sys_.Cli("loadtest --server " + sys_.http_url() + " -c 2 -r 2 -n 4");
  ASSERT_EQ(t.code, 0) << t.out;
  EXPECT_TRUE(std::regex_search(t.out, std::regex(R"(\nunicorn\s+2\s+2\s+0\s+\d+\.\dms)")))
      << t.out;
  EXPECT_EQ(t.out.find('#'), std::string::npos) << t.out;
}

}  // namespace
