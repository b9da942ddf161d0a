// Real processes sharing an arena: the test owns it (like the coordinator)
// and runs shm_test_peer as the writer or reader (like a worker).
#include <gtest/gtest.h>

#include <chrono>

#include "absl/strings/match.h"
#include "shared_mem/slot.h"
#include "shared_mem/tensor_desc.h"
#include "tests/shared_mem/peer_process.h"

namespace unicorn::shm::testing {
namespace {

constexpr int64_t kHidden = 1024;  // [16, 1024] f32 = 64 KiB per slot

// The writer process fills 10,000 tensors of varying shape through a ring of
// 3 slots; this process reads each one in place and checks every word.
TEST(ShmProcess, TenThousandHandoffsVerified) {
  auto owner = Owner::Start(kHidden, 3);
  ASSERT_NE(owner, nullptr);
  constexpr int kIterations = 10000;
  PeerProcess writer(
      {"writer", owner->dir.socket(), std::to_string(kIterations), "3", std::to_string(kHidden)});
  ASSERT_TRUE(writer.started());
  uint64_t generation = 0;
  for (int i = 0; i < kIterations; ++i) {
    auto m = writer.Recv();
    ASSERT_TRUE(m.has_value()) << "iteration " << i << ": no descriptor";
    auto d = AsDesc(*m);
    ASSERT_TRUE(d.has_value()) << "iteration " << i << ": " << m->payload;
    if (i == 0) generation = d->generation;
    ASSERT_EQ(d->generation, generation);
    auto view = BeginRead(*owner->arena, *d);
    ASSERT_TRUE(view.ok()) << view.status();
    ASSERT_EQ(view->tensor.shape[0], 1 + i % 16);
    ASSERT_EQ(view->tensor.shape[1], kHidden);
    ASSERT_EQ(FirstMismatch(view->data, view->tensor.byte_size, i + 1), -1) << "iteration " << i;
    ASSERT_TRUE(EndRead(*view).ok());
    Release(*view);
  }
  EXPECT_EQ(writer.Status(), "OK");
  EXPECT_EQ(writer.Wait(), 0);
}

// The writer is SIGKILLed inside a write (sequence odd, half the payload
// new). Readers get Unavailable, never the torn bytes; the restarted writer
// claims the slot with a new generation, which turns every old descriptor
// into "wrong generation", and its fresh tensor reads back intact.
TEST(ShmProcess, WriterKilledMidWriteIsDetected) {
  auto owner = Owner::Start(kHidden, 2);
  ASSERT_NE(owner, nullptr);
  Region* act = owner->arena->region("act");
  SlotDescriptor good;
  {
    PeerProcess writer({"stall", owner->dir.socket(), "111", "222", std::to_string(kHidden)});
    auto m = writer.Recv();
    ASSERT_TRUE(m && AsDesc(*m)) << (m ? m->payload : "timeout");
    good = *AsDesc(*m);
    auto stalled = writer.Recv();
    ASSERT_TRUE(stalled && stalled->type == Msg::kStalled);
    EXPECT_EQ(ReadState(*act, 0).sequence % 2, 1u) << "sequence must be odd mid-write";
    writer.Kill();
  }
  SlotState dead = ReadState(*act, 0);
  EXPECT_EQ(dead.sequence % 2, 1u) << "a killed writer leaves the sequence odd";
  auto torn = BeginRead(*owner->arena, good);
  ASSERT_FALSE(torn.ok());
  EXPECT_EQ(torn.status().code(), absl::StatusCode::kUnavailable) << torn.status();
  EXPECT_TRUE(absl::StrContains(torn.status().message(), "being written")) << torn.status();
  // A reader that forges a descriptor from the torn header state is refused too.
  SlotDescriptor forged = good;
  forged.sequence = dead.sequence + 1;
  EXPECT_EQ(BeginRead(*owner->arena, forged).status().code(), absl::StatusCode::kUnavailable);

  PeerProcess restarted({"restart", owner->dir.socket(), "333", std::to_string(kHidden)});
  auto m = restarted.Recv();
  ASSERT_TRUE(m && AsDesc(*m)) << (m ? m->payload : "timeout");
  SlotDescriptor fresh = *AsDesc(*m);
  EXPECT_EQ(restarted.Status(), "OK");
  EXPECT_GT(fresh.generation, good.generation);
  EXPECT_GT(fresh.sequence, dead.sequence);

  auto old = BeginRead(*owner->arena, good);
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition) << old.status();
  EXPECT_TRUE(absl::StrContains(old.status().message(), "wrong generation")) << old.status();

