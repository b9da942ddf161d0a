// Status values for every fallible operation in Unicorn.
//
// We use absl::Status / absl::StatusOr: their codes are the gRPC codes, so the
// service layer maps them one to one (see coordinator/grpc_status.h). Messages
// carry their context as a bracketed subsystem prefix, for example
//   "[shm] ftruncate(act0, 64 MiB): ENOSPC".
// Abort only for programmer bugs (UNICORN_CHECK); everything a user or a peer
// can cause travels as a Status.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"

namespace unicorn {

using absl::Status;
using absl::StatusOr;

// "ENOSPC (No space left on device)" for an errno value.
std::string ErrnoString(int err);

// An Internal/Unavailable/... status for a failed system call, with its errno:
// ErrnoError("[shm] ftruncate(act0)", ENOSPC).
Status ErrnoError(absl::string_view what, int err);

// Prepends context to a non-OK status, keeping its code: "[model] x.gguf: " + msg.
Status Annotate(const Status& s, absl::string_view context);

}  // namespace unicorn

#define UNICORN_STATUS_CONCAT_INNER(a, b) a##b
#define UNICORN_STATUS_CONCAT(a, b) UNICORN_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function if `expr` yields a non-OK Status.
#define UNICORN_RETURN_IF_ERROR(expr)                  \
  do {                                                 \
    ::absl::Status unicorn_status_ = (expr);           \
    if (!unicorn_status_.ok()) return unicorn_status_; \
  } while (0)

// UNICORN_ASSIGN_OR_RETURN(auto x, MaybeX()); returns the error, else binds the value.
#define UNICORN_ASSIGN_OR_RETURN(lhs, expr) \
  UNICORN_ASSIGN_OR_RETURN_IMPL(UNICORN_STATUS_CONCAT(unicorn_statusor_, __LINE__), lhs, expr)
#define UNICORN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

// Programmer-bug assertion: always on, aborts with file:line.
#define UNICORN_CHECK(cond)                                                                 \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: UNICORN_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)
