// The one place where Unicorn status values become gRPC statuses. absl and
// gRPC share their code numbering, so the mapping is a cast plus the message.
#pragma once

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace unicorn {

inline grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

}  // namespace unicorn
