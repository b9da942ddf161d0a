// `unicorn tokenize / detokenize / template` end to end: the binary's output
// for the real tokenizer equals Hugging Face's recorded ids and prompts.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/model/tokenizer_test_util.h"

namespace unicorn {
namespace {

using nlohmann::json;

struct Result {
  int rc;
  std::string out;
};

// Runs `args` with the shell, standard error discarded unless asked for.
Result RunCli(const std::string& args) {
  const std::string cmd = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn " + args;
  Result r{-1, {}};
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), p)) > 0;) r.out.append(buf, n);
  const int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class CliTokenize : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(std::string(testing::kRealTokenizerDir) + "/tokenizer.json")) {
      GTEST_SKIP() << "Gemma 3 tokenizer files not found at " << testing::kRealTokenizerDir;
    }
    tmp_ = std::filesystem::temp_directory_path() / ("unicorn_cli_tok_" + std::to_string(getpid()));
    std::filesystem::create_directories(tmp_);
  }
  void TearDown() override {
    if (!tmp_.empty()) std::filesystem::remove_all(tmp_);
  }
  std::string model_ = std::string("--model ") + Quote(testing::kRealTokenizerDir);
  std::filesystem::path tmp_;
};

TEST_F(CliTokenize, TextAndJsonlIdsEqualHuggingFace) {
  const auto texts = testing::CorpusTexts();
  const json rows = testing::ReadJson("corpus_refs.json")["rows"];
  // --text: one line of comma-separated ids, BOS per tokenizer_config.
  Result r = RunCli("tokenize " + model_ + " --text " + Quote(texts[2]));
  ASSERT_EQ(r.rc, 0);
  std::string expected;
  for (int32_t id : rows[2]["ids"].get<std::vector<int32_t>>()) {
    expected += (expected.empty() ? "" : ",") + std::to_string(id);
  }
  EXPECT_EQ(r.out, expected + "\n");
  r = RunCli("tokenize " + model_ + " --no-bos --text " + Quote(texts[2]));
  EXPECT_EQ(r.out, expected.substr(2) + "\n");  // without "2,"

  // --jsonl: the whole corpus in one go.
  const std::string in = (tmp_ / "in.jsonl").string();
  std::filesystem::copy_file(std::string(testing::kDataDir) + "/corpus.jsonl", in);
  r = RunCli("tokenize " + model_ + " --jsonl " + in);
  ASSERT_EQ(r.rc, 0);
  std::istringstream lines(r.out);
  size_t i = 0;
  for (std::string line; std::getline(lines, line); ++i) {
    ASSERT_LT(i, rows.size());
    EXPECT_EQ(json::parse(line)["ids"], rows[i]["ids"]) << "corpus line " << i + 1;
  }
  EXPECT_EQ(i, rows.size());

  // detokenize --jsonl is the inverse of tokenize --jsonl.
  const std::string ids = (tmp_ / "ids.jsonl").string();
  std::ofstream(ids) << r.out;
  r = RunCli("detokenize " + model_ + " --jsonl " + ids);
  ASSERT_EQ(r.rc, 0);
  std::istringstream texts_out(r.out);
  i = 0;
  for (std::string line; std::getline(texts_out, line); ++i) {
    EXPECT_EQ(json::parse(line)["text"], rows[i]["decode"]) << "corpus line " << i + 1;
  }
  EXPECT_EQ(i, rows.size());
  r = RunCli("detokenize " + model_ + " --ids 2,9259,1902");
  EXPECT_EQ(r.out, "<bos>Hello world\n");
}

TEST_F(CliTokenize, TemplatePrintsTheRenderedPrompt) {
  const json refs = testing::ReadJson("chat_refs.json");
  for (const json& c : refs["cases"]) {
    if (c["name"] != "image_system_multi_turn" && c["name"] != "multi_turn_no_gen") continue;
    const std::string file = (tmp_ / "messages.json").string();
    std::ofstream(file) << c["messages"].dump();
    const std::string gen =
        c["add_generation_prompt"].get<bool>() ? " --add-generation-prompt" : "";
    Result r = RunCli("template " + model_ + " --messages " + file + gen);
    ASSERT_EQ(r.rc, 0);
    EXPECT_EQ(r.out, c["rendered"].get<std::string>()) << c["name"];
  }
}

TEST_F(CliTokenize, ErrorsExitNonZero) {
  EXPECT_EQ(RunCli("tokenize --model " + tmp_.string() + " --text x 2>/dev/null").rc, 1);
  EXPECT_EQ(RunCli("detokenize " + model_ + " --ids 5,99999999 2>/dev/null").rc, 1);
  const std::string file = (tmp_ / "bad.json").string();
  std::ofstream(file) << R"([{"role": "assistant", "content": "x"}])";
  EXPECT_EQ(RunCli("template " + model_ + " --messages " + file + " 2>/dev/null").rc, 1);
}

}  // namespace
}  // namespace unicorn
