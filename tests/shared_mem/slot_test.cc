// Slots and descriptors within one process: the seqlock protocol and one
// specific error per kind of bad descriptor.
#include "shared_mem/slot.h"

#include <gtest/gtest.h>

#include <set>

#include "absl/strings/match.h"
#include "shared_mem/tensor_desc.h"
#include "tests/shared_mem/test_util.h"

namespace unicorn::shm {
namespace {

using testing::FillPattern;
using testing::FirstMismatch;

class ShmSlot : public ::testing::Test {
 protected:
  void SetUp() override {
    ArenaPlan plan;
    plan.regions.push_back({"act", 3 * kPageBytes, 3});
    plan.regions.push_back({"logits", 1000, 2});
    ArenaOptions opts;
    opts.backend = BackendPreference::kMemfd;
    opts.owner_generation = 77;
    auto a = Arena::Create(plan, opts);
    ASSERT_TRUE(a.ok()) << a.status();
    arena_ = std::move(*a);
    act_ = arena_->region("act");
    ASSERT_NE(act_, nullptr);
  }

  // Writes [rows, 256] f32 of pattern `seed` into `w` and returns the descriptor.
  SlotDescriptor Write(SlotWriter& w, int64_t rows, uint64_t seed) {
    auto bytes = w.BeginWrite(*RowMajor(TensorDType::kF32, {rows, 256}));
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    FillPattern(*bytes, seed);
    auto d = w.Commit();
    EXPECT_TRUE(d.ok()) << d.status();
    return *d;
  }

  void ExpectError(const SlotDescriptor& d, absl::StatusCode code, const char* words) {
    auto v = BeginRead(*arena_, d);
    ASSERT_FALSE(v.ok()) << DescriptorString(d) << " was accepted";
    EXPECT_EQ(v.status().code(), code) << v.status();
    EXPECT_TRUE(absl::StrContains(v.status().message(), words)) << v.status();
  }

  std::unique_ptr<Arena> arena_;
  Region* act_ = nullptr;
};

TEST_F(ShmSlot, LayoutIsPageAlignedAndInsideTheRegion) {
  EXPECT_EQ(arena_->owner_generation(), 77u);
  for (const auto& r : arena_->regions()) {
    uint64_t end = kPageBytes;
    for (uint32_t i = 0; i < r->slot_count(); ++i) {
      const SlotInfo& s = r->slot(i);
      EXPECT_EQ(s.payload_offset % kPageBytes, 0u);
      EXPECT_EQ(s.header_offset + kPageBytes, s.payload_offset);
      EXPECT_GE(s.header_offset, end) << "slots overlap";
      EXPECT_LE(s.payload_offset + s.capacity, r->size());
      end = s.payload_offset + s.capacity;
    }
  }
  EXPECT_EQ(arena_->region("logits")->slot(0).capacity, kPageBytes);  // 1000 bytes, page rounded
  EXPECT_EQ(arena_->region(2u), arena_->region("logits"));
  EXPECT_EQ(arena_->region(3u), nullptr);
}

TEST_F(ShmSlot, WriteCommitReadRelease) {
  auto w = SlotWriter::Claim(*act_, 1, act_->NextWriterGeneration());
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_TRUE(w->Released());
  SlotDescriptor d = Write(*w, 3, 5);
  EXPECT_EQ(d.region_id, act_->id());
  EXPECT_EQ(d.offset, act_->slot(1).payload_offset);
  EXPECT_EQ(d.byte_size, 3u * 256 * 4);
  EXPECT_EQ(d.sequence % 2, 0u);
  EXPECT_FALSE(w->Released());
  auto v = BeginRead(*arena_, d);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(TensorString(v->tensor), "f32[3, 256] (3072 bytes)");
  EXPECT_EQ(FirstMismatch(v->data, v->tensor.byte_size, 5), -1);
  EXPECT_TRUE(EndRead(*v).ok());
  Release(*v);
  EXPECT_TRUE(w->Released());
  // The descriptor stays valid until the slot is rewritten.
  EXPECT_TRUE(BeginRead(*arena_, d).ok());
}

TEST_F(ShmSlot, RewriteDuringAReadIsCaughtByEndRead) {
  auto w = SlotWriter::Claim(*act_, 0, 9);
  ASSERT_TRUE(w.ok());
  SlotDescriptor d = Write(*w, 2, 1);
  auto v = BeginRead(*arena_, d);
  ASSERT_TRUE(v.ok());
  Write(*w, 2, 2);  // the writer reuses the slot before the reader is done
  Status s = EndRead(*v);
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "discard")) << s;
}

