// The CLI's progress bar: its rendering, and that it stays silent when not
// drawing on a terminal (scripts and logs must not see it).
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "tools/cli/progress.h"

namespace unicorn::cli {
namespace {

std::string Read(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  char buf[256];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
  return s;
}

TEST(ProgressTest, RendersFractionAndClamps) {
  EXPECT_EQ(RenderProgress("load", 1, 4, "layer 1/4", 8), "load [##......]  25% layer 1/4");
  EXPECT_EQ(RenderProgress("load", 9, 4, "", 4), "load [####] 100% ");
  EXPECT_EQ(RenderProgress("load", -3, 4, "", 4), "load [....]   0% ");
  EXPECT_EQ(RenderProgress("x", 0, 0, "", 2), "x [##] 100% ");  // nothing to do is done
}

TEST(ProgressTest, DrawsOneLineAndEndsItOnce) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBar bar("q", 2, f, /*enabled=*/true);
    bar.Add(1, "a");
    bar.Add(1, "b");
    bar.Done();
    bar.Add(1, "after");  // ignored once done
  }                       // the destructor adds no second newline
  const std::string out = Read(f);
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_NE(out.find("100% b"), std::string::npos) << out;
  EXPECT_EQ(out.find("after"), std::string::npos) << out;
  std::fclose(f);
}

TEST(ProgressTest, DisabledWritesNothing) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  {
    ProgressBar bar("q", 2, f, /*enabled=*/false);
    bar.Add(2, "x");
    EXPECT_EQ(bar.done(), 2);
  }
  EXPECT_EQ(Read(f), "");
  std::fclose(f);
}

}  // namespace
}  // namespace unicorn::cli
