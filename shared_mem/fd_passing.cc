#include "shared_mem/fd_passing.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "common/daemon.h"
#include "common/log.h"

namespace unicorn::shm {

namespace {

constexpr uint32_t kRecordMagic = 0x50444655;  // "UFDP"
constexpr uint16_t kRecordVersion = 1;
constexpr int kSendTimeoutMs = 1000;  // a peer that stops reading is dropped

enum class RecordType : uint16_t { kRegion = 1, kEnd = 2, kRejected = 3 };

struct Record {
  uint32_t magic = kRecordMagic;
  uint16_t version = kRecordVersion;
  RecordType type = RecordType::kEnd;
  uint32_t region_id = 0;  // kEnd: region count
  uint8_t kind = 0;
  uint8_t reserved[3] = {};
  uint64_t size = 0;
  uint64_t generation = 0;
  char text[96] = {};  // kRegion: name; kRejected: reason (NUL-terminated)
};
static_assert(sizeof(Record) == 128);

void SetText(Record* r, const std::string& s) {
  std::memcpy(r->text, s.data(), std::min(s.size(), sizeof(r->text) - 1));
}

std::string Text(const Record& r) { return std::string(r.text, strnlen(r.text, sizeof(r.text))); }

Status FillAddress(const std::string& path, sockaddr_un* addr) {
  *addr = sockaddr_un{};
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr->sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("[shm] socket path too long (", path.size(),
                                                   " bytes, max ", sizeof(addr->sun_path) - 1,
                                                   "): ", path));
  }
  std::memcpy(addr->sun_path, path.data(), path.size());
  return absl::OkStatus();
}

StatusOr<ucred> PeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ErrnoError("[shm] getsockopt(SO_PEERCRED)", errno);
  }
  return cred;
}

void SetTimeout(int fd, int option, int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

Status SendRecord(int conn, const Record& rec, int fd_to_send) {
  iovec iov{const_cast<Record*>(&rec), sizeof(rec)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (fd_to_send >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &fd_to_send, sizeof(int));
  }
  ssize_t n = ::sendmsg(conn, &msg, MSG_NOSIGNAL);
  if (n < 0) return ErrnoError("[shm] sendmsg", errno);
  if (static_cast<size_t>(n) != sizeof(rec)) {
    return absl::InternalError(absl::StrCat("[shm] sendmsg: short write ", n));
  }
  return absl::OkStatus();
}

// Receives one record and its fd (-1 if none). Extra fds are closed.
Status ReceiveRecord(int conn, Record* rec, int* fd) {
  *fd = -1;
  iovec iov{rec, sizeof(*rec)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))] = {};
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n = ::recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return absl::DeadlineExceededError("[shm] fd server: timed out waiting for a record");
    }
    return ErrnoError("[shm] recvmsg", errno);
  }
  std::vector<int> fds;
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < count; ++i) {
        int f;
        std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        fds.push_back(f);
      }
    }
  }
  auto close_all = [&fds] {
    for (int f : fds) ::close(f);
  };
  if (n == 0) {
    close_all();
    return absl::UnavailableError("[shm] fd server closed the connection early");
  }
  if (static_cast<size_t>(n) != sizeof(*rec) || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
    close_all();
    return absl::DataLossError(absl::StrCat("[shm] fd server sent a malformed record (", n,
                                            " bytes, flags 0x", absl::Hex(msg.msg_flags), ")"));
  }
  if (rec->magic != kRecordMagic || rec->version != kRecordVersion) {
    close_all();
    return absl::DataLossError(absl::StrCat("[shm] fd server record: bad magic/version 0x",
                                            absl::Hex(rec->magic), "/", rec->version));
  }
  if (fds.size() > 1) {
    close_all();
    return absl::DataLossError(
        absl::StrCat("[shm] fd server sent ", fds.size(), " fds in one record"));
  }
  if (!fds.empty()) *fd = fds[0];
  return absl::OkStatus();
}

}  // namespace

