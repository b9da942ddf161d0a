// The model tools as a user runs them: unicorn-make-gguf and unicorn inspect.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>

#include "model/model_files.h"
#include "model/model_shapes.h"
#include "nlohmann/json.hpp"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

const std::string kBin = std::string(UNICORN_BINARY_DIR) + "/bin/";

// Runs a command; returns its exit code and stdout.
int Shell(const std::string& cmd, std::string* out = nullptr) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) {
    if (out) out->append(buf, n);
  }
  const int rc = ::pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

TEST(MakeGguf, TinyModelOpensWithTheShapesConfig) {
  testing::TempDir tmp;
  const std::string gguf = tmp.File("tiny.gguf"), mmproj = tmp.File("mmproj.gguf");
  ASSERT_EQ(Shell(kBin + "unicorn-make-gguf --shape tiny --seed 5 --out " + gguf +
                  " --mmproj-out " + mmproj),
            0);
  auto m = ModelFiles::Open(gguf, mmproj);
  ASSERT_TRUE(m.ok()) << m.status();
  Gemma3Config want = *Gemma3Shape("tiny");
  want.eos_token_ids = {1};  // the stand-in vocabulary has no <end_of_turn>
  EXPECT_EQ((*m)->config(), want);
  EXPECT_EQ((*m)->Find("blk.0.ffn_up.weight")->dtype, DType::kQ4_0);
  EXPECT_EQ((*m)->Find("token_embd.weight")->dtype, DType::kQ8_0);
  EXPECT_EQ((*m)->Find("v.blk.1.attn_q.weight")->dtype, DType::kF16);
  // Norms are stored as 1 + w with |w| < 0.1: held as w.
  const float* norm = reinterpret_cast<const float*>((*m)->Find("output_norm.weight")->data);
  EXPECT_LT(std::fabs(norm[0]), 0.1f);
  // The same seed writes the same bytes; another seed does not.
  ASSERT_EQ(Shell(kBin + "unicorn-make-gguf --shape tiny --seed 5 --out " + tmp.File("b.gguf")), 0);
  ASSERT_EQ(Shell(kBin + "unicorn-make-gguf --shape tiny --seed 6 --out " + tmp.File("c.gguf")), 0);
  EXPECT_EQ(testing::ReadFile(gguf), testing::ReadFile(tmp.File("b.gguf")));
  EXPECT_NE(testing::ReadFile(gguf), testing::ReadFile(tmp.File("c.gguf")));
  EXPECT_NE(
      Shell(kBin + "unicorn-make-gguf --shape huge --out " + tmp.File("x.gguf") + " 2>/dev/null"),
      0);
}

TEST(Inspect, JsonAndTextOutput) {
  testing::TempDir tmp;
  const std::string gguf = tmp.File("tiny.gguf");
  ASSERT_EQ(Shell(kBin + "unicorn-make-gguf --shape tiny --out " + gguf), 0);
  std::string out;
  ASSERT_EQ(Shell(kBin + "unicorn inspect --json " + gguf, &out), 0);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_EQ(j["format"], "gguf");
  EXPECT_EQ(j["config"]["hidden_size"], 128);
  EXPECT_EQ(j["tensors"].size(), j["total_tensors"].get<size_t>());
  EXPECT_EQ(j["tensors"][0]["name"], "token_embd.weight");
  EXPECT_EQ(j["tensors"][0]["dtype"], "q8_0");
  EXPECT_EQ(j["tensors"][0]["shape"], nlohmann::json({512, 128}));
  uint64_t sum = 0;
  for (const auto& t : j["tensors"]) sum += t["bytes"].get<uint64_t>();
  EXPECT_EQ(sum, j["total_bytes"].get<uint64_t>());

  out.clear();
  ASSERT_EQ(Shell(kBin + "unicorn inspect " + std::string(UNICORN_SOURCE_DIR) +
                      "/tests/data/models/text-1b-like",
                  &out),
            0);
  EXPECT_NE(out.find("(safetensors)"), std::string::npos) << out;
  EXPECT_NE(out.find("blk.6.ffn_down.weight"), std::string::npos) << out;
  EXPECT_NE(out.find("total: "), std::string::npos) << out;

  // A bad file: exit code 1 and the error on stderr.
  testing::WriteFile(tmp.File("bad.gguf"), "GGUF\3\0\0\0");
  out.clear();
  EXPECT_EQ(Shell(kBin + "unicorn inspect " + tmp.File("bad.gguf") + " 2>&1", &out), 1);
  EXPECT_NE(out.find("truncated file"), std::string::npos) << out;
}

}  // namespace
}  // namespace unicorn
