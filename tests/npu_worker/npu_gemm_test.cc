// Host-side logic of the XRT backend against the fake device: instruction
// files, the GEMM run's sync order and sentinel checks, and its error paths.
#include "npu_worker/xrt/npu_gemm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "model/quant.h"
#include "npu_worker/xrt/instructions.h"
#include "tests/npu_worker/fake_npu_device.h"

namespace unicorn::npu {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using testing::FakeNpuDevice;
using testing::GemmProgram;
using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() /
            ("npu_gemm_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string Write(const std::string& name, const std::string& bytes) const {
    std::string p = (path_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

 private:
  static inline int counter_ = 0;
  fs::path path_;
};

TEST(Instructions, TextHexWordsWithCommentsAndPrefixes) {
  TempDir d;
  auto w = LoadInstructions(d.Write("i.txt", "# header\n06030100\n0x00000105\n\n  FFFFFFFF  \n"));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(*w, ElementsAre(0x06030100u, 0x105u, 0xffffffffu));
}

TEST(Instructions, BinaryLittleEndianWords) {
  TempDir d;
  auto w = LoadInstructions(d.Write("i.bin", std::string("\x01\x00\x00\x00\x00\x01\x03\x06", 8)));
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_THAT(*w, ElementsAre(1u, 0x06030100u));
}

TEST(Instructions, ErrorsNameTheFileAndLine) {
  TempDir d;
  auto missing = LoadInstructions("/nonexistent/insts.txt");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nonexistent/insts.txt"));

  std::string bad = d.Write("bad.txt", "06030100\nnot-hex\n");
  auto b = LoadInstructions(bad);
  ASSERT_FALSE(b.ok());
  EXPECT_THAT(b.status().message(), HasSubstr(bad + ": line 2: 'not-hex'"));
  EXPECT_THAT(LoadInstructions(d.Write("long.txt", "123456789\n")).status().message(),
              HasSubstr("line 1"));
  EXPECT_THAT(LoadInstructions(d.Write("empty.txt", "# nothing\n\n")).status().message(),
              HasSubstr("empty instruction sequence"));
  EXPECT_THAT(LoadInstructions(d.Write("odd.bin", "abcde")).status().message(),
              HasSubstr("5 bytes is not a whole number of 32-bit words"));
}

// A bf16 or int8 kernel on the fake device, with random inputs.
class GemmTest : public ::testing::Test {
 protected:
  static constexpr int kM = 4, kK = 8, kN = 6;
  GemmSpec Spec(GemmDType dtype) {
    GemmSpec s;
    s.name = "gemm_test";
    s.xclbin = dir_.Write("final.xclbin", "not a real xclbin");
    s.insts = dir_.Write("insts.txt", "06030100\n00000105\n");
    s.kernel_name = "MLIR_AIE";
    s.dtype = dtype;
    s.m = kM;
    s.k = kK;
    s.n = kN;
    return s;
  }
  std::unique_ptr<NpuGemm> Make(GemmDType dtype) {
    dev_.AddKernel("MLIR_AIE", GemmProgram(dtype, kM, kK, kN));
    auto g = NpuGemm::Create(dev_, Spec(dtype));
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? std::move(*g) : nullptr;
  }
  // Random int8 A [m, k], Bt [n, k] and their exact product C [m, n].
  void Int8Case(std::vector<int8_t>& a, std::vector<int8_t>& b, std::vector<int32_t>& c) {
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> d(-128, 127);
    a.resize(kM * kK);
    b.resize(kN * kK);
    for (auto& v : a) v = int8_t(d(rng));
    for (auto& v : b) v = int8_t(d(rng));
    c.assign(kM * kN, 0);
    for (int i = 0; i < kM; ++i)
      for (int j = 0; j < kN; ++j)
        for (int t = 0; t < kK; ++t) c[i * kN + j] += int32_t(a[i * kK + t]) * b[j * kK + t];
  }
  TempDir dir_;
  FakeNpuDevice dev_;
};

TEST_F(GemmTest, Int8ProductIsExact) {
  auto g = Make(GemmDType::kInt8);
  ASSERT_NE(g, nullptr);
  std::vector<int8_t> a, b;
  std::vector<int32_t> want, got(kM * kN);
  Int8Case(a, b, want);
  auto w = g->UploadWeight(b.data(), b.size());
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_TRUE(g->Run(a.data(), a.size(), **w, got.data(), got.size() * 4).ok());
  EXPECT_EQ(got, want);
}

TEST_F(GemmTest, Bf16ProductMatchesF32Reference) {
  auto g = Make(GemmDType::kBf16);
  ASSERT_NE(g, nullptr);
  std::mt19937 rng(3);
  std::normal_distribution<float> d;
  std::vector<uint16_t> a(kM * kK), b(kN * kK);
  for (auto& v : a) v = F32ToBF16(d(rng));
  for (auto& v : b) v = F32ToBF16(d(rng));
  auto w = g->UploadWeight(b.data(), b.size() * 2);
  ASSERT_TRUE(w.ok()) << w.status();
  std::vector<float> got(kM * kN);
  ASSERT_TRUE(g->Run(a.data(), a.size() * 2, **w, got.data(), got.size() * 4).ok());
  for (int i = 0; i < kM; ++i) {
    for (int j = 0; j < kN; ++j) {
      double s = 0;
      for (int t = 0; t < kK; ++t) s += double(BF16ToF32(a[i * kK + t])) * BF16ToF32(b[j * kK + t]);
      // bf16 x bf16 products are exact in f32; only the f32 sum rounds (k = 8 terms).
      EXPECT_NEAR(got[i * kN + j], s, 1e-5 * (1 + std::abs(s)));
    }
  }
}

TEST_F(GemmTest, InputsGoToTheDeviceBeforeTheRunOutputsComeBackAfterTheWait) {
  auto g = Make(GemmDType::kInt8);
  ASSERT_NE(g, nullptr);
  std::vector<int8_t> a, b;
  std::vector<int32_t> want, got(kM * kN);
  Int8Case(a, b, want);
  auto w = g->UploadWeight(b.data(), b.size());
  ASSERT_TRUE(w.ok());
  dev_.events.clear();
  ASSERT_TRUE(g->Run(a.data(), a.size(), **w, got.data(), got.size() * 4).ok());
  // A (arg3) and the sentinel-filled C (arg5) reach the device before the
  // start; C comes back only after the wait.
  EXPECT_THAT(dev_.events,
              ElementsAre("to:arg3", "to:arg5", "start:MLIR_AIE", "wait", "from:arg5"));
}

TEST_F(GemmTest, CreateSyncsInstructionsAndUploadSyncsTheWeight) {
  auto g = Make(GemmDType::kInt8);
  ASSERT_NE(g, nullptr);
  EXPECT_THAT(dev_.events,
              ElementsAre("load:MLIR_AIE", "alloc:arg1", "to:arg1", "alloc:arg3", "alloc:arg5"));
  std::vector<int8_t> b(kN * kK, 1);
  dev_.events.clear();
  ASSERT_TRUE(g->UploadWeight(b.data(), b.size()).ok());
  EXPECT_THAT(dev_.events, ElementsAre("alloc:arg4", "to:arg4"));
}

TEST_F(GemmTest, CompletedWithoutWritingIsAnErrorNamingTheKernel) {
  auto g = Make(GemmDType::kInt8);
  ASSERT_NE(g, nullptr);
  std::vector<int8_t> a, b;
  std::vector<int32_t> want, got(kM * kN, 0);
  Int8Case(a, b, want);
  auto w = g->UploadWeight(b.data(), b.size());
  ASSERT_TRUE(w.ok());
  dev_.forget_write = true;
  Status s = g->Run(a.data(), a.size(), **w, got.data(), got.size() * 4);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("kernel gemm_test: reported COMPLETED but left 24 of 24"));
  EXPECT_THAT(got, ::testing::Each(0)) << "no output is handed back from a failed run";
}

TEST_F(GemmTest, APartialWriteIsCaught) {
  auto g = Make(GemmDType::kInt8);
  ASSERT_NE(g, nullptr);
  // A "kernel" that writes every output element but the last.
  auto full = GemmProgram(GemmDType::kInt8, kM, kK, kN);
  dev_.AddKernel("partial", [&](const std::vector<std::vector<uint8_t>*>& args) {
    std::vector<uint8_t> before = *args[2];
    full(args);
    std::copy(before.end() - 4, before.end(), args[2]->end() - 4);
  });
  GemmSpec s = Spec(GemmDType::kInt8);
  s.kernel_name = "partial";
  auto p = NpuGemm::Create(dev_, s);
  ASSERT_TRUE(p.ok());
  std::vector<int8_t> a, b;
  std::vector<int32_t> want, got(kM * kN);
  Int8Case(a, b, want);
  auto w = (*p)->UploadWeight(b.data(), b.size());
  ASSERT_TRUE(w.ok());
  Status st = (*p)->Run(a.data(), a.size(), **w, got.data(), got.size() * 4);
  EXPECT_THAT(st.message(), HasSubstr("left 1 of 24 output elements unwritten"));
  EXPECT_THAT(st.message(), HasSubstr("first at element 23"));
}

TEST_F(GemmTest, AnEmptyInstructionBufferOnTheDeviceIsCaught) {
  // The fake, like amdxdna, runs nothing when the instructions on the device
  // are zeros, yet reports COMPLETED: only the sentinel tells.
  TempDir d;
  dev_.AddKernel("MLIR_AIE", GemmProgram(GemmDType::kInt8, kM, kK, kN));
  GemmSpec s = Spec(GemmDType::kInt8);
  s.insts = d.Write("zeros.txt", "00000000\n00000000\n");
  auto g = NpuGemm::Create(dev_, s);
  ASSERT_TRUE(g.ok());
  std::vector<int8_t> a(kM * kK, 1), b(kN * kK, 1);
  std::vector<int32_t> got(kM * kN);
  auto w = (*g)->UploadWeight(b.data(), b.size());
  ASSERT_TRUE(w.ok());
  EXPECT_THAT((*g)->Run(a.data(), a.size(), **w, got.data(), got.size() * 4).message(),
              HasSubstr("reported COMPLETED but left 24 of 24"));
}

TEST_F(GemmTest, EndStatesOtherThanCompletedAreErrors) {
  auto g = Make(GemmDType::kInt8);
  ASSERT_NE(g, nullptr);
  std::vector<int8_t> a(kM * kK), b(kN * kK);
  std::vector<int32_t> got(kM * kN);
  auto w = g->UploadWeight(b.data(), b.size());
  ASSERT_TRUE(w.ok());
  for (RunState st : {RunState::kError, RunState::kTimeout, RunState::kAborted}) {
    dev_.end_state = st;
    Status s = g->Run(a.data(), a.size(), **w, got.data(), got.size() * 4);
    EXPECT_THAT(s.message(),
                HasSubstr(std::string("kernel gemm_test: run ended ") + RunStateName(st)));
  }
}

TEST_F(GemmTest, ShapeMismatchesAreErrors) {
  auto g = Make(GemmDType::kBf16);
  ASSERT_NE(g, nullptr);
  std::vector<uint8_t> big(1 << 12);
  EXPECT_THAT(g->UploadWeight(big.data(), 10).status().message(),
              HasSubstr("weight is 10 bytes, the kernel takes 96 (n 6 x k 8)"));
  auto w = g->UploadWeight(big.data(), g->b_bytes());
  ASSERT_TRUE(w.ok());
  std::vector<float> c(kM * kN);
  EXPECT_THAT(g->Run(big.data(), 7, **w, c.data(), c.size() * 4).message(),
              HasSubstr("shape mismatch: A 7 bytes (expected 64)"));
  EXPECT_THAT(g->Run(big.data(), g->a_bytes(), **w, c.data(), 4).message(),
              HasSubstr("C 4 (expected 96)"));

  GemmSpec s = Spec(GemmDType::kBf16);
  s.k = 0;
  EXPECT_THAT(NpuGemm::Create(dev_, s).status().message(), HasSubstr("must be positive"));
  s = Spec(GemmDType::kInt8);
  s.k = 1 << 17;
  EXPECT_THAT(NpuGemm::Create(dev_, s).status().message(), HasSubstr("too long"));
}

TEST_F(GemmTest, LoadErrorsNameTheKernelAndTheFile) {
  dev_.AddKernel("MLIR_AIE", GemmProgram(GemmDType::kInt8, kM, kK, kN));
  GemmSpec s = Spec(GemmDType::kInt8);
  s.xclbin = "/nonexistent/final.xclbin";
  auto r = NpuGemm::Create(dev_, s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("[npu] kernel gemm_test: "));
  EXPECT_THAT(r.status().message(), HasSubstr("/nonexistent/final.xclbin"));

  s = Spec(GemmDType::kInt8);
  s.insts = dir_.Write("bad_insts.txt", "zz\n");
  EXPECT_THAT(NpuGemm::Create(dev_, s).status().message(),
              HasSubstr("kernel gemm_test: [npu] " + s.insts + ": line 1"));

  s = Spec(GemmDType::kInt8);
  s.kernel_name = "NOT_THERE";
  EXPECT_THAT(NpuGemm::Create(dev_, s).status().message(), HasSubstr("no kernel named NOT_THERE"));

  s = Spec(GemmDType::kInt8);
  dev_.fail_alloc_after = 0;
  EXPECT_EQ(NpuGemm::Create(dev_, s).status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(GemmDTypes, Parse) {
  EXPECT_EQ(*ParseGemmDType("bf16"), GemmDType::kBf16);
  EXPECT_EQ(*ParseGemmDType("int8"), GemmDType::kInt8);
  EXPECT_THAT(ParseGemmDType("fp8").status().message(), HasSubstr("'fp8': expected bf16 or int8"));
}

}  // namespace
}  // namespace unicorn::npu