TEST_F(ShmSlot, NewIncarnationDuringAReadIsCaughtByEndRead) {
  auto w = SlotWriter::Claim(*act_, 0, 9);
  ASSERT_TRUE(w.ok());
  SlotDescriptor d = Write(*w, 2, 1);
  auto v = BeginRead(*arena_, d);
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(SlotWriter::Claim(*act_, 0, 10).ok());
  EXPECT_EQ(EndRead(*v).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ShmSlot, AStaleWriterCannotWriteAfterANewClaim) {
  auto old_writer = SlotWriter::Claim(*act_, 0, 1);
  ASSERT_TRUE(old_writer.ok());
  auto new_writer = SlotWriter::Claim(*act_, 0, 2);
  ASSERT_TRUE(new_writer.ok());
  auto bytes = old_writer->BeginWrite(*RowMajor(TensorDType::kF32, {1, 256}));
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.status().code(), absl::StatusCode::kFailedPrecondition) << bytes.status();
}

TEST_F(ShmSlot, WriterRejectsMisuse) {
  auto w = SlotWriter::Claim(*act_, 0, 1);
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->Commit().ok()) << "commit without a write";
  auto too_big = w->BeginWrite(*RowMajor(TensorDType::kF32, {4, 1024}));  // 16 KiB > 12 KiB
  EXPECT_EQ(too_big.status().code(), absl::StatusCode::kOutOfRange) << too_big.status();
  ASSERT_TRUE(w->BeginWrite(*RowMajor(TensorDType::kF32, {1, 1})).ok());
  EXPECT_FALSE(w->BeginWrite(*RowMajor(TensorDType::kF32, {1, 1})).ok()) << "nested write";
  EXPECT_FALSE(SlotWriter::Claim(*act_, 3, 1).ok()) << "no slot 3";
  EXPECT_FALSE(SlotWriter::Claim(*act_, 0, 0).ok()) << "generation 0";
}

TEST_F(ShmSlot, RingReusesItsSlotsWithBackpressure) {
  auto ring = WriterRing::Claim(*act_, 0, 3, 4);
  ASSERT_TRUE(ring.ok()) << ring.status();
  std::set<uint64_t> offsets;
  std::vector<SlotDescriptor> pending;
  for (int i = 0; i < 30; ++i) {
    auto w = ring->Acquire(1000);
    ASSERT_TRUE(w.ok()) << w.status();
    SlotDescriptor d = Write(**w, 1, i);
    offsets.insert(d.offset);
    pending.push_back(d);
    if (pending.size() == 3) {  // consume in order, as the pipeline does
      for (const SlotDescriptor& p : pending) {
        auto v = BeginRead(*arena_, p);
        ASSERT_TRUE(v.ok()) << v.status();
        Release(*v);
      }
      pending.clear();
    }
  }
  EXPECT_EQ(offsets.size(), 3u) << "no allocation per token: the same three slots";
  // All three are in flight and unreleased: the next Acquire must time out.
  for (int i = 0; i < 3; ++i) {
    auto w = ring->Acquire(1000);
    ASSERT_TRUE(w.ok());
    Write(**w, 1, 100 + i);
  }
  auto blocked = ring->Acquire(20, 0);
  EXPECT_EQ(blocked.status().code(), absl::StatusCode::kDeadlineExceeded) << blocked.status();
}

TEST_F(ShmSlot, EachBadDescriptorGetsItsOwnError) {
  auto w = SlotWriter::Claim(*act_, 1, 3);
  ASSERT_TRUE(w.ok());
  const SlotDescriptor good = Write(*w, 2, 8);
  ASSERT_TRUE(BeginRead(*arena_, good).ok());

  SlotDescriptor d = good;
  d.region_id = 99;
  ExpectError(d, absl::StatusCode::kNotFound, "unknown region 99");

  d = good;
  d.offset += 8;
  ExpectError(d, absl::StatusCode::kInvalidArgument, "misaligned offset");

  d = good;
  d.offset = act_->size() + kPageBytes;
  ExpectError(d, absl::StatusCode::kOutOfRange, "out of range");

  d = good;
  d.byte_size = ~uint64_t{0} - 10;  // would overflow offset + size
  ExpectError(d, absl::StatusCode::kOutOfRange, "out of range");

  d = good;
  d.byte_size = act_->slot(1).capacity + 4;  // inside the region, beyond the slot
  ExpectError(d, absl::StatusCode::kOutOfRange, "capacity");

  d = good;
  d.offset += kPageBytes;  // page aligned, but inside the payload
  ExpectError(d, absl::StatusCode::kInvalidArgument, "not the payload of any slot");

  d = good;
  d.offset = 0;  // the region header
  ExpectError(d, absl::StatusCode::kInvalidArgument, "not the payload of any slot");

  d = good;
  d.generation += 1;
  ExpectError(d, absl::StatusCode::kFailedPrecondition, "wrong generation");

  d = good;
  d.sequence += 1;
  ExpectError(d, absl::StatusCode::kInvalidArgument, "never published");

  d = good;
  d.byte_size -= 4;
  ExpectError(d, absl::StatusCode::kInvalidArgument, "does not match");

  d = good;
  d.flags = 1;
  ExpectError(d, absl::StatusCode::kInvalidArgument, "flags");

  // Stale: the slot was rewritten since.
  const SlotDescriptor newer = Write(*w, 1, 9);
  ExpectError(good, absl::StatusCode::kAborted, "stale sequence");
  // Being written: a write has started and not been committed.
  ASSERT_TRUE(w->BeginWrite(*RowMajor(TensorDType::kF32, {1, 1})).ok());
  ExpectError(newer, absl::StatusCode::kUnavailable, "being written");
}

