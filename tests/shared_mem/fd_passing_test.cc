// Region fds over the private Unix socket: a peer process maps the same
// bytes; a peer of another uid is refused, first by the folder (0700), and,
// if the folder were opened up, by the server's SO_PEERCRED check.
#include "shared_mem/fd_passing.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include "absl/strings/match.h"
#include "tests/shared_mem/peer_process.h"

namespace unicorn::shm::testing {
namespace {

constexpr int kNobody = 65534;

TEST(ShmFdPassing, PeerMapsTheSameBytes) {
  auto owner = Owner::Start(256, 2);
  ASSERT_NE(owner, nullptr);
  struct stat st {};
  ASSERT_EQ(::stat(owner->dir.path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u) << "the socket folder must be private";
  ASSERT_EQ(::stat(owner->dir.socket().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0077, 0u) << "the socket must not be reachable by others";

  Region* r = owner->arena->region(1u);
  std::memcpy(r->payload(0), "owner-bytes-0123", 16);
  PeerProcess peer({"fetch", owner->dir.socket()});
  EXPECT_EQ(peer.Status(), "OK 2 owner-bytes-0123");  // 2 regions, and our bytes
  EXPECT_EQ(peer.Wait(), 0);
  EXPECT_EQ(std::memcmp(r->payload(0) + 64, "PEER-WROTE", 10), 0)
      << "the peer's write must be visible in the owner's mapping";
  // The server counts a connection after its last send, which the peer may
  // see (and exit on) first: wait for the count, up to 2 s.
  for (int i = 0; i < 200 && owner->server->served() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(owner->server->served(), 1);
}

TEST(ShmFdPassing, InProcessAttachSeesRegionsAndGeneration) {
  auto owner = Owner::Start(256, 2);
  ASSERT_NE(owner, nullptr);
  auto received = FetchRegions(owner->dir.socket(), 2000);
  ASSERT_TRUE(received.ok()) << received.status();
  ASSERT_EQ(received->size(), 2u);
  EXPECT_EQ((*received)[0].region_id, 1u);
  EXPECT_EQ((*received)[0].name, "act");
  EXPECT_EQ((*received)[0].kind, BufferKind::kMemfd);
  EXPECT_EQ((*received)[0].size, owner->arena->region(1u)->size());
  EXPECT_EQ((*received)[0].generation, owner->arena->owner_generation());
  for (auto& r : *received) ::close(r.fd);

  auto peer = AttachArena(owner->dir.socket(), 2000);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ((*peer)->owner_generation(), owner->arena->owner_generation());
  EXPECT_EQ((*peer)->region("logits")->slot_count(), 2u);
}

TEST(ShmFdPassing, NoServerIsAClearError) {
  TempRuntimeDir dir;
  auto r = FetchRegions(dir.socket(), 500);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(absl::StrContains(r.status().message(), "connect(")) << r.status();
}

TEST(ShmFdPassing, OtherUidCannotReachThePrivateFolder) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a peer as uid 65534";
  auto owner = Owner::Start(256, 2);
  ASSERT_NE(owner, nullptr);
  PeerProcess peer({"fetch", owner->dir.socket(), std::to_string(kNobody)});
  std::string status = peer.Status();
  EXPECT_TRUE(absl::StartsWith(status, "ERR 7 ")) << status;  // PermissionDenied
  EXPECT_TRUE(absl::StrContains(status, "EACCES")) << status;
}

TEST(ShmFdPassing, ServerRejectsOtherUidEvenIfTheFolderIsOpened) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a peer as uid 65534";
  auto owner = Owner::Start(256, 2);
  ASSERT_NE(owner, nullptr);
  // Simulate a misconfigured folder: the second line of defence must hold.
  ASSERT_EQ(::chmod(owner->dir.path().c_str(), 0711), 0);
  ASSERT_EQ(::chmod(owner->dir.socket().c_str(), 0666), 0);
  PeerProcess peer({"fetch", owner->dir.socket(), std::to_string(kNobody)});
  std::string status = peer.Status();
  // Both ends check: the peer refuses a server of another uid (it usually
  // notices first), and the server refuses the peer and sends it no fds.
  EXPECT_TRUE(absl::StartsWith(status, "ERR 7 ")) << status;
  EXPECT_TRUE(absl::StrContains(status, "rejected us: uid 65534") ||
              absl::StrContains(status, "served by uid 0, not ours (65534)"))
      << status;
  for (int i = 0; i < 200 && owner->server->rejected() == 0; ++i) ::usleep(10000);
  EXPECT_EQ(owner->server->rejected(), 1);
  // A client that skips its own check gets a rejection record and no fd.
  PeerProcess raw({"raw", owner->dir.socket(), std::to_string(kNobody)});
  EXPECT_EQ(raw.Status(), "OK type 3 no fd uid 65534 (pid " + std::to_string(raw.pid()) +
                              ") is not the owner's uid 0");
  EXPECT_EQ(owner->server->rejected(), 2);
  EXPECT_EQ(owner->server->served(), 0);
}

TEST(ShmFdPassing, ServerRefusesAFolderOwnedByAnotherUid) {
  TempRuntimeDir dir;
  std::filesystem::create_directories(dir.path());
  // EnsurePrivateDir tightens a folder we own; one owned by another uid is refused.
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to chown the folder";
  ASSERT_EQ(::chown(dir.path().c_str(), kNobody, kNobody), 0);
  ArenaPlan plan;
  plan.regions.push_back({"act", 4096, 1});
  ArenaOptions opts;
  opts.backend = BackendPreference::kMemfd;
  auto arena = Arena::Create(plan, opts);
  ASSERT_TRUE(arena.ok());
  auto server = FdServer::Start(**arena, dir.socket());
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kPermissionDenied) << server.status();
}

}  // namespace
}  // namespace unicorn::shm::testing
