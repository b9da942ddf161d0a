// Helpers shared by the shared-memory tests and their peer process
// (shm_test_peer): deterministic payload patterns and a tiny control channel
// (a SOCK_SEQPACKET socketpair) over which the test and the peer exchange
// descriptors and status lines.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "shared_mem/descriptor.h"

namespace unicorn::shm::testing {

// Word j of pattern `seed` (splitmix64, truncated): every write of a test has
// its own seed, so a byte from another write is always detected.
inline uint32_t PatternWord(uint64_t seed, uint64_t j) {
  uint64_t z = seed * 0x9E3779B97F4A7C15ull + j + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<uint32_t>(z ^ (z >> 31));
}

inline void FillPattern(std::span<uint8_t> bytes, uint64_t seed) {
  auto* w = reinterpret_cast<uint32_t*>(bytes.data());
  for (size_t j = 0; j < bytes.size() / 4; ++j) w[j] = PatternWord(seed, j);
}

// Index of the first word that differs from pattern `seed`, or -1.
inline int64_t FirstMismatch(const uint8_t* bytes, size_t n, uint64_t seed) {
  const auto* w = reinterpret_cast<const uint32_t*>(bytes);
  for (size_t j = 0; j < n / 4; ++j) {
    if (w[j] != PatternWord(seed, j)) return static_cast<int64_t>(j);
  }
  return -1;
}

// Control messages: one type byte, then the payload.
enum class Msg : char {
  kDescriptor = 'D',  // 40-byte SlotDescriptor
  kStatus = 'S',      // text: "OK ..." or "ERR <code> <message>"
  kStalled = 'K',     // the writer is inside a write and will stay there
  kGo = 'G',          // the test lets the peer go on
};

inline bool SendMsg(int fd, Msg type, const void* data, size_t n) {
  std::vector<char> buf(1 + n);
  buf[0] = static_cast<char>(type);
  if (n > 0) std::memcpy(buf.data() + 1, data, n);
  return ::send(fd, buf.data(), buf.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(buf.size());
}
inline bool SendText(int fd, Msg type, const std::string& s) {
  return SendMsg(fd, type, s.data(), s.size());
}
inline bool SendDesc(int fd, const SlotDescriptor& d) {
  EncodedDescriptor e = Encode(d);
  return SendMsg(fd, Msg::kDescriptor, e.data(), e.size());
}

struct Received {
  Msg type;
  std::string payload;
};

// Waits up to `timeout_ms` for one message; nullopt on timeout or EOF.
inline std::optional<Received> RecvMsg(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
  if (n <= 0) return std::nullopt;
  return Received{static_cast<Msg>(buf[0]), std::string(buf + 1, static_cast<size_t>(n - 1))};
}

inline std::optional<SlotDescriptor> AsDesc(const Received& r) {
  if (r.type != Msg::kDescriptor) return std::nullopt;
  auto d = Decode(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(r.payload.data()),
                                           r.payload.size()));
  if (!d.ok()) return std::nullopt;
  return *d;
}

// The control fd number inside a peer process.
inline constexpr int kPeerControlFd = 3;

}  // namespace unicorn::shm::testing