StatusOr<std::unique_ptr<FdServer>> FdServer::Start(const Arena& arena,
                                                    const std::string& socket_path) {
  std::filesystem::path p(socket_path);
  UNICORN_RETURN_IF_ERROR(Annotate(EnsurePrivateDir(p.parent_path().string()), "[shm] fd server"));
  sockaddr_un addr;
  UNICORN_RETURN_IF_ERROR(FillAddress(socket_path, &addr));
  struct stat st {};
  if (::lstat(socket_path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat("[shm] fd server: ", socket_path, " exists and is not a socket"));
    }
    ::unlink(socket_path.c_str());  // a stale socket of an earlier owner
  }
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("[shm] socket(AF_UNIX)", errno);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    Status s = ErrnoError(absl::StrCat("[shm] bind(", socket_path, ")"), errno);
    ::close(fd);
    return s;
  }
  ::chmod(socket_path.c_str(), 0600);
  if (::listen(fd, 16) != 0) {
    Status s = ErrnoError(absl::StrCat("[shm] listen(", socket_path, ")"), errno);
    ::close(fd);
    ::unlink(socket_path.c_str());
    return s;
  }
  int stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop < 0) {
    Status s = ErrnoError("[shm] eventfd", errno);
    ::close(fd);
    ::unlink(socket_path.c_str());
    return s;
  }
  std::unique_ptr<FdServer> server(new FdServer(arena, socket_path, fd, stop));
  server->thread_ = std::thread([s = server.get()] { s->Loop(); });
  LOG_INFO("[shm] serving {} region fds at {}", arena.regions().size(), socket_path);
  return server;
}

FdServer::~FdServer() {
  uint64_t one = 1;
  if (::write(stop_fd_, &one, sizeof(one)) < 0) {
    LOG_WARN("[shm] fd server: cannot signal stop: {}", ErrnoString(errno));
  }
  if (thread_.joinable()) thread_.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
  ::unlink(path_.c_str());
}

void FdServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      LOG_ERROR("[shm] fd server poll: {}", ErrnoString(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) {
      if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
        LOG_WARN("[shm] fd server accept: {}", ErrnoString(errno));
      }
      continue;
    }
    Status s = ServeConnection(conn);
    if (!s.ok()) LOG_WARN("{}", s);
    ::close(conn);
  }
}

Status FdServer::ServeConnection(int conn) {
  SetTimeout(conn, SO_SNDTIMEO, kSendTimeoutMs);
  UNICORN_ASSIGN_OR_RETURN(ucred cred, PeerCredentials(conn));
  if (cred.uid != ::geteuid()) {
    rejected_.fetch_add(1);
    std::string why = absl::StrCat("uid ", cred.uid, " (pid ", cred.pid,
                                   ") is not the owner's uid ", ::geteuid());
    Record rej;
    rej.type = RecordType::kRejected;
    SetText(&rej, why);
    (void)SendRecord(conn, rej, -1);  // best effort: the peer learns why
    return absl::PermissionDeniedError(absl::StrCat("[shm] fd server rejected a peer: ", why));
  }
  for (const auto& r : arena_.regions()) {
    Record rec;
    rec.type = RecordType::kRegion;
    rec.region_id = r->id();
    rec.kind = static_cast<uint8_t>(r->buffer().kind());
    rec.size = r->size();
    rec.generation = r->owner_generation();
    SetText(&rec, r->name());
    UNICORN_RETURN_IF_ERROR(Annotate(SendRecord(conn, rec, r->buffer().fd()),
                                     absl::StrCat("[shm] fd server: region ", r->id())));
  }
  Record end;
  end.type = RecordType::kEnd;
  end.region_id = static_cast<uint32_t>(arena_.regions().size());
  end.generation = arena_.owner_generation();
  UNICORN_RETURN_IF_ERROR(SendRecord(conn, end, -1));
  served_.fetch_add(1);
  LOG_DEBUG("[shm] sent {} region fds to pid {}", arena_.regions().size(), cred.pid);
  return absl::OkStatus();
}

