#include "common/status.h"

#include <gtest/gtest.h>

namespace unicorn {
namespace {

TEST(Status, ErrnoErrorNamesCallAndErrno) {
  Status s = ErrnoError("[shm] ftruncate(act0, 64 MiB)", ENOSPC);
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "[shm] ftruncate(act0, 64 MiB): ENOSPC (No space left on device)");
}

TEST(Status, AnnotateKeepsCode) {
  Status s = Annotate(absl::NotFoundError("no tensor x"), "[model] a.gguf");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "[model] a.gguf: no tensor x");
}

StatusOr<int> Half(int x) {
  if (x % 2) return absl::InvalidArgumentError("odd");
  return x / 2;
}

StatusOr<int> Quarter(int x) {
  UNICORN_ASSIGN_OR_RETURN(int h, Half(x));
  UNICORN_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Status, AssignOrReturnPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_EQ(Quarter(6).status().message(), "odd");
}

}  // namespace
}  // namespace unicorn