TEST_F(ShmSlot, ClaimClosesAWriteLeftHalfDone) {
  auto dead = SlotWriter::Claim(*act_, 2, 1);
  ASSERT_TRUE(dead.ok());
  SlotDescriptor before = Write(*dead, 1, 1);
  ASSERT_TRUE(dead->BeginWrite(*RowMajor(TensorDType::kF32, {1, 256})).ok());  // then "dies"
  EXPECT_EQ(ReadState(*act_, 2).sequence % 2, 1u);
  auto next = SlotWriter::Claim(*act_, 2, 2);
  ASSERT_TRUE(next.ok());
  SlotState st = ReadState(*act_, 2);
  EXPECT_EQ(st.sequence % 2, 0u);
  EXPECT_EQ(st.generation, 2u);
  EXPECT_EQ(st.tensor.byte_size, 0u) << "a fresh claim holds no tensor";
  ExpectError(before, absl::StatusCode::kFailedPrecondition, "wrong generation");
}

TEST(ShmDescriptor, EncodeDecodeRoundTrip) {
  SlotDescriptor d{3, 0, 8192, 1 << 20, 42, 0x1234567890ull};
  EncodedDescriptor e = Encode(d);
  auto back = Decode(e);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, d);
  EXPECT_EQ(e[0], 3);  // little-endian region id first
  EXPECT_EQ(Decode(std::span<const uint8_t>(e.data(), 39)).status().code(),
            absl::StatusCode::kInvalidArgument);
  e[4] = 1;  // reserved flags
  EXPECT_EQ(Decode(e).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(DescriptorString(d), "region 3 @8192+1048576 seq 42 gen 78187493520");
}

TEST(ShmTensorDesc, RowMajorStridedAndValidation) {
  auto t = RowMajor(TensorDType::kBF16, {4, 2560});
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->byte_size, 4u * 2560 * 2);
  EXPECT_EQ(t->strides[0], 2560);
  EXPECT_EQ(t->strides[1], 1);
  EXPECT_TRUE(ValidateTensor(*t, t->byte_size).ok());
  EXPECT_EQ(ValidateTensor(*t, t->byte_size - 1).code(), absl::StatusCode::kOutOfRange);
  std::vector<int64_t> shape = {2, 8}, strides = {16, 1};  // rows padded to 16 elements
  auto s = Strided(TensorDType::kF32, shape, strides);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->byte_size, (16u + 7 + 1) * 4);
  EXPECT_EQ(TensorString(*s), "f32[2, 8] strides [16, 1] (96 bytes)");
  EXPECT_FALSE(RowMajor(TensorDType::kF32, {}).ok());
  EXPECT_FALSE(RowMajor(TensorDType::kF32, {1, 2, 3, 4, 5}).ok());
  EXPECT_FALSE(RowMajor(TensorDType::kF32, {3, 0}).ok());
  EXPECT_FALSE(RowMajor(static_cast<TensorDType>(99), {3}).ok());
  EXPECT_FALSE(RowMajor(TensorDType::kF32, {int64_t{1} << 40, int64_t{1} << 40}).ok());
  TensorDesc bad = *t;
  bad.strides[0] = 1;
  EXPECT_FALSE(ValidateTensor(bad, 1 << 30).ok());
  bad = *t;
  bad.byte_size += 2;
  EXPECT_FALSE(ValidateTensor(bad, 1 << 30).ok());
}