  auto view = BeginRead(*owner->arena, fresh);
  ASSERT_TRUE(view.ok()) << view.status();
  EXPECT_EQ(FirstMismatch(view->data, view->tensor.byte_size, 333), -1);
  EXPECT_TRUE(EndRead(*view).ok());
}

// A writer rewrites one slot as fast as it can (no backpressure) while this
// process reads it concurrently. Every read either fails its sequence check
// or returns one whole write: all words equal and matching the shape. (Which
// reads collide depends on the scheduler; the deterministic cases are in
// slot_test.cc.)
TEST(ShmProcess, ConcurrentRewritesNeverYieldTornData) {
  auto owner = Owner::Start(kHidden, 1);
  ASSERT_NE(owner, nullptr);
  Region* act = owner->arena->region("act");
  PeerProcess writer({"hammer", owner->dir.socket(), "10000000", std::to_string(kHidden)});
  ASSERT_EQ(writer.Status(), "READY");
  std::vector<uint32_t> copy(16 * kHidden);
  int accepted = 0, rejected = 0, torn_accepted = 0;
  const auto start = std::chrono::steady_clock::now();
  // Read for 0.3 s, or up to 1 s until the seqlock has rejected 50 colliding
  // reads; on a loaded machine, on until one read got through (a reader
  // descheduled mid-copy collides with every rewrite), up to 20 s.
  for (;;) {
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed > std::chrono::seconds(20) ||
        (accepted > 0 && (elapsed > std::chrono::seconds(1) ||
                          (elapsed > std::chrono::milliseconds(300) && rejected >= 50)))) {
      break;
    }
    SlotState st = ReadState(*act, 0);
    if (st.sequence % 2 == 1 || st.tensor.byte_size == 0) continue;
    SlotDescriptor d{act->id(),           0,           act->slot(0).payload_offset,
                     st.tensor.byte_size, st.sequence, st.generation};
    auto view = BeginRead(*owner->arena, d);
    if (!view.ok()) {
      ++rejected;
      continue;
    }
    std::memcpy(copy.data(), view->data, view->tensor.byte_size);
    if (!EndRead(*view).ok()) {
      ++rejected;
      continue;
    }
    ++accepted;
    size_t words = view->tensor.byte_size / 4;
    uint32_t v = copy[0];
    bool consistent = view->tensor.shape[0] == 1 + v % 8;
    for (size_t j = 1; j < words && consistent; ++j) consistent = copy[j] == v;
    if (!consistent) ++torn_accepted;
  }
  ASSERT_TRUE(SendMsg(writer.fd(), Msg::kGo, nullptr, 0));
  EXPECT_EQ(writer.Status(), "OK");
  EXPECT_EQ(writer.Wait(), 0);
  EXPECT_EQ(torn_accepted, 0);
  EXPECT_GT(accepted, 0);
  std::printf("concurrent rewrites: %d reads accepted, %d rejected by the seqlock\n", accepted,
              rejected);
}

// The region outlives its readers: a reader is killed, a new one attaches
// and finds the same tensor.
TEST(ShmProcess, RegionSurvivesReaderRestart) {
  auto owner = Owner::Start(kHidden, 2);
  ASSERT_NE(owner, nullptr);
  SlotDescriptor d;
  {
    PeerProcess writer({"restart", owner->dir.socket(), "444", std::to_string(kHidden)});
    auto m = writer.Recv();
    ASSERT_TRUE(m && AsDesc(*m));
    d = *AsDesc(*m);
    EXPECT_EQ(writer.Status(), "OK");
    EXPECT_EQ(writer.Wait(), 0);  // the writer is gone; the owner still holds the region
  }
  uint64_t expected_sum = 0;
  for (int64_t j = 0; j < 16 * kHidden; ++j) expected_sum += PatternWord(444, j);
  std::string expected = absl::StrCat("OK ", PatternWord(444, 0), " ", expected_sum);
  for (int attempt = 0; attempt < 2; ++attempt) {
    PeerProcess reader({"reader", owner->dir.socket()});
    ASSERT_TRUE(SendDesc(reader.fd(), d));
    EXPECT_EQ(reader.Status(), expected) << "reader " << attempt;
    reader.Kill();  // SIGKILL while attached
  }
  EXPECT_EQ(owner->server->served(), 3);
}

}  // namespace
}  // namespace unicorn::shm::testing
