#include "model/gguf.h"

#include <gtest/gtest.h>

#include <cstring>

#include "model/ggml_types.h"
#include "model/gguf_writer.h"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

using testing::ReadFile;
using testing::TempDir;

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

GgufMetadata AllValueTypes() {
  GgufMetadata md;
  md.Set("u8", GgufValue::U8(200));
  md.Set("i8", GgufValue::I8(-100));
  md.Set("u16", GgufValue::U16(60000));
  md.Set("i16", GgufValue::I16(-30000));
  md.Set("u32", GgufValue::U32(4000000000u));
  md.Set("i32", GgufValue::I32(-2000000000));
  md.Set("f32", GgufValue::F32(1e-6f));
  md.Set("bool", GgufValue::Bool(true));
  md.Set("str", GgufValue::Str("héllo\n"));
  md.Set("u64", GgufValue::U64(18000000000000000000ull));
  md.Set("i64", GgufValue::I64(-9000000000000000000ll));
  md.Set("f64", GgufValue::F64(3.141592653589793));
  md.Set("arr.u8", GgufValue::UintArray(GgufType::kU8, {0, 1, 255}));
  md.Set("arr.i16", GgufValue::IntArray(GgufType::kI16, {-1, 2}));
  md.Set("arr.i32", GgufValue::IntArray(GgufType::kI32, {1, -2, 3}));
  md.Set("arr.f32", GgufValue::FloatArray(GgufType::kF32, {0.5, -1.25}));
  md.Set("arr.f64", GgufValue::FloatArray(GgufType::kF64, {1e300}));
  md.Set("arr.bool", GgufValue::UintArray(GgufType::kBool, {1, 0, 1}));
  md.Set("arr.str", GgufValue::StrArray({"a", "", "ccc"}));
  md.Set("arr.u64", GgufValue::UintArray(GgufType::kU64, {}));
  return md;
}

// Writes `md` and tensors of every supported type; returns the file bytes.
std::string WriteSample(const std::string& path, GgufWriter::Options o, const GgufMetadata& md) {
  auto w = GgufWriter::Create(path, o);
  EXPECT_TRUE(w.ok()) << w.status();
  for (const auto& [k, v] : md.entries()) (*w)->SetKv(k, v);
  EXPECT_TRUE((*w)->AddTensor("a.f32", DType::kF32, {3, 5}).ok());
  EXPECT_TRUE((*w)->AddTensor("b.f16", DType::kF16, {7}).ok());
  EXPECT_TRUE((*w)->AddTensor("c.bf16", DType::kBF16, {2, 1, 3}).ok());
  EXPECT_TRUE((*w)->AddTensor("d.q8_0", DType::kQ8_0, {2, 64}).ok());
  EXPECT_TRUE((*w)->AddTensor("e.q4_0", DType::kQ4_0, {1, 1, 1, 32}).ok());
  EXPECT_TRUE((*w)->WriteHeader().ok());
  // Each tensor's bytes are its index repeated; written in odd-sized chunks.
  std::string all;
  for (size_t i = 0; i < 5; ++i) all += std::string((*w)->tensor_nbytes(i), char('A' + i));
  for (size_t p = 0; p < all.size(); p += 13) {
    EXPECT_TRUE((*w)->Write(all.data() + p, std::min<size_t>(13, all.size() - p)).ok());
  }
  EXPECT_TRUE((*w)->Finish().ok());
  return ReadFile(path);
}

