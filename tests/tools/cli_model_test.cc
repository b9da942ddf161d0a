// `unicorn logits`, `run` and `bench` end to end on a small random GGUF:
// logits equal the naive reference, runs are reproducible, bench reports.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "absl/strings/str_join.h"
#include "model/gguf_vocab.h"
#include "model/npy.h"
#include "nlohmann/json.hpp"
#include "tests/model/gemma3_reference.h"
#include "tests/model/test_gguf.h"

namespace unicorn {
namespace {

namespace fs = std::filesystem;

struct CmdResult {
  int code;
  std::string out;
};

// Runs `unicorn args`, capturing stdout and stderr together.
CmdResult Unicorn(const std::string& args) {
  const std::string cmd = std::string(UNICORN_BINARY_DIR) + "/bin/unicorn " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int status = pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

class CliModelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ =
        new fs::path(fs::temp_directory_path() / ("unicorn_cli_test_" + std::to_string(getpid())));
    fs::create_directories(*dir_);
    config_ = new Gemma3Config(testing::TinyConfig());
    store_ =
        new testing::TensorStore(testing::MakeRandomGemma3(*config_, DType::kQ8_0, DType::kF32, 3));
    ASSERT_TRUE(testing::WriteTestGguf(Model(), *config_, *store_).ok());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete config_;
    delete store_;
  }
  static std::string Model() { return (*dir_ / "tiny.gguf").string(); }
  // `unicorn bench ARGS --json` on the model, parsed (a discarded value,
  // with a failure recorded, when it did not run or print JSON).
  static nlohmann::json BenchJson(const std::string& args) {
    CmdResult r = Unicorn("bench -m " + Model() + " " + args + " --json --threads 2");
    EXPECT_EQ(r.code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.out;
    return j;
  }

  static fs::path* dir_;
  static Gemma3Config* config_;
  static testing::TensorStore* store_;
};
fs::path* CliModelTest::dir_;
Gemma3Config* CliModelTest::config_;
testing::TensorStore* CliModelTest::store_;

TEST_F(CliModelTest, LogitsMatchTheReference) {
  const std::vector<int> tokens = {2, 17, 99, 5, 140, 33, 64, 7, 8, 120};
  const std::string out = (*dir_ / "logits.npy").string();
  CmdResult r = Unicorn("logits -m " + Model() + " --threads 2 --tokens " +
                        absl::StrJoin(tokens, ",") + " --out " + out);
  ASSERT_EQ(r.code, 0) << r.out;
  auto a = ReadNpy(out);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->descr, "<f4");
  ASSERT_EQ(a->shape, (std::vector<int64_t>{10, config_->vocab_size}));
  const std::vector<float> got = *a->ToFloat();
  const std::vector<float> ref = testing::ReferenceLogits(*config_, *store_, tokens, {});
  double mean = std::accumulate(ref.begin(), ref.end(), 0.0) / double(ref.size()), var = 0;
  for (float v : ref) var += (v - mean) * (v - mean);
  const double std = std::sqrt(var / double(ref.size()));
  double max_err = 0;
  for (size_t i = 0; i < ref.size(); ++i)
    max_err = std::max(max_err, double(std::fabs(got[i] - ref[i])));
  // Q8_0 weights: 8-bit activations (see gemma3_test's format bounds).
  EXPECT_LT(max_err, 0.1 * std);
}

TEST_F(CliModelTest, LogitsRejectBadInput) {
  CmdResult r = Unicorn("logits -m " + Model() + " --tokens 2,x,3 --out /dev/null");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("bad token id 'x'"), std::string::npos) << r.out;
  r = Unicorn("logits -m " + Model() + " --backend warp --tokens 2 --out /dev/null");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("available: cpu"), std::string::npos) << r.out;
  r = Unicorn("logits -m " + Model() + " --tokens 2,9999 --out /dev/null");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("9999"), std::string::npos) << r.out;
}

TEST_F(CliModelTest, RunIsReproducibleWithASeed) {
  const std::string args = "run -m " + Model() + " -p hello -n 6 --temp 0.8 --seed 9";
  CmdResult a = Unicorn(args), b = Unicorn(args);
  ASSERT_EQ(a.code, 0) << a.out;
  EXPECT_NE(a.out.find("generation"), std::string::npos) << a.out;
  // Identical text (the timing line differs).
  EXPECT_EQ(a.out.substr(0, a.out.find("[run]")), b.out.substr(0, b.out.find("[run]")));
}

// On a terminal, loading draws a bar layer by layer (script(1) gives the
// command a pseudo-terminal); off a terminal (the other tests, whose output
// must parse) it draws nothing.
TEST_F(CliModelTest, LoadShowsProgressOnATerminal) {
  if (std::system("script --version >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1)";
  const std::string run =
      std::string(UNICORN_BINARY_DIR) + "/bin/unicorn run -m " + Model() + " -p hello -n 2";
  FILE* p = popen(("script -qec '" + run + "' /dev/null").c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ASSERT_EQ(pclose(p), 0) << out;
  const std::string last = "100% layer " + std::to_string(config_->num_layers) + "/" +
                           std::to_string(config_->num_layers);
  EXPECT_NE(out.find("loading ["), std::string::npos) << out;
  EXPECT_NE(out.find(last), std::string::npos) << out;
  EXPECT_EQ(Unicorn("run -m " + Model() + " -p hello -n 2").out.find("loading ["),
            std::string::npos);
}

TEST_F(CliModelTest, BenchReportsJson) {
  auto j = BenchJson("-p 16 -n 8 -r 2");
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["test"], "pp16");
  EXPECT_EQ(j["results"][1]["test"], "tg8");
  EXPECT_GT(j["results"][1]["tok_s_mean"].get<double>(), 0);
  EXPECT_EQ(j["results"][1]["samples"].size(), 2u);
}

TEST_F(CliModelTest, BenchDecodesABatch) {
  auto j = BenchJson("-p 0 -n 4 -b 3 -r 1");
  ASSERT_FALSE(j.is_discarded());
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["test"], "tg4x3");
  EXPECT_EQ(j["results"][0]["tokens"], 12);
  EXPECT_GT(j["results"][0]["tok_s_mean"].get<double>(), 0);
  EXPECT_NE(Unicorn("bench -m " + Model() + " -n 4 -b 0").code, 0);
}

}  // namespace
}  // namespace unicorn