StatusOr<std::vector<ReceivedRegion>> FetchRegions(const std::string& socket_path, int timeout_ms) {
  sockaddr_un addr;
  UNICORN_RETURN_IF_ERROR(FillAddress(socket_path, &addr));
  int conn = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (conn < 0) return ErrnoError("[shm] socket(AF_UNIX)", errno);
  std::vector<ReceivedRegion> regions;
  auto fail = [&](Status s) {
    for (ReceivedRegion& r : regions) ::close(r.fd);
    ::close(conn);
    return s;
  };
  if (::connect(conn, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return fail(ErrnoError(absl::StrCat("[shm] connect(", socket_path, ")"), errno));
  }
  StatusOr<ucred> cred = PeerCredentials(conn);
  if (!cred.ok()) return fail(cred.status());
  if (cred->uid != ::geteuid()) {
    return fail(absl::PermissionDeniedError(
        absl::StrCat("[shm] ", socket_path, " is served by uid ", cred->uid, ", not ours (",
                     ::geteuid(), "): refusing its buffers")));
  }
  SetTimeout(conn, SO_RCVTIMEO, timeout_ms > 0 ? timeout_ms : 1);
  for (;;) {
    Record rec;
    int fd = -1;
    Status s = ReceiveRecord(conn, &rec, &fd);
    if (!s.ok()) return fail(Annotate(s, socket_path));
    switch (rec.type) {
      case RecordType::kRejected:
        if (fd >= 0) ::close(fd);
        return fail(absl::PermissionDeniedError(
            absl::StrCat("[shm] ", socket_path, ": the fd server rejected us: ", Text(rec))));
      case RecordType::kRegion: {
        if (fd < 0) {
          return fail(absl::DataLossError(absl::StrCat("[shm] ", socket_path, ": region ",
                                                       rec.region_id, " came without an fd")));
        }
        ReceivedRegion r;
        r.region_id = rec.region_id;
        r.fd = fd;
        r.size = rec.size;
        r.generation = rec.generation;
        r.kind = static_cast<BufferKind>(rec.kind);
        r.name = Text(rec);
        regions.push_back(std::move(r));
        break;
      }
      case RecordType::kEnd:
        if (fd >= 0) ::close(fd);
        if (rec.region_id != regions.size()) {
          return fail(
              absl::DataLossError(absl::StrCat("[shm] ", socket_path, ": announced ", rec.region_id,
                                               " regions, got ", regions.size())));
        }
        ::close(conn);
        return regions;
      default:
        if (fd >= 0) ::close(fd);
        return fail(absl::DataLossError(absl::StrCat(
            "[shm] ", socket_path, ": unknown record type ", static_cast<int>(rec.type))));
    }
  }
}

StatusOr<std::unique_ptr<Arena>> AttachArena(const std::string& socket_path, int timeout_ms) {
  UNICORN_ASSIGN_OR_RETURN(std::vector<ReceivedRegion> received,
                           FetchRegions(socket_path, timeout_ms));
  if (received.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("[shm] ", socket_path, ": no regions"));
  }
  const uint64_t generation = received.front().generation;
  std::vector<std::unique_ptr<Region>> regions;
  Status error;
  for (ReceivedRegion& r : received) {
    if (!error.ok()) {  // close what is left after a failure
      ::close(r.fd);
      continue;
    }
    StatusOr<std::unique_ptr<SharedBuffer>> buffer =
        SharedBuffer::Import(r.fd, r.kind, r.size, r.name);
    if (!buffer.ok()) {
      error = buffer.status();
      continue;
    }
    StatusOr<std::unique_ptr<Region>> region =
        Region::Open(std::move(*buffer), r.region_id, r.generation);
    if (!region.ok()) {
      error = region.status();
      continue;
    }
    if ((*region)->name() != r.name) {
      error =
          absl::DataLossError(absl::StrCat("[shm] region ", r.region_id, " announced as '", r.name,
                                           "' but its header says '", (*region)->name(), "'"));
      continue;
    }
    regions.push_back(std::move(*region));
  }
  UNICORN_RETURN_IF_ERROR(Annotate(error, absl::StrCat("[shm] attach ", socket_path)));
  UNICORN_ASSIGN_OR_RETURN(std::unique_ptr<Arena> arena,
                           Arena::FromRegions(std::move(regions), generation));
  LOG_INFO("[shm] attached {} regions ({} bytes, {}) from {}", arena->regions().size(),
           arena->total_bytes(), BufferKindName(arena->kind()), socket_path);
  return arena;
}

}  // namespace unicorn::shm
