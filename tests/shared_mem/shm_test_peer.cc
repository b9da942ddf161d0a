// The other process of the shared-memory tests. The test starts it with
// fork + exec, its control socket on fd 3 (test_util.h), and it attaches to
// the test's arena over the fd server socket like a real worker would.
//   shm_test_peer writer  <socket> <iterations> <ring> <hidden>
//   shm_test_peer stall   <socket> <good seed> <torn seed> <hidden>
//   shm_test_peer restart <socket> <seed> <hidden>
//   shm_test_peer reader  <socket>
//   shm_test_peer fetch   <socket> [uid to become first]
//   shm_test_peer hammer  <socket> <max iterations> <hidden>
//   shm_test_peer raw     <socket> <uid to become first>
#include <grp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/log.h"
#include "shared_mem/fd_passing.h"
#include "shared_mem/slot.h"
#include "shared_mem/tensor_desc.h"
#include "tests/shared_mem/test_util.h"

namespace unicorn::shm::testing {
namespace {

constexpr int kFd = kPeerControlFd;
constexpr int kAttachTimeoutMs = 5000;

int Fail(const Status& s) {
  SendText(kFd, Msg::kStatus, absl::StrCat("ERR ", static_cast<int>(s.code()), " ", s.message()));
  return 1;
}

#define PEER_ASSIGN(lhs, expr)                        \
  auto lhs##_or = (expr);                             \
  if (!lhs##_or.ok()) return Fail(lhs##_or.status()); \
  auto lhs = std::move(*lhs##_or)

int Writer(const std::string& sock, int iterations, int ring_size, int64_t hidden) {
  PEER_ASSIGN(arena, AttachArena(sock, kAttachTimeoutMs));
  Region* act = arena->region("act");
  if (act == nullptr) return Fail(absl::NotFoundError("no region act"));
  PEER_ASSIGN(ring, WriterRing::Claim(*act, 0, ring_size, act->NextWriterGeneration()));
  for (int i = 0; i < iterations; ++i) {
    PEER_ASSIGN(w, ring.Acquire(10000));
    PEER_ASSIGN(t, RowMajor(TensorDType::kF32, {1 + i % 16, hidden}));
    PEER_ASSIGN(bytes, w->BeginWrite(t));
    FillPattern(bytes, static_cast<uint64_t>(i) + 1);
    PEER_ASSIGN(d, w->Commit());
    if (!SendDesc(kFd, d)) return Fail(absl::UnavailableError("control socket closed"));
  }
  SendText(kFd, Msg::kStatus, "OK");
  return 0;
}

int Stall(const std::string& sock, uint64_t good_seed, uint64_t torn_seed, int64_t hidden) {
  PEER_ASSIGN(arena, AttachArena(sock, kAttachTimeoutMs));
  Region* act = arena->region("act");
  PEER_ASSIGN(w, SlotWriter::Claim(*act, 0, act->NextWriterGeneration()));
  PEER_ASSIGN(t, RowMajor(TensorDType::kF32, {16, hidden}));
  PEER_ASSIGN(bytes, w.BeginWrite(t));
  FillPattern(bytes, good_seed);
  PEER_ASSIGN(d, w.Commit());
  SendDesc(kFd, d);
  // The second write stops half way, as if the process died in the middle
  // of producing the tensor: the sequence stays odd.
  PEER_ASSIGN(torn, w.BeginWrite(t));
  FillPattern(torn.subspan(0, torn.size() / 2), torn_seed);
  SendMsg(kFd, Msg::kStalled, nullptr, 0);
  for (;;) ::pause();  // the test kills us here with SIGKILL
}

int Restart(const std::string& sock, uint64_t seed, int64_t hidden) {
  PEER_ASSIGN(arena, AttachArena(sock, kAttachTimeoutMs));
  Region* act = arena->region("act");
  PEER_ASSIGN(w, SlotWriter::Claim(*act, 0, act->NextWriterGeneration()));
  PEER_ASSIGN(t, RowMajor(TensorDType::kF32, {16, hidden}));
  PEER_ASSIGN(bytes, w.BeginWrite(t));
  FillPattern(bytes, seed);
  PEER_ASSIGN(d, w.Commit());
  SendDesc(kFd, d);
  SendText(kFd, Msg::kStatus, "OK");
  return 0;
}

int Reader(const std::string& sock) {
  PEER_ASSIGN(arena, AttachArena(sock, kAttachTimeoutMs));
  auto msg = RecvMsg(kFd, 10000);
  if (!msg || !AsDesc(*msg)) return Fail(absl::DeadlineExceededError("no descriptor"));
  SlotDescriptor d = *AsDesc(*msg);
  PEER_ASSIGN(view, BeginRead(*arena, d));
  // The seed travels in the descriptor-independent part of the test: the
  // reader reports the first word, the test compares it with its pattern.
  uint32_t first = 0;
  std::memcpy(&first, view.data, sizeof(first));
  uint64_t sum = 0;
  const auto* w = reinterpret_cast<const uint32_t*>(view.data);
  for (size_t j = 0; j < view.tensor.byte_size / 4; ++j) sum += w[j];
  Status end = EndRead(view);
  if (!end.ok()) return Fail(end);
  SendText(kFd, Msg::kStatus, absl::StrCat("OK ", first, " ", sum));
  for (;;) ::pause();  // stays attached until the test kills it
}

Status BecomeUid(int uid) {
  if (uid >= 0 && (::setgroups(0, nullptr) != 0 || ::setgid(static_cast<gid_t>(uid)) != 0 ||
                   ::setuid(static_cast<uid_t>(uid)) != 0)) {
    return ErrnoError("setuid", errno);
  }
  return absl::OkStatus();
}

int Fetch(const std::string& sock, int uid) {
  if (Status s = BecomeUid(uid); !s.ok()) return Fail(s);
  PEER_ASSIGN(arena, AttachArena(sock, kAttachTimeoutMs));
  Region* r = arena->region(1u);
  uint8_t* p = r->payload(0);
  std::string first(reinterpret_cast<const char*>(p), 16);
  std::memcpy(p + 64, "PEER-WROTE", 10);  // the test looks for this in its mapping
  SendText(kFd, Msg::kStatus, absl::StrCat("OK ", arena->regions().size(), " ", first));
  return 0;
}

// Connects without the client library (no check of the server's uid) and
// reports the first record the server sends: what a foreign client would get.
int Raw(const std::string& sock, int uid) {
  if (Status s = BecomeUid(uid); !s.ok()) return Fail(s);
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, sock.data(), std::min(sock.size(), sizeof(addr.sun_path) - 1));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Fail(ErrnoError("connect", errno));
  }
  char record[128] = {};
  iovec iov{record, sizeof(record)};
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = ::recvmsg(fd, &msg, 0);
  if (n != 128) return Fail(ErrnoError(absl::StrCat("recvmsg got ", n), errno));
  bool got_fd = CMSG_FIRSTHDR(&msg) != nullptr;
  uint16_t type = 0;
  std::memcpy(&type, record + 6, 2);
  SendText(kFd, Msg::kStatus,
           absl::StrCat("OK type ", type, got_fd ? " with fd " : " no fd ",
                        std::string(record + 32, strnlen(record + 32, 96))));
  return 0;
}

int Hammer(const std::string& sock, int iterations, int64_t hidden) {
  PEER_ASSIGN(arena, AttachArena(sock, kAttachTimeoutMs));
  Region* act = arena->region("act");
  PEER_ASSIGN(w, SlotWriter::Claim(*act, 0, act->NextWriterGeneration()));
  SendText(kFd, Msg::kStatus, "READY");
  for (int i = 1; i <= iterations; ++i) {
    if (i % 64 == 0) {  // the test says when it has seen enough
      auto m = RecvMsg(kFd, 0);
      if (m && m->type == Msg::kGo) break;
    }
    PEER_ASSIGN(t, RowMajor(TensorDType::kI32, {1 + i % 8, hidden}));
    PEER_ASSIGN(bytes, w.BeginWrite(t));
    auto* words = reinterpret_cast<uint32_t*>(bytes.data());
    for (size_t j = 0; j < bytes.size() / 4; ++j) words[j] = static_cast<uint32_t>(i);
    PEER_ASSIGN(d, w.Commit());
    (void)d;
  }
  SendText(kFd, Msg::kStatus, "OK");
  return 0;
}

int Main(int argc, char** argv) {
  InitLogging("shm-peer");
  if (argc < 3) {
    std::fprintf(stderr, "usage: shm_test_peer <mode> <socket> ...\n");
    return 2;
  }
  std::string mode = argv[1];
  std::string sock = argv[2];
  auto arg = [&](int i) { return i < argc ? std::strtoll(argv[i], nullptr, 10) : -1; };
  if (mode == "writer")
    return Writer(sock, static_cast<int>(arg(3)), static_cast<int>(arg(4)), arg(5));
  if (mode == "stall") return Stall(sock, arg(3), arg(4), arg(5));
  if (mode == "restart") return Restart(sock, arg(3), arg(4));
  if (mode == "reader") return Reader(sock);
  if (mode == "fetch") return Fetch(sock, static_cast<int>(arg(3)));
  if (mode == "raw") return Raw(sock, static_cast<int>(arg(3)));
  if (mode == "hammer") return Hammer(sock, static_cast<int>(arg(3)), arg(4));
  std::fprintf(stderr, "unknown mode %s\n", mode.c_str());
  return 2;
}

}  // namespace
}  // namespace unicorn::shm::testing

int main(int argc, char** argv) { return unicorn::shm::testing::Main(argc, argv); }
