#include "common/wire.h"

#include <time.h>

#include <cstring>

#include "proto/unicorn/worker.pb.h"

namespace unicorn::wire {

const char* CommandName(Command c) {
  switch (c) {
    case Command::kHello:
      return "Hello";
    case Command::kHelloAck:
      return "HelloAck";
    case Command::kHeartbeat:
      return "Heartbeat";
    case Command::kHeartbeatAck:
      return "HeartbeatAck";
    case Command::kShutdown:
      return "Shutdown";
    case Command::kError:
      return "Error";
    case Command::kLoadShard:
      return "LoadShard";
    case Command::kShardReady:
      return "ShardReady";
    case Command::kRunStage:
      return "RunStage";
    case Command::kStageDone:
      return "StageDone";
    case Command::kFreeSequences:
      return "FreeSequences";
  }
  return "?";
}

namespace {

bool KnownCommand(uint8_t c) {
  return c >= static_cast<uint8_t>(Command::kHello) && c <= kLastCommand;
}

constexpr size_t kTagLen = sizeof(kProtocolTag) - 1;

}  // namespace

Status Send(zmq::socket_t& socket, const std::string& identity, Command command,
            const google::protobuf::MessageLite& payload) {
  std::string tag(kProtocolTag, kTagLen);
  tag.push_back(static_cast<char>(kProtocolVersion));
  uint8_t cmd = static_cast<uint8_t>(command);
  std::string body;
  if (!payload.SerializeToString(&body)) {
    return absl::InternalError(absl::StrCat("[wire] serialize ", CommandName(command)));
  }
  try {
    if (!identity.empty()) {
      socket.send(zmq::buffer(identity), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    }
    socket.send(zmq::buffer(tag), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    socket.send(zmq::buffer(&cmd, 1), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    auto sent = socket.send(zmq::buffer(body), zmq::send_flags::dontwait);
    if (!sent) {
      return absl::UnavailableError(
          absl::StrCat("[wire] send ", CommandName(command), ": peer queue full"));
    }
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(
        absl::StrCat("[wire] send ", CommandName(command), ": ", e.what()));
  }
  return absl::OkStatus();
}

void SendError(zmq::socket_t& socket, const std::string& identity, const Status& status) {
  Error err;
  err.set_code(int(status.code()));
  err.set_message(std::string(status.message()));
  (void)Send(socket, identity, Command::kError, err);
}

StatusOr<Message> Decode(std::vector<zmq::message_t>& frames, bool with_identity) {
  size_t i = 0;
  Message m;
  if (with_identity) {
    if (frames.empty()) return absl::InvalidArgumentError("[wire] empty message");
    m.identity = frames[0].to_string();
    i = 1;
  }
  size_t n = frames.size() - i;
  if (n != 3) {
    return absl::InvalidArgumentError(
        absl::StrCat("[wire] expected 3 frames (tag, command, payload), got ", n));
  }
  const auto& tag = frames[i];
  if (tag.size() != kTagLen + 1 || std::memcmp(tag.data(), kProtocolTag, kTagLen) != 0) {
    return absl::InvalidArgumentError("[wire] not a Unicorn control message (bad protocol tag)");
  }
  uint8_t version = static_cast<const uint8_t*>(tag.data())[kTagLen];
  if (version != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat("[wire] protocol version ", int(version),
                                                      " not supported (this build speaks ",
                                                      int(kProtocolVersion), ")"));
  }
  const auto& cmd = frames[i + 1];
  if (cmd.size() != 1) return absl::InvalidArgumentError("[wire] command frame must be 1 byte");
  uint8_t c = *static_cast<const uint8_t*>(cmd.data());
  if (!KnownCommand(c)) {
    return absl::InvalidArgumentError(absl::StrCat("[wire] unknown command ", int(c)));
  }
  m.command = static_cast<Command>(c);
  m.payload = frames[i + 2].to_string();
  return m;
}

StatusOr<std::optional<Message>> TryReceive(zmq::socket_t& socket, bool with_identity,
                                            std::string* sender) {
  std::vector<zmq::message_t> frames;
  try {
    while (true) {
      zmq::message_t f;
      auto got = socket.recv(f, frames.empty() ? zmq::recv_flags::dontwait : zmq::recv_flags::none);
      if (!got) return std::optional<Message>();
      bool more = f.more();
      frames.push_back(std::move(f));
      if (!more) break;
      if (frames.size() > 16) {
        // Drain the rest of an oversized message so the socket stays in sync.
        zmq::message_t rest;
        while (socket.recv(rest, zmq::recv_flags::none) && rest.more()) {
        }
        if (sender != nullptr && with_identity) *sender = frames[0].to_string();
        return absl::InvalidArgumentError("[wire] too many frames");
      }
    }
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("[wire] recv: ", e.what()));
  }
  if (sender != nullptr && with_identity && !frames.empty()) *sender = frames[0].to_string();
  UNICORN_ASSIGN_OR_RETURN(Message m, Decode(frames, with_identity));
  return std::optional<Message>(std::move(m));
}

Status ParsePayload(const Message& m, google::protobuf::MessageLite* out) {
  if (!out->ParseFromString(m.payload)) {
    return absl::InvalidArgumentError(absl::StrCat("[wire] malformed ", CommandName(m.command),
                                                   " payload (", m.payload.size(), " bytes)"));
  }
  return absl::OkStatus();
}

int64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace unicorn::wire
