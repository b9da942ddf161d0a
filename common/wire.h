// The worker control protocol: how the coordinator (ZeroMQ ROUTER) and each
// device worker (ZeroMQ DEALER) talk. This header is the one place that
// documents it.
//
// Frames of one message, as the DEALER sends them (the ROUTER sees the
// peer's routing identity in front of them, and puts it back when replying):
//   [0] protocol tag   "UNICORN" followed by one version byte (kProtocolVersion)
//   [1] command        one byte, a Command value
//   [2] payload        the protobuf message of that command (proto/unicorn/worker.proto)
//   [3...]             reserved; a message with more frames is rejected
//
// State machine (Paranoid Pirate, see the ZeroMQ guide):
//   worker:  connect -> Hello -> (HelloAck) -> serve; Heartbeat every interval;
//            any traffic from the coordinator resets its liveness counter;
//            liveness 0 -> close the socket, wait (backoff doubling up to a cap),
//            reconnect and send Hello again with the same incarnation.
//            An Error is not proof of life; an Error with UNAUTHENTICATED
//            means "unknown connection" (the coordinator restarted): the
//            worker says Hello again at once and keeps its process state.
//   coordinator: a Hello registers (or re-registers) the worker by name; any
//            traffic resets that worker's expiry; silence for
//            interval * liveness marks it dead. Pipeline replies carry the
//            step id they answer (RunStage.step_id): a reply to any step but
//            the one in flight (a hung worker waking up) is dropped.
//
// Images (version 1 carries them without a new command): the coordinator
// decodes and normalizes each image, writes its pixels into the arena and
// sends a RunStage with `vision` set to the plan's vision worker, which
// answers a StageDone naming the slot of the image's embeddings. The
// coordinator keeps those embeddings with the request (a replay after a
// worker loss reuses them) and hands each prefill step's image rows to the
// embedding stage in RunStage.image_embeds; SeqRows.image_rows says which
// rows they are, for the embedding and for the attention mask.
// A malformed message is answered with an Error and otherwise ignored: a
// peer never dies because of what it received.
//
// Clocks: every timestamp in these messages (Heartbeat.sent_ns, Span.start_ns
// ...) is the sender's CLOCK_MONOTONIC. On one host that clock is shared by
// all processes, so the coordinator uses workers' spans as they are. A worker
// on another host would be aligned with the offset its heartbeats measure:
// offset = HeartbeatAck.received_ns - (echoed_sent_ns + rtt / 2), subtracted
// from the worker's span times (error bound: rtt / 2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "google/protobuf/message_lite.h"
#include "zmq.hpp"

namespace unicorn::wire {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr char kProtocolTag[] = "UNICORN";  // 7 bytes, then the version byte

enum class Command : uint8_t {
  kHello = 1,
  kHelloAck = 2,
  kHeartbeat = 3,
  kHeartbeatAck = 4,
  kShutdown = 5,
  kError = 6,
  kLoadShard = 7,
  kShardReady = 8,
  kRunStage = 9,
  kStageDone = 10,
  kFreeSequences = 11,
};
inline constexpr uint8_t kLastCommand = 11;

const char* CommandName(Command c);

struct Message {
  std::string identity;  // routing id (ROUTER side only)
  Command command{};
  std::string payload;  // serialized protobuf
};

// Sends one message. `identity` is empty on the DEALER side.
Status Send(zmq::socket_t& socket, const std::string& identity, Command command,
            const google::protobuf::MessageLite& payload);

// Answers a peer with an Error carrying `status` (best effort: a full or
// closed peer is not an error of ours). `identity` is empty on the DEALER side.
void SendError(zmq::socket_t& socket, const std::string& identity, const Status& status);

// Receives one message without blocking. Returns nullopt when nothing is
// waiting; an error for a malformed message (which has then been consumed).
// `with_identity` is true on the ROUTER side; then, on an error, `*sender`
// (if given) names the peer that sent the bad message so it can be answered.
StatusOr<std::optional<Message>> TryReceive(zmq::socket_t& socket, bool with_identity,
                                            std::string* sender = nullptr);

// Validates the frames of one message (exposed for tests and fuzzing).
StatusOr<Message> Decode(std::vector<zmq::message_t>& frames, bool with_identity);

// Parses the payload into `out`; errors name the command.
Status ParsePayload(const Message& m, google::protobuf::MessageLite* out);

// CLOCK_MONOTONIC in nanoseconds: comparable across processes of one host.
int64_t MonotonicNs();

}  // namespace unicorn::wire
