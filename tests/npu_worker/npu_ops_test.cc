// NpuOps (NPU GEMM where a kernel serves the weight's shape, CPU otherwise)
// on the fake device: the host-side conversions, chunking and padding of the
// NPU path against the CPU backend, and the CPU fallback after a failed run.
#include "npu_worker/xrt/npu_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "npu_worker/cpu/cpu_ops.h"
#include "tests/npu_worker/fake_npu_device.h"

namespace unicorn::npu {
namespace {

namespace fs = std::filesystem;
using testing::FakeNpuDevice;
using testing::GemmProgram;

constexpr int kM = 8, kK = 32, kN = 16;  // kernel tile; weights [kN, kK]

class NpuOpsTest : public ::testing::TestWithParam<GemmDType> {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("npu_ops_test_" + std::to_string(getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "k.xclbin") << "x";
    std::ofstream(dir_ / "insts.txt") << "06030100\n";
    dev_.AddKernel("MLIR_AIE", GemmProgram(GetParam(), kM, kK, kN));
    GemmSpec s;
    s.name = "tile";
    s.xclbin = (dir_ / "k.xclbin").string();
    s.insts = (dir_ / "insts.txt").string();
    s.dtype = GetParam();
    s.m = kM;
    s.k = kK;
    s.n = kN;
    auto ops = NpuOps::Create(dev_, {s}, cpu::CpuOptions{1});
    ASSERT_TRUE(ops.ok()) << ops.status();
    ops_ = std::move(*ops);
  }
  void TearDown() override { fs::remove_all(dir_); }

  TensorInfo Tensor(const std::string& name, std::vector<int64_t> shape, std::vector<float>& data) {
    std::mt19937 rng(data.size());
    std::normal_distribution<float> d;
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    data.resize(n);
    for (auto& v : data) v = d(rng);
    TensorInfo t;
    t.name = name;
    t.dtype = DType::kF32;
    t.shape = std::move(shape);
    t.data = reinterpret_cast<const uint8_t*>(data.data());
    t.nbytes = data.size() * 4;
    return t;
  }

  // y = x W^T (+ b) on `ops` for n rows.
  std::vector<float> Product(Ops& ops, const TensorInfo& w, const TensorInfo* b, int n,
                             const std::vector<float>& x) {
    auto wt = ops.LoadWeight(w);
    EXPECT_TRUE(wt.ok());
    std::unique_ptr<Weight> bt;
    if (b) bt = std::move(*ops.LoadWeight(*b));
    auto xb = ops.Alloc(x.size());
    auto yb = ops.Alloc(size_t(n) * w.shape[0]);
    ops.Write(*xb, 0, x.data(), x.size());
    ops.MatMul(*xb, **wt, bt.get(), n, *yb);
    std::vector<float> y(yb->size());
    ops.Read(*yb, 0, y.data(), y.size());
    return y;
  }

  // The NPU path rounds both operands (bf16: 8-bit mantissas, relative error
  // 2^-9 each; int8: half a step of max|row|/127 each); with k = 32 unit
  // normal terms the sum's error stays well under 0.15 for bf16 and 0.4 for int8.
  float Tolerance() const { return GetParam() == GemmDType::kBf16 ? 0.15f : 0.4f; }

  fs::path dir_;
  FakeNpuDevice dev_;
  std::unique_ptr<NpuOps> ops_;
};

TEST_P(NpuOpsTest, ServedShapesRunOnTheNpuAndMatchTheCpu) {
  std::vector<float> wd, bd, x;
  TensorInfo w = Tensor("w", {kN, kK}, wd);
  TensorInfo b = Tensor("b", {kN}, bd);
  const int n = 2 * kM + 3;  // three chunks, the last one padded
  Tensor("x", {n, kK}, x);
  cpu::CpuOps cpu(cpu::CpuOptions{1});
  std::vector<float> want = Product(cpu, w, &b, n, x);
  std::vector<float> got = Product(*ops_, w, &b, n, x);
  EXPECT_EQ(ops_->npu_matmuls(), 1);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], Tolerance()) << i;
  // The fake saw three runs (chunks of kM rows).
  EXPECT_EQ(std::count(dev_.events.begin(), dev_.events.end(), "wait"), 3);
}

TEST_P(NpuOpsTest, OtherShapesStayOnTheCpu) {
  std::vector<float> wd, x;
  TensorInfo w = Tensor("w", {kN + 1, kK}, wd);
  Tensor("x", {3, kK}, x);
  cpu::CpuOps cpu(cpu::CpuOptions{1});
  EXPECT_EQ(Product(*ops_, w, nullptr, 3, x), Product(cpu, w, nullptr, 3, x));
  EXPECT_EQ(ops_->npu_matmuls(), 0);
}

TEST_P(NpuOpsTest, AFailedRunFallsBackToTheCpuAndDisablesTheKernel) {
  std::vector<float> wd, x;
  TensorInfo w = Tensor("w", {kN, kK}, wd);
  Tensor("x", {2, kK}, x);
  dev_.forget_write = true;
  cpu::CpuOps cpu(cpu::CpuOptions{1});
  EXPECT_EQ(Product(*ops_, w, nullptr, 2, x), Product(cpu, w, nullptr, 2, x));
  EXPECT_EQ(ops_->npu_matmuls(), 0);
  EXPECT_EQ(ops_->disabled_kernels(), 1);
  EXPECT_THAT(ops_->Describe(), ::testing::HasSubstr("tile[8x32x16]"));
}

TEST_P(NpuOpsTest, NpuMatMulWithoutAKernelIsAnError) {
  std::vector<float> wd;
  auto w = ops_->LoadWeight(Tensor("w", {3, kK}, wd));
  ASSERT_TRUE(w.ok());
  auto x = ops_->Alloc(kK), y = ops_->Alloc(3);
  EXPECT_THAT(ops_->NpuMatMul(*x, **w, 1, *y).message(),
              ::testing::HasSubstr("no NPU kernel serves w [3, 32]"));
}

INSTANTIATE_TEST_SUITE_P(DTypes, NpuOpsTest, ::testing::Values(GemmDType::kBf16, GemmDType::kInt8),
                         [](const auto& info) {
                           return info.param == GemmDType::kBf16 ? "bf16" : "int8";
                         });

}  // namespace
}  // namespace unicorn::npu