TEST(Gguf, RoundTripsEveryValueAndTensorType) {
  TempDir tmp;
  for (uint32_t version : {2u, 3u}) {
    for (uint32_t alignment : {1u, 32u, 64u}) {
      const GgufMetadata md = AllValueTypes();
      const std::string bytes = WriteSample(tmp.File("x.gguf"), {version, alignment}, md);
      auto f = ParseGguf(Bytes(bytes), "x.gguf");
      ASSERT_TRUE(f.ok()) << f.status();
      EXPECT_EQ(f->version, version);
      EXPECT_EQ(f->alignment, alignment);
      EXPECT_EQ(f->data_start % alignment, 0u);
      for (const auto& [k, v] : md.entries()) {
        const GgufValue* got = f->metadata.Find(k);
        ASSERT_NE(got, nullptr) << k;
        EXPECT_EQ(*got, v) << k;
      }
      EXPECT_EQ(f->metadata.entries().size(), md.entries().size() + (alignment != 32));
      ASSERT_EQ(f->tensors.size(), 5u);
      const size_t want_bytes[] = {60, 14, 12, 2 * 68, 18};
      const uint32_t want_type[] = {0, 1, 30, 8, 2};
      for (size_t i = 0; i < 5; ++i) {
        const GgufTensor& t = f->tensors[i];
        EXPECT_EQ(t.nbytes, want_bytes[i]) << t.name;
        EXPECT_EQ(t.ggml_type, want_type[i]) << t.name;
        EXPECT_EQ(t.offset % alignment, 0u);
        EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.nbytes),
                  std::string(t.nbytes, char('A' + i)));
      }
      EXPECT_EQ(f->tensors[2].shape, (std::vector<int64_t>{2, 1, 3}));

      // Written again from what was read: byte for byte the same file.
      GgufMetadata again;
      for (const auto& [k, v] : f->metadata.entries()) again.Set(k, v);
      EXPECT_EQ(WriteSample(tmp.File("y.gguf"), {version, alignment}, again), bytes);
    }
  }
}

TEST(Gguf, TypedGetters) {
  const GgufMetadata md = AllValueTypes();
  EXPECT_EQ(*md.Int("u32"), 4000000000);
  EXPECT_EQ(*md.Int("i8"), -100);
  EXPECT_EQ(*md.Float("f32"), 1e-6);  // the f32 1e-6f reads back as 1e-6
  EXPECT_EQ(*md.Float("i16"), -30000.0);
  EXPECT_EQ(*md.String("str"), "héllo\n");
  EXPECT_TRUE(*md.Bool("bool", false));
  EXPECT_EQ(*md.Int("absent", 7), 7);
  EXPECT_EQ(md.Int("absent").status().message(), "missing metadata key absent");
  EXPECT_EQ(md.Int("str").status().message(), "metadata key str: expected an integer, got string");
  EXPECT_EQ(md.String("arr.str").status().message(),
            "metadata key arr.str: expected a string, got array of string");
  EXPECT_FALSE(md.Int("u64").ok());  // does not fit int64
  EXPECT_FALSE(md.Bool("u8", false).ok());
}

// --- Bad files -----------------------------------------------------------------

class GgufBad : public ::testing::Test {
 protected:
  void SetUp() override {
    GgufMetadata md;
    md.Set("general.architecture", GgufValue::Str("gemma3"));
    good_ = WriteSample(tmp_.File("g.gguf"), {}, md);
  }
  std::string Error(const std::string& bytes) {
    auto f = ParseGguf(Bytes(bytes), "bad.gguf");
    EXPECT_FALSE(f.ok());
    return f.ok() ? "" : std::string(f.status().message());
  }
  static void Put64(std::string* s, size_t at, uint64_t v) { std::memcpy(s->data() + at, &v, 8); }
  static void Put32(std::string* s, size_t at, uint32_t v) { std::memcpy(s->data() + at, &v, 4); }
  // Offset of the first tensor info's fields (after its name).
  size_t TensorInfoAt(const std::string& name) const { return good_.find(name) + name.size(); }

  TempDir tmp_;
  std::string good_;
};

// The end of the last tensor's data (the file may have padding after it).
size_t DataEnd(const std::string& good) {
  auto f = ParseGguf(Bytes(good), "g");
  size_t end = 0;
  for (const GgufTensor& t : f->tensors)
    end = std::max(end, size_t(f->data_start + t.offset + t.nbytes));
  return end;
}

TEST_F(GgufBad, EveryPrefixOfAGoodFileIsRejectedCleanly) {
  ASSERT_TRUE(ParseGguf(Bytes(good_), "g").ok());
  const size_t end = DataEnd(good_);
  for (size_t n = 0; n < end; ++n) {
    auto f = ParseGguf(Bytes(good_.substr(0, n)), "t.gguf");
    ASSERT_FALSE(f.ok()) << n;
    EXPECT_EQ(f.status().message().substr(0, 15), "[gguf] t.gguf: ") << f.status();
  }
  EXPECT_TRUE(ParseGguf(Bytes(good_.substr(0, end)), "t.gguf").ok());
}

