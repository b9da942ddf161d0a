#include "common/status.h"

#include <cstring>

namespace unicorn {

std::string ErrnoString(int err) {
  const char* name = strerrorname_np(err);
  return absl::StrCat(name ? name : "E?", " (", std::strerror(err), ")");
}

Status ErrnoError(absl::string_view what, int err) {
  std::string msg = absl::StrCat(what, ": ", ErrnoString(err));
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(msg);
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(msg);
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
      return absl::ResourceExhaustedError(msg);
    case EINVAL:
      return absl::InvalidArgumentError(msg);
    case EAGAIN:
    case ECONNREFUSED:
    case ECONNRESET:
      return absl::UnavailableError(msg);
    default:
      return absl::InternalError(msg);
  }
}

Status Annotate(const Status& s, absl::string_view context) {
  if (s.ok()) return s;
  return Status(s.code(), absl::StrCat(context, ": ", s.message()));
}

}  // namespace unicorn
