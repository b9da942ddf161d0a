// Moving descriptors over ZeroMQ: one 40-byte frame per handoff, the tensor
// itself stays in its slot. The waiting side busy-polls first (non-blocking
// receives for a bounded time), then blocks: a blocking ZeroMQ ipc receive
// costs a scheduler wake-up (tens of microseconds on small VMs), which would
// dominate a zero-copy handoff; the spin bound keeps an idle worker off the
// CPU. BusyPollUs(ControlConfig) is the bound the pipeline uses.
#pragma once

#include <optional>

#include "common/status.h"
#include "shared_mem/descriptor.h"
#include "zmq.hpp"

namespace unicorn::shm {

struct SpinPolicy {
  int spin_us = 200;  // non-blocking receive attempts for this long; 0 = block at once
  // sched_yield() between attempts: ZeroMQ moves every message through an I/O
  // thread on each side, and on a machine with few cores a spinning
  // application thread would otherwise hold the core those threads need.
  bool yield = true;
};

// Receives one message into `msg`: spins per `policy`, then blocks in
// zmq_poll until `timeout_ms` (counted from the call; -1 = forever) has
// passed. Returns false on timeout. Errors are ZeroMQ failures (a closed
// context, a socket in the wrong state).
StatusOr<bool> SpinReceive(zmq::socket_t& socket, zmq::message_t& msg, const SpinPolicy& policy,
                           int timeout_ms);

// Sends `d` as one frame (never blocks for long: descriptors are tiny).
Status SendDescriptor(zmq::socket_t& socket, const SlotDescriptor& d);

// SpinReceive + Decode. nullopt on timeout; an error for a malformed frame
// (which has then been consumed).
StatusOr<std::optional<SlotDescriptor>> ReceiveDescriptor(zmq::socket_t& socket,
                                                          const SpinPolicy& policy, int timeout_ms);

}  // namespace unicorn::shm
