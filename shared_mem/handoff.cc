#include "shared_mem/handoff.h"

#include <time.h>

namespace unicorn::shm {

namespace {

int64_t NowNs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

}  // namespace

StatusOr<bool> SpinReceive(zmq::socket_t& socket, zmq::message_t& msg, const SpinPolicy& policy,
                           int timeout_ms) {
  try {
    const int64_t start = NowNs();
    if (policy.spin_us > 0) {
      const int64_t spin_end = start + int64_t{policy.spin_us} * 1000;
      do {
        if (socket.recv(msg, zmq::recv_flags::dontwait)) return true;
      } while (NowNs() < spin_end);
    }
    for (;;) {
      int wait_ms = -1;
      if (timeout_ms >= 0) {
        int64_t left_ns = start + int64_t{timeout_ms} * 1000000 - NowNs();
        if (left_ns <= 0) return socket.recv(msg, zmq::recv_flags::dontwait).has_value();
        wait_ms = static_cast<int>((left_ns + 999999) / 1000000);
      }
      zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
      zmq::poll(&item, 1, std::chrono::milliseconds(wait_ms));
      if (socket.recv(msg, zmq::recv_flags::dontwait)) return true;
    }
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("[shm] zmq receive: ", e.what()));
  }
}

Status SendDescriptor(zmq::socket_t& socket, const SlotDescriptor& d) {
  EncodedDescriptor bytes = Encode(d);
  try {
    if (!socket.send(zmq::buffer(bytes.data(), bytes.size()), zmq::send_flags::dontwait)) {
      return absl::UnavailableError("[shm] zmq send of a descriptor would block (peer gone?)");
    }
  } catch (const zmq::error_t& e) {
    return absl::UnavailableError(absl::StrCat("[shm] zmq send: ", e.what()));
  }
  return absl::OkStatus();
}

StatusOr<std::optional<SlotDescriptor>> ReceiveDescriptor(zmq::socket_t& socket,
                                                          const SpinPolicy& policy,
                                                          int timeout_ms) {
  zmq::message_t msg;
  UNICORN_ASSIGN_OR_RETURN(bool got, SpinReceive(socket, msg, policy, timeout_ms));
  if (!got) return std::optional<SlotDescriptor>();
  UNICORN_ASSIGN_OR_RETURN(
      SlotDescriptor d,
      Decode(std::span<const uint8_t>(static_cast<const uint8_t*>(msg.data()), msg.size())));
  return std::optional<SlotDescriptor>(d);
}

}  // namespace unicorn::shm
