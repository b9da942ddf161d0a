// --recipe files of `unicorn quantize` (common/quant_recipe.h).
#include "common/quant_recipe.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace unicorn {
namespace {

std::string Write(const std::string& text) {
  char path[] = "/tmp/recipeXXXXXX";
  const int fd = ::mkstemp(path);
  ::close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(QuantRecipe, FirstMatchingGlobWins) {
  const std::string p = Write(
      "default: q4_k\n"
      "rules:\n"
      "  - {match: \"blk.0.*\", type: q8_0}\n"
      "  - {match: \"blk.*.ffn_down.weight\", type: q6_k}\n");
  auto r = LoadQuantRecipe(p);
  std::remove(p.c_str());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->default_type, "q4_k");
  EXPECT_EQ(*r->Find("blk.0.ffn_down.weight"), "q8_0");
  EXPECT_EQ(*r->Find("blk.12.ffn_down.weight"), "q6_k");
  EXPECT_EQ(r->Find("blk.12.ffn_up.weight"), nullptr);
}

TEST(QuantRecipe, BadFilesAreErrorsNamingThem) {
  const std::string p = Write("rules:\n  - {match: x}\n");
  auto r = LoadQuantRecipe(p);
  EXPECT_EQ(r.status().message(),
            "[recipe] " + p + ": rules[0]: expected {match: GLOB, type: TYPE}");
  std::remove(p.c_str());
  const std::string q = Write("typo: 1\n");
  EXPECT_NE(LoadQuantRecipe(q).status().message().find("unknown key typo"), std::string::npos);
  std::remove(q.c_str());
  EXPECT_FALSE(LoadQuantRecipe("/nonexistent/recipe.yaml").ok());
}

}  // namespace
}  // namespace unicorn
