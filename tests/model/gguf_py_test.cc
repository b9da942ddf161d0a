// A GGUF written by llama.cpp's gguf-py (tools/refs/write_gguf_py_sample.py):
// our parser reads every value and tensor, and our writer, given what was
// read, writes the same file byte for byte.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "model/ggml_types.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "model/quant.h"
#include "tests/model/test_model.h"

namespace unicorn {
namespace {

const std::string kFile = std::string(UNICORN_SOURCE_DIR) + "/tests/data/gguf/gguf_py_sample.gguf";

// The script's values(): float32(sin(k * 0.37) * scale).
std::vector<float> Values(int n, double scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int k = 0; k < n; ++k) v[k] = float(std::sin(double(k) * 0.37) * scale);
  return v;
}

std::string Bytes(DType t, const std::vector<float>& v, int64_t row) {
  std::string out;
  for (size_t r = 0; r < v.size() / size_t(row); ++r) {
    std::string b(RowBytes(t, row), '\0');
    QuantizeRow(t, v.data() + r * row, reinterpret_cast<uint8_t*>(b.data()), row);
    out += b;
  }
  return out;
}

TEST(GgufPy, ReadsEveryValueAndTensor) {
  const std::string file = testing::ReadFile(kFile);
  ASSERT_FALSE(file.empty());
  auto f = ParseGguf({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, kFile);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->version, 3u);
  EXPECT_EQ(f->alignment, 64u);
  const GgufMetadata& md = f->metadata;
  EXPECT_EQ(*md.String("general.architecture"), "gemma3");
  EXPECT_EQ(*md.Find("test.u8"), GgufValue::U8(250));
  EXPECT_EQ(*md.Find("test.i8"), GgufValue::I8(-120));
  EXPECT_EQ(*md.Find("test.u16"), GgufValue::U16(65000));
  EXPECT_EQ(*md.Find("test.i16"), GgufValue::I16(-32000));
  EXPECT_EQ(*md.Find("test.u32"), GgufValue::U32(4000000000u));
  EXPECT_EQ(*md.Find("test.i32"), GgufValue::I32(-2000000000));
  EXPECT_EQ(*md.Find("test.f32"), GgufValue::F32(0.1f));
  EXPECT_EQ(*md.Float("test.f32"), 0.1);  // the f32 reads back as the decimal written
  EXPECT_EQ(*md.Find("test.bool"), GgufValue::Bool(true));
  EXPECT_EQ(*md.Find("test.string"), GgufValue::Str("Gemma \u2581 \U0001F984"));
  EXPECT_EQ(*md.Find("test.u64"), GgufValue::U64(18000000000000000000ull));
  EXPECT_EQ(*md.Find("test.i64"), GgufValue::I64(-9000000000000000000ll));
  EXPECT_EQ(*md.Find("test.f64"), GgufValue::F64(2.718281828459045));
  EXPECT_EQ(*md.Find("test.arr.str"), GgufValue::StrArray({"a", "", "\u2581b", "<0x0A>"}));
  EXPECT_EQ(*md.Find("test.arr.i32"), GgufValue::IntArray(GgufType::kI32, {-1, 0, 1, 2000000000}));
  EXPECT_EQ(*md.Find("test.arr.f32"), GgufValue::FloatArray(GgufType::kF32, {0.5, -1.25, 3e-7}));
  EXPECT_EQ(*md.Find("test.arr.bool"), GgufValue::UintArray(GgufType::kBool, {1, 0, 1}));
  EXPECT_EQ(*md.Find("test.arr.u8"), GgufValue::UintArray(GgufType::kU8, {0, 1, 255}));
  EXPECT_EQ(*md.Find("test.arr.i16"), GgufValue::IntArray(GgufType::kI16, {-300, 300}));
  EXPECT_EQ(*md.Find("test.arr.u64"), GgufValue::UintArray(GgufType::kU64, {(1ull << 63) + 5}));
  EXPECT_EQ(*md.Find("test.arr.f64"), GgufValue::FloatArray(GgufType::kF64, {1e300, -0.0}));

  struct Want {
    const char* name;
    DType type;
    std::vector<int64_t> shape;
    std::string bytes;
  };
  std::vector<float> f16 = Values(32, 2.0);
  const Want want[] = {
      {"t.f32", DType::kF32, {3, 5}, Bytes(DType::kF32, Values(15, 1.0), 5)},
      {"t.f16", DType::kF16, {4, 8}, Bytes(DType::kF16, f16, 8)},
      {"t.bf16", DType::kBF16, {2, 32}, Bytes(DType::kBF16, Values(64, 3.0), 32)},
      {"t.q8_0", DType::kQ8_0, {2, 64}, Bytes(DType::kQ8_0, Values(128, 0.5), 64)},
      {"t.q4_0", DType::kQ4_0, {3, 32}, Bytes(DType::kQ4_0, Values(96, 0.25), 32)},
  };
  ASSERT_EQ(f->tensors.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    const GgufTensor& t = f->tensors[i];
    EXPECT_EQ(t.name, want[i].name);
    EXPECT_EQ(t.ggml_type, GgmlTypeOf(want[i].type)) << t.name;
    EXPECT_EQ(t.shape, want[i].shape) << t.name;
    EXPECT_EQ(t.offset % 64, 0u) << t.name;
    // Quantized with gguf-py's quantizers; equal to ours bit for bit.
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(t.data), t.nbytes), want[i].bytes)
        << t.name;
  }
}

TEST(GgufPy, OurWriterReproducesTheFile) {
  const std::string file = testing::ReadFile(kFile);
  auto f = ParseGguf({reinterpret_cast<const uint8_t*>(file.data()), file.size()}, kFile);
  ASSERT_TRUE(f.ok()) << f.status();
  testing::TempDir tmp;
  auto w = GgufWriter::Create(tmp.File("copy.gguf"), {3, f->alignment});
  ASSERT_TRUE(w.ok());
  for (const auto& [k, v] : f->metadata.entries()) (*w)->SetKv(k, v);
  for (const GgufTensor& t : f->tensors) {
    ASSERT_TRUE((*w)->AddTensor(t.name, t.ggml_type, t.shape).ok());
  }
  ASSERT_TRUE((*w)->WriteHeader().ok());
  for (const GgufTensor& t : f->tensors) ASSERT_TRUE((*w)->Write(t.data, t.nbytes).ok());
  ASSERT_TRUE((*w)->Finish().ok());
  EXPECT_TRUE(testing::ReadFile(tmp.File("copy.gguf")) == file);
}

}  // namespace
}  // namespace unicorn