TEST(ShmPlan, ForModelSizesSlotsFromTheShape) {
  ModelLimits m;
  m.hidden = 2560;  // Gemma 3 4B
  m.vocab = 262208;
  m.max_batch_tokens = 512;
  m.max_sequences = 16;
  m.max_images = 2;
  auto plan = ArenaPlan::ForModel(m);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->regions.size(), 3u);
  EXPECT_EQ(plan->regions[0].name, "act");
  EXPECT_EQ(plan->regions[0].slot_bytes, 512u * 2560 * 4);  // [512, 2560] f32
  EXPECT_EQ(plan->regions[0].slot_count, 4u);
  EXPECT_EQ(plan->regions[1].name, "logits");
  EXPECT_EQ(plan->regions[1].slot_bytes, 16u * 262208 * 4);  // [16, 262208] f32
  EXPECT_EQ(plan->regions[2].name, "image");
  EXPECT_EQ(plan->regions[2].slot_bytes, 512u * 2560 * 4);  // [2 * 256, 2560] f32
  EXPECT_GT(plan->TotalBytes(), 4u * 512 * 2560 * 4 + 2u * 16 * 262208 * 4);
  EXPECT_TRUE(absl::StrContains(plan->ToString(), "act 4 x 5.0 MiB")) << plan->ToString();

  m.max_images = 0;
  EXPECT_EQ(ArenaPlan::ForModel(m)->regions.size(), 2u);
  ModelLimits bad = m;
  bad.hidden = 0;
  EXPECT_TRUE(absl::StrContains(ArenaPlan::ForModel(bad).status().message(), "hidden"));
  bad = m;
  bad.max_sequences = 1 << 20;  // 1M x 262208 x 4 bytes: a unit mistake
  EXPECT_FALSE(ArenaPlan::ForModel(bad).ok());
}

TEST(ShmPlan, ArenaFromAModelPlanFitsItsSlots) {
  ModelLimits m;
  m.hidden = 1152;  // Gemma 3 1B
  m.vocab = 262144;
  m.max_batch_tokens = 64;
  m.max_sequences = 2;
  auto plan = ArenaPlan::ForModel(m);
  ASSERT_TRUE(plan.ok());
  ArenaOptions opts;
  opts.backend = BackendPreference::kMemfd;
  auto arena = Arena::Create(*plan, opts);
  ASSERT_TRUE(arena.ok()) << arena.status();
  for (size_t i = 0; i < plan->regions.size(); ++i) {
    const Region* r = (*arena)->regions()[i].get();
    EXPECT_EQ(r->slot_count(), plan->regions[i].slot_count);
    EXPECT_GE(r->slot(0).capacity, plan->regions[i].slot_bytes);
    EXPECT_EQ(r->size(), RegionBytes(plan->regions[i]));
  }
}

TEST(ShmPlan, ManySlotsFitTheComputedRegionSize) {
  ArenaPlan plan;
  plan.regions.push_back({"many", 5000, kMaxSlotsPerRegion});
  ArenaOptions opts;
  opts.backend = BackendPreference::kMemfd;
  auto arena = Arena::Create(plan, opts);
  ASSERT_TRUE(arena.ok()) << arena.status();
  EXPECT_EQ((*arena)->region("many")->slot_count(), kMaxSlotsPerRegion);
  plan.regions.push_back({"many", 4096, 1});
  EXPECT_EQ(Arena::Create(plan, opts).status().code(), absl::StatusCode::kInvalidArgument);
  plan.regions = {{"too-many", 4096, kMaxSlotsPerRegion + 1}};
  EXPECT_EQ(Arena::Create(plan, opts).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ShmRegion, OpenValidatesWhatTheOwnerWrote) {
  ArenaPlan plan;
  plan.regions.push_back({"act", 8192, 2});
  ArenaOptions opts;
  opts.backend = BackendPreference::kMemfd;
  opts.owner_generation = 5;
  auto arena = Arena::Create(plan, opts);
  ASSERT_TRUE(arena.ok());
  const Region* owner = (*arena)->region(1u);
  auto open = [&](uint32_t id, uint64_t generation) {
    auto b =
        SharedBuffer::Import(::dup(owner->buffer().fd()), BufferKind::kMemfd, owner->size(), "act");
    EXPECT_TRUE(b.ok());
    return Region::Open(std::move(*b), id, generation);
  };
  auto ok = open(1, 5);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->name(), "act");
  EXPECT_EQ((*ok)->slot(1).payload_offset, owner->slot(1).payload_offset);
  EXPECT_EQ(open(2, 5).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(open(1, 6).status().code(), absl::StatusCode::kFailedPrecondition);

  // Corrupt the shared header (as a buggy or hostile peer could): a fresh
  // Open refuses it, while the owner keeps its validated offsets.
  auto* rh = reinterpret_cast<RegionHeader*>(owner->base());
  uint64_t saved = rh->slot_offsets[1];
  rh->slot_offsets[1] = owner->size();
  auto bad = open(1, 5);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss) << bad.status();
  rh->slot_offsets[1] = saved;
  auto* sh = owner->header(0);
  uint64_t cap = sh->capacity;
  sh->capacity = owner->size();
  EXPECT_EQ(open(1, 5).status().code(), absl::StatusCode::kDataLoss);
  sh->capacity = cap;
  rh->magic = 0;
  EXPECT_EQ(open(1, 5).status().code(), absl::StatusCode::kDataLoss);
  rh->magic = kRegionMagic;
  EXPECT_TRUE(open(1, 5).ok());
}

}  // namespace
}  // namespace unicorn::shm
