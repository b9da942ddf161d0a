// Handing region fds to peers: the arena's owner listens on a Unix socket in
// the private runtime folder (mode 0700, EnsurePrivateDir) and sends every
// region's fd (SCM_RIGHTS) to each peer that connects. Nothing is ever named
// in /dev/shm or anywhere else world-reachable: the socket is the only way in,
// and both sides check the other's credentials (SO_PEERCRED: same uid), so
// even a misconfigured folder does not leak the buffers to another user.
//
// Protocol (SOCK_SEQPACKET, one record per packet, little-endian PODs):
//   server -> client: one kRegion record per region, with its fd attached,
//                     then one kEnd record carrying the region count;
//                     or one kRejected record with the reason, then close.
// The client sends nothing; the server closes after kEnd.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "shared_mem/arena.h"
#include "shared_mem/buffer.h"

namespace unicorn::shm {

// What a peer receives per region.
struct ReceivedRegion {
  uint32_t region_id = 0;
  int fd = -1;  // owned by the receiver
  uint64_t size = 0;
  uint64_t generation = 0;  // the owner's generation
  BufferKind kind = BufferKind::kMemfd;
  std::string name;
};

class FdServer {
 public:
  // Serves `arena` (which must outlive the server) at `socket_path`. The
  // socket's folder is created private first; a stale socket there is
  // replaced. Starts one background thread.
  static StatusOr<std::unique_ptr<FdServer>> Start(const Arena& arena,
                                                   const std::string& socket_path);
  ~FdServer();  // stops the thread, removes the socket

  const std::string& path() const { return path_; }
  int served() const { return served_.load(); }
  int rejected() const { return rejected_.load(); }

  // Answers one connected socket (exposed for tests): checks the peer's uid,
  // then sends the records. Does not close `conn`.
  Status ServeConnection(int conn);

 private:
  FdServer(const Arena& arena, std::string path, int listen_fd, int stop_fd)
      : arena_(arena), path_(std::move(path)), listen_fd_(listen_fd), stop_fd_(stop_fd) {}
  void Loop();

  const Arena& arena_;
  std::string path_;
  int listen_fd_;
  int stop_fd_;  // eventfd that wakes the loop to stop
  std::thread thread_;
  std::atomic<int> served_{0};
  std::atomic<int> rejected_{0};
};

// Connects to an FdServer and receives its regions; waits at most
// `timeout_ms` in total. Errors: no server (Unavailable/NotFound), a server
// of another uid, a rejection (PermissionDenied), a malformed record.
StatusOr<std::vector<ReceivedRegion>> FetchRegions(const std::string& socket_path, int timeout_ms);

// FetchRegions + map and validate every region: the peer's view of the
// owner's arena.
StatusOr<std::unique_ptr<Arena>> AttachArena(const std::string& socket_path, int timeout_ms);

}  // namespace unicorn::shm