TEST_F(GgufBad, Truncated) {
  EXPECT_EQ(
      Error(good_.substr(0, 10)),
      "[gguf] bad.gguf: truncated file: tensor count at offset 8 runs past the end (10 bytes)");
  EXPECT_NE(Error(good_.substr(0, DataEnd(good_) - 1)).find("out of file bounds"),
            std::string::npos);
}

TEST_F(GgufBad, WrongMagicAndVersions) {
  std::string b = good_;
  b[0] = 'X';
  EXPECT_EQ(Error(b), "[gguf] bad.gguf: not a GGUF file (wrong magic)");
  b = good_;
  Put32(&b, 4, 1);
  EXPECT_NE(Error(b).find("version 1 is not supported"), std::string::npos);
  Put32(&b, 4, 3u << 24);
  EXPECT_NE(Error(b).find("big-endian"), std::string::npos);
  Put32(&b, 4, 4);
  EXPECT_NE(Error(b).find("unsupported GGUF version 4"), std::string::npos);
}

TEST_F(GgufBad, AbsurdCounts) {
  std::string b = good_;
  Put64(&b, 8, uint64_t(1) << 60);
  EXPECT_NE(Error(b).find("tensor count 1152921504606846976 cannot fit"), std::string::npos);
  b = good_;
  Put64(&b, 16, ~uint64_t(0));
  EXPECT_NE(Error(b).find("metadata count"), std::string::npos);
  // A string length past the end of the file.
  b = good_;
  Put64(&b, 24, uint64_t(1) << 62);
  EXPECT_NE(Error(b).find("string length 4611686018427387904"), std::string::npos);
}

TEST_F(GgufBad, TensorOutOfBoundsMisalignedOverlapping) {
  const size_t at = TensorInfoAt("e.q4_0");  // n_dims, 4 x ne, type, offset
  std::string b = good_;
  Put64(&b, at + 4 + 32 + 4, uint64_t(1) << 40);
  EXPECT_NE(Error(b).find("tensor e.q4_0 [1, 1, 1, 32]: data ["), std::string::npos);
  EXPECT_NE(Error(b).find("out of file bounds"), std::string::npos);
  b = good_;
  Put64(&b, at + 4 + 32 + 4, 33);
  EXPECT_EQ(Error(b),
            "[gguf] bad.gguf: tensor e.q4_0: data offset 33 is not a multiple of the alignment 32");
  b = good_;
  Put64(&b, at + 4 + 32 + 4, 0);  // on top of a.f32
  EXPECT_NE(Error(b).find("overlaps tensor a.f32"), std::string::npos);
}

TEST_F(GgufBad, BadTypesAndDims) {
  const size_t at = TensorInfoAt("e.q4_0");
  std::string b = good_;
  Put32(&b, at + 4 + 32, 77);
  EXPECT_EQ(Error(b), "[gguf] bad.gguf: tensor e.q4_0: unknown tensor type 77");
  b = good_;
  Put32(&b, at, 5);
  EXPECT_NE(Error(b).find("5 dimensions"), std::string::npos);
  b = good_;
  Put64(&b, at + 4, 31);  // ne0 = 31: not a multiple of the q4_0 block
  EXPECT_NE(Error(b).find("not a multiple of the block size 32"), std::string::npos);
  b = good_;
  Put64(&b, at + 4 + 8, uint64_t(1) << 55);
  EXPECT_NE(Error(b).find("absurd dimension"), std::string::npos);
  // An unknown metadata value type.
  b = good_;
  const size_t kv = b.find("general.architecture") + 20;
  Put32(&b, kv, 13);
  EXPECT_NE(Error(b).find("unknown value type 13"), std::string::npos);
  Put32(&b, kv, 9);      // array of ...
  Put32(&b, kv + 4, 9);  // ... arrays
  EXPECT_NE(Error(b).find("nested arrays"), std::string::npos);
}

// A GGUF header built byte by byte.
struct Hand {
  std::string b = std::string("GGUF\3\0\0\0", 8);
  Hand& U32(uint32_t v) {
    b.append(reinterpret_cast<const char*>(&v), 4);
    return *this;
  }
  Hand& U64(uint64_t v) {
    b.append(reinterpret_cast<const char*>(&v), 8);
    return *this;
  }
  Hand& Str(const std::string& s) {
    U64(s.size());
    b += s;
    return *this;
  }
};

TEST_F(GgufBad, AlignmentAndDuplicates) {
  Hand a;
  a.U64(0).U64(1).Str("general.alignment").U32(uint32_t(GgufType::kU32)).U32(48);
  EXPECT_EQ(Error(a.b), "[gguf] bad.gguf: general.alignment 48 is not a power of two");
  Hand t;
  t.U64(0).U64(1).Str("general.alignment").U32(uint32_t(GgufType::kU64)).U64(32);
  EXPECT_EQ(Error(t.b), "[gguf] bad.gguf: general.alignment must be a u32");
  Hand d;
  d.U64(0).U64(2).Str("x").U32(uint32_t(GgufType::kU8)).b += '\1';
  d.Str("x").U32(uint32_t(GgufType::kU8)).b += '\2';
  EXPECT_EQ(Error(d.b), "[gguf] bad.gguf: duplicate metadata key x");
  Hand ok;  // and a minimal valid file: no tensors, no metadata
  ok.U64(0).U64(0);
  EXPECT_TRUE(ParseGguf(Bytes(ok.b), "ok").ok());
  // Duplicate tensor names are refused by the writer and the parser.
  auto w = GgufWriter::Create(tmp_.File("d.gguf"));
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*w)->AddTensor("t", DType::kF32, {1}).ok());
  EXPECT_FALSE((*w)->AddTensor("t", DType::kF32, {1}).ok());
  std::string g = good_;
  g.replace(g.find("b.f16"), 5, "a.f32");
  EXPECT_EQ(Error(g), "[gguf] bad.gguf: duplicate tensor name a.f32");
}

TEST(GgufWriter, RefusesBadInput) {
  TempDir tmp;
  auto w = GgufWriter::Create(tmp.File("w.gguf"));
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE((*w)->AddTensor("q", DType::kQ4_0, {2, 33}).ok());  // row not a block multiple
  EXPECT_FALSE((*w)->AddTensor(std::string(64, 'n'), DType::kF32, {1}).ok());
  EXPECT_FALSE((*w)->AddTensor("five", DType::kF32, {1, 1, 1, 1, 1}).ok());
  ASSERT_TRUE((*w)->AddTensor("t", DType::kF32, {2}).ok());
  ASSERT_TRUE((*w)->WriteHeader().ok());
  float x[3] = {1, 2, 3};
  EXPECT_FALSE((*w)->Write(x, 12).ok());  // 4 bytes past the last tensor
  EXPECT_FALSE(GgufWriter::Create(tmp.File("v.gguf"), {1, 32}).ok());
  EXPECT_FALSE(GgufWriter::Create(tmp.File("v.gguf"), {3, 48}).ok());
  auto w2 = GgufWriter::Create(tmp.File("u.gguf"));
  ASSERT_TRUE((*w2)->AddTensor("t", DType::kF32, {2}).ok());
  EXPECT_NE((*w2)->Finish().message().find("got 0 of its 8 bytes"), std::string::npos);
}

TEST(GgmlTypes, NamesAndSizes) {
  EXPECT_EQ(GgmlTypeName(12), "q4_k");
  EXPECT_EQ(GgmlTypeName(99), "type 99");
  EXPECT_EQ(FindGgmlType(14)->block_bytes, 210);  // q6_k
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ2_K,
                  DType::kQ3_K, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    const GgmlTypeInfo* g = FindGgmlType(GgmlTypeOf(t));
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->dtype, t);
    EXPECT_EQ(g->block_bytes, Traits(t).block_bytes);
    EXPECT_EQ(g->block_elems, Traits(t).block_elems);
    EXPECT_EQ(std::string_view(g->name), Traits(t).name);
  }
}

}  // namespace
}  // namespace unicorn
